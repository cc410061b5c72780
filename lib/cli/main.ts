/**
 * Entry point of the `sigprof` command (bin/sigprof.js). Each command lives in its own
 * module and is loaded only when used, so `sigprof top` never pays for the flame graph
 * assets or the HTTP client.
 */
import { UsageError, CliError } from './args';

export const USAGE = `usage: sigprof <command> [flags]

Commands:
  top    FILE                      print the hottest functions of a pprof profile (like go tool pprof -top)
  flame  FILE -o flame.html        write a self-contained interactive flame graph
  run    [flags] -- node app.js    profile an unmodified Node.js program
  fetch  URL -o FILE               download a profile from a /debug/pprof endpoint

Run "sigprof <command> --help" for a command's flags.
`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Command> = {
  top: () => require('./cmd-top').topCommand,
  flame: () => require('./flame').flameCommand,
  run: () => require('./run').runCommand,
  fetch: () => require('./fetch').fetchCommand,
};

/**
 * Runs the CLI and sets process.exitCode rather than calling process.exit, so pending
 * stdout writes to a pipe are not cut off. Resolves with the exit status.
 */
export async function main(argv: string[]): Promise<number> {
  // `sigprof top big.pb.gz | head` closes the pipe early; that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  let code: number;
  try {
    code = await dispatch(argv);
  } catch (e) {
    if (e instanceof UsageError || e instanceof CliError) {
      // Messages from shared helpers (profile loading) do not know which command ran.
      const prefix = e.message.startsWith('sigprof') ? '' : `sigprof ${argv[0]}: `;
      process.stderr.write(`${prefix}${e.message}\n`);
      code = e.exitCode;
    } else {
      const err = e as Error;
      process.stderr.write(`sigprof: ${err && err.message ? err.message : String(e)}\n`);
      if (process.env.SIGPROF_DEBUG) process.stderr.write(`${err?.stack}\n`);
      code = 1;
    }
  }
  process.exitCode = code;
  return code;
}

async function dispatch(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    if (rest[0] && COMMANDS[rest[0]]) return COMMANDS[rest[0]]()(['--help']);
    process.stdout.write(USAGE);
    return 0;
  }
  if (cmd === '--version' || cmd === 'version') {
    process.stdout.write(`sigprof ${require('../../package.json').version}\n`);
    return 0;
  }
  const load = Object.prototype.hasOwnProperty.call(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!load) throw new UsageError(`sigprof: unknown command ${JSON.stringify(cmd)} (commands: ${Object.keys(COMMANDS).join(', ')}; see sigprof --help)`);
  return load()(rest);
}
