import { parseArgs, flagString, flagInt, UsageError } from './args';
import { parseSize, loadProfileFile } from './profile';
import { topReport, renderTop } from './top';

export const TOP_HELP = `usage: sigprof top FILE [flags]

Prints the functions with the most samples in a pprof profile (gzipped or not, written
by sigprof or by Go), in the layout of "go tool pprof -top": flat, flat%, sum%, cum, cum%,
then the function and its file:line. Nodes under 0.5% of the total are dropped, as pprof does.

Flags:
  --sample-index X   sample type to report, by name (cpu, alloc_space, ...) or index;
                     default: the profile's default_sample_type, else the last one
  -n, --nodecount N  show at most N rows (default 20; 0 = all)
  --cum              sort by cumulative value instead of flat
  --lines            one row per source line instead of per function
                     (per function, file:line is the line where the function starts)
  --max-size SIZE    read at most SIZE bytes once decompressed (default 256M;
                     k, M, G suffixes): a guard against gzip bombs, endless input
  -h, --help         show this help

Example:
  sigprof top cpu.pb.gz -n 10
`;

export async function topCommand(argv: string[]): Promise<number> {
  const p = parseArgs('top', argv, [
    { name: 'sample-index', aliases: ['--sample_index', '-sample_index'], value: true },
    { name: 'nodecount', aliases: ['-n'], value: true },
    { name: 'cum' },
    { name: 'lines' },
    { name: 'max-size', value: true },
    { name: 'help', aliases: ['-h'] },
  ]);
  if (p.flags.has('help')) {
    process.stdout.write(TOP_HELP);
    return 0;
  }
  if (p.rest) throw new UsageError('sigprof top: unexpected "--"');
  if (p.positionals.length !== 1) {
    throw new UsageError(p.positionals.length === 0 ? 'sigprof top: missing profile FILE (see sigprof top --help)' : `sigprof top: expected one FILE, got ${p.positionals.length}`);
  }
  const maxSizeFlag = flagString(p, 'max-size');
  const prof = await loadProfileFile(p.positionals[0], maxSizeFlag === undefined ? undefined : parseSize('top', 'max-size', maxSizeFlag));
  const report = topReport(prof, {
    sampleIndex: flagString(p, 'sample-index'),
    nodeCount: flagInt('top', p, 'nodecount', 0) ?? 20,
    granularity: p.flags.has('lines') ? 'lines' : 'functions',
    cum: p.flags.has('cum'),
  });
  await writeStdout(renderTop(report));
  return 0;
}

/** Waits for the data to leave, so `sigprof top f | head` and short-lived pipes get all of it. */
export function writeStdout(s: string): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.write(s, () => resolve());
  });
}
