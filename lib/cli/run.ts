/**
 * `sigprof run`: profile a program without changing it. The program is started with
 * dist/cli/preload.js in NODE_OPTIONS, so it works for `node app.js` as well as for
 * scripts with a node shebang and tools that start node themselves; the first Node.js
 * process started is the one profiled (the preload removes its settings from the
 * environment so that process's children are not).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs, flagString, flagInt, quoteNodeOption, UsageError, CliError } from './args';

export const RUN_HELP = `usage: sigprof run [flags] -- COMMAND [ARGS...]

Runs COMMAND (usually "node app.js ...") with sigprof preloaded, and writes the
requested profiles when the program exits: when its event loop drains, on
process.exit(), on an uncaught exception, or on SIGINT/SIGTERM/SIGHUP (the signal is
re-raised afterwards, so the exit status is the program's). The program runs as it
would without sigprof: process.exit() is not intercepted and nothing is added to its
error handling. The exit status (or the signal) of sigprof run is the program's, also
when a profile could not be written (that is reported on stderr).

Flags:
  --cpu FILE          write a CPU profile of the whole run to FILE
  --heap FILE         write a heap profile taken at exit to FILE
  --rate HZ           CPU sampling rate (default: sigprof's, 100 Hz)
  --http HOST:PORT    serve /debug/pprof/ from the program while it runs
                      (port 0 picks a free port; the address is printed)
  --push URL          push CPU and heap profiles to the Pyroscope server at URL every
                      interval (sigprof/pyroscope; PYROSCOPE_APPLICATION_NAME,
                      PYROSCOPE_AUTH_TOKEN, ... configure the rest)
  -h, --help          show this help

At least one of --cpu, --heap, --http, --push is needed. A bare "node" as COMMAND means the
Node.js that runs sigprof, so the native addon matches it.

Example:
  sigprof run --cpu cpu.pb.gz --heap heap.pb.gz -- node server.js --port 8080
`;

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function checkWritableTarget(flag: string, file: string): string {
  const abs = path.resolve(file);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(abs);
  } catch {
    // Does not exist yet: fine, if its directory does.
  }
  if (st?.isDirectory()) throw new UsageError(`sigprof run: --${flag} ${file} is a directory`);
  const dir = path.dirname(abs);
  if (!fs.existsSync(dir)) throw new UsageError(`sigprof run: --${flag} ${file}: directory ${dir} does not exist`);
  return abs;
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export async function runCommand(argv: string[]): Promise<number> {
  const p = parseArgs('run', argv, [
    { name: 'cpu', value: true },
    { name: 'heap', value: true },
    { name: 'rate', value: true },
    { name: 'http', value: true },
    { name: 'push', value: true },
    { name: 'help', aliases: ['-h'] },
  ]);
  if (p.flags.has('help')) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  if (p.rest === undefined) {
    throw new UsageError(p.positionals.length
      ? `sigprof run: missing "--" before the command (sigprof run [flags] -- ${p.positionals.join(' ')})`
      : 'sigprof run: missing "-- COMMAND" (see sigprof run --help)');
  }
  if (p.positionals.length) throw new UsageError(`sigprof run: unexpected ${JSON.stringify(p.positionals[0])} before "--"`);
  if (p.rest.length === 0) throw new UsageError('sigprof run: missing the command after "--"');
  const cpuFlag = flagString(p, 'cpu');
  const heapFlag = flagString(p, 'heap');
  const http = flagString(p, 'http');
  const rate = flagInt('run', p, 'rate', 1);
  const push = flagString(p, 'push');
  if (!cpuFlag && !heapFlag && !http && !push) throw new UsageError('sigprof run: nothing to do: give --cpu FILE, --heap FILE, --http HOST:PORT and/or --push URL');
  if (push !== undefined && !/^https?:\/\/[^/]/.test(push)) throw new UsageError(`sigprof run: --push must be an http:// or https:// URL (got ${JSON.stringify(push)})`);
  if (rate !== undefined && !cpuFlag) throw new UsageError('sigprof run: --rate needs --cpu');
  if (http && !/^(\[[^\]]+\]|[^:]*):\d+$/.test(http)) throw new UsageError(`sigprof run: --http must be HOST:PORT (got ${JSON.stringify(http)})`);
  const cpu = cpuFlag ? checkWritableTarget('cpu', cpuFlag) : undefined;
  const heap = heapFlag ? checkWritableTarget('heap', heapFlag) : undefined;
  if (cpu && heap && cpu === heap) throw new UsageError('sigprof run: --cpu and --heap name the same file');

  const preload = path.join(__dirname, 'preload.js');
  if (!fs.existsSync(preload)) throw new CliError(`sigprof run: ${preload} is missing (run "npm run build:js")`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-run-'));
  const reportFile = path.join(tmp, 'report.jsonl');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SIGPROF_') && k !== 'SIGPROF_API' && k !== 'SIGPROF_DEBUG') delete env[k];
  if (cpu) env.SIGPROF_CPU = cpu;
  if (heap) env.SIGPROF_HEAP = heap;
  if (rate !== undefined) env.SIGPROF_RATE = String(rate);
  if (http) env.SIGPROF_HTTP = http;
  if (push) env.SIGPROF_PUSH = push;
  env.SIGPROF_REPORT = reportFile;
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ? `${env.NODE_OPTIONS} ` : ''}--require ${quoteNodeOption(preload)}`;

  const [cmd, ...args] = p.rest;
  const exe = cmd === 'node' ? process.execPath : cmd;

  const child = spawn(exe, args, { stdio: 'inherit', env });
  // Ctrl-C reaches the whole process group; sigprof must outlive the program to report,
  // and a signal sent to sigprof alone (kill PID) is meant for the program.
  const forward = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const s of FORWARDED) process.on(s, forward);

  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(new CliError(e.code === 'ENOENT' ? `sigprof run: cannot start ${cmd}: command not found` : `sigprof run: cannot start ${cmd}: ${e.message}`));
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  }).finally(() => {
    for (const s of FORWARDED) process.removeListener(s, forward);
  });

  let entries: Array<{ kind: string; file?: string; bytes?: number }> = [];
  try {
    entries = fs.readFileSync(reportFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    // No report: the preload never ran (not a Node.js program?) or was killed early.
  }
  fs.rmSync(tmp, { recursive: true, force: true });

  const preloadRan = entries.some((x) => x.kind === 'started');
  for (const [kind, file, label] of [['cpu', cpu, 'CPU'], ['heap', heap, 'heap']] as const) {
    if (!file) continue;
    const e = entries.find((x) => x.kind === kind);
    if (e) {
      process.stderr.write(`sigprof: ${label} profile written to ${path.relative(process.cwd(), file) || file} (${humanBytes(e.bytes ?? 0)}); view it with: sigprof top ${quoteShell(file)}\n`);
    } else {
      const why = entries.some((x) => x.kind === 'error')
        ? 'see the error above'
        : result.signal === 'SIGKILL'
          ? 'the program was killed with SIGKILL'
          : preloadRan ? 'the program ended before it could be written' : 'the command did not start a Node.js process that loaded sigprof';
      process.stderr.write(`sigprof: no ${label} profile was written to ${file} (${why})\n`);
    }
  }

  if (result.signal) {
    // Die of the same signal so a shell or supervisor sees the program's status. Node
    // ignores SIGPIPE and turns SIGUSR1 into "start the inspector", so for those (and any
    // signal that somehow does not end us) the exit status is the shell's 128 + N.
    if (result.signal !== 'SIGPIPE' && result.signal !== 'SIGUSR1') process.kill(process.pid, result.signal);
    return 128 + (os.constants.signals[result.signal] ?? 0);
  }
  // Exactly the program's status, also when a profile is missing (said above): wrapping a
  // command in sigprof run must not turn its success into a failure or the reverse.
  return result.code ?? 1;
}

function quoteShell(s: string): string {
  const rel = path.relative(process.cwd(), s);
  const shown = rel && !rel.startsWith('..') ? rel : s;
  return /^[\w./-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, "'\\''")}'`;
}
