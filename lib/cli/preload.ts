/**
 * Loaded with `node --require .../dist/cli/preload.js` (by `sigprof run` through
 * NODE_OPTIONS) to profile a program that was not written for it. Configured by
 * environment variables:
 *
 *   SIGPROF_CPU=FILE         CPU profile from start to exit
 *   SIGPROF_HEAP=FILE        heap profile taken at exit
 *   SIGPROF_RATE=HZ          CPU sampling rate
 *   SIGPROF_HTTP=HOST:PORT   serve /debug/pprof/ while the program runs
 *   SIGPROF_PUSH=URL         push to Pyroscope at URL (sigprof/pyroscope; PYROSCOPE_* for the rest)
 *
 * Profiles are written however the program ends: the event loop draining,
 * process.exit(), an uncaught exception, or SIGINT/SIGTERM/SIGHUP that the program does
 * not handle itself (the signal is re-raised afterwards so the exit status is the one
 * the program would have had).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { quoteNodeOption } from './args';

interface Api {
  SetCPUProfileRate?: (hz: number) => unknown;
  StartCPUProfile?: (w: Writable) => unknown;
  StopCPUProfile?: () => unknown;
  WriteHeapProfile?: (w: Writable) => unknown;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** Past this, exit without the profile rather than hang a program that wanted to stop. */
const FINALIZE_TIMEOUT_MS = 30_000;

class ExitDeferred extends Error {
  constructor() {
    super('sigprof: process.exit() is deferred until the profiles are written');
  }
}

function say(msg: string): void {
  try {
    fs.writeSync(2, `sigprof: ${msg}\n`);
  } catch {
    // stderr closed: nothing better to do.
  }
}

/** Reads SIGPROF_* and removes them, so processes this program starts are not profiled into the same files. */
function takeConfig() {
  const env = process.env;
  const cfg = {
    cpu: env.SIGPROF_CPU || undefined,
    heap: env.SIGPROF_HEAP || undefined,
    rate: env.SIGPROF_RATE || undefined,
    http: env.SIGPROF_HTTP || undefined,
    push: env.SIGPROF_PUSH || undefined,
    report: env.SIGPROF_REPORT || undefined,
    api: env.SIGPROF_API || undefined,
  };
  for (const k of ['SIGPROF_CPU', 'SIGPROF_HEAP', 'SIGPROF_RATE', 'SIGPROF_HTTP', 'SIGPROF_PUSH', 'SIGPROF_REPORT', 'SIGPROF_API']) delete env[k];
  if (env.NODE_OPTIONS) {
    // Only this file's own entry goes: the user's other --require preloads stay.
    const mine = `--require ${quoteNodeOption(__filename)}`;
    const opts = env.NODE_OPTIONS.split(mine).join(' ').replace(/\s+/g, ' ').trim();
    if (opts) env.NODE_OPTIONS = opts; else delete env.NODE_OPTIONS;
  }
  return cfg;
}

function record(reportFile: string | undefined, entry: Record<string, unknown>): void {
  if (!reportFile) return;
  try {
    fs.appendFileSync(reportFile, `${JSON.stringify(entry)}\n`);
  } catch (e) {
    say(`cannot write run report ${reportFile}: ${(e as Error).message}`);
  }
}

async function closeStream(w: Writable): Promise<void> {
  if (w.writableFinished) return;
  if (!w.writableEnded) w.end();
  await finished(w);
}

function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (!m) throw new Error(`SIGPROF_HTTP must be HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

function setup(): void {
  const cfg = takeConfig();
  if (!cfg.cpu && !cfg.heap && !cfg.http && !cfg.push) return;
  // Tells `sigprof run` that the command did start a Node.js process with the preload.
  record(cfg.report, { kind: 'started', pid: process.pid });

  const fatal = (msg: string): never => {
    say(msg);
    record(cfg.report, { kind: 'error', message: msg });
    // The user asked for a profile; running the program without one would waste the run.
    process.exit(1);
  };

  // SIGPROF_API (a directory with index.js and http.js) lets the CLI's tests drive this
  // file with a stand-in for the profiler.
  const apiDir = cfg.api ?? path.join(__dirname, '..');
  let api: Api;
  try {
    api = require(path.join(apiDir, 'index'));
  } catch (e) {
    return fatal(`cannot load the sigprof module: ${(e as Error).message}`);
  }
  const need = (name: keyof Api) => {
    if (typeof api[name] !== 'function') fatal(`${name} is not exported by this build of sigprof`);
  };

  let cpuStream: fs.WriteStream | undefined;
  if (cfg.cpu) {
    need('StartCPUProfile');
    need('StopCPUProfile');
    if (cfg.rate !== undefined) {
      need('SetCPUProfileRate');
      const hz = Number(cfg.rate);
      if (!Number.isInteger(hz) || hz <= 0) fatal(`SIGPROF_RATE must be a positive integer, got ${JSON.stringify(cfg.rate)}`);
      try {
        api.SetCPUProfileRate!(hz);
      } catch (e) {
        fatal(`SetCPUProfileRate(${hz}): ${(e as Error).message}`);
      }
    }
    try {
      cpuStream = fs.createWriteStream(cfg.cpu);
      // Opening fails asynchronously; report it once instead of as an unhandled 'error'.
      cpuStream.on('error', (e) => say(`CPU profile ${cfg.cpu}: ${e.message}`));
      const r = api.StartCPUProfile!(cpuStream);
      if (r && typeof (r as Promise<unknown>).then === 'function') {
        (r as Promise<unknown>).then(undefined, (e: Error) => say(`StartCPUProfile: ${e.message}`));
      }
    } catch (e) {
      fatal(`StartCPUProfile: ${(e as Error).message}`);
    }
  }
  if (cfg.heap) need('WriteHeapProfile');

  if (cfg.http) {
    let hp: { host: string; port: number };
    try {
      hp = parseHostPort(cfg.http);
    } catch (e) {
      return fatal((e as Error).message);
    }
    let httpMod: { listen?: (o: { host: string; port: number }) => unknown };
    try {
      httpMod = require(path.join(apiDir, 'http'));
    } catch (e) {
      return fatal(`cannot load sigprof's HTTP handlers: ${(e as Error).message}`);
    }
    if (typeof httpMod.listen !== 'function') fatal('listen is not exported by sigprof/http in this build');
    Promise.resolve()
      .then(() => httpMod.listen!({ host: hp.host, port: hp.port }))
      .then((server) => {
        const s = server as { address?: () => unknown; unref?: () => void } | undefined;
        // The profiling server must not keep a finished program alive.
        s?.unref?.();
        const addr = s?.address?.() as { address: string; port: number } | string | null | undefined;
        let where = `${hp.host}:${hp.port}`;
        if (addr && typeof addr === 'object') where = addr.address.includes(':') ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
        say(`serving http://${where}/debug/pprof/`);
        record(cfg.report, { kind: 'http', address: where });
      })
      .catch((e: Error) => say(`cannot serve /debug/pprof/ on ${cfg.http}: ${e.message}`));
  }

  let push: { start(c: { serverAddress: string }): void; stop(): Promise<void> } | undefined;
  if (cfg.push) {
    try {
      push = require(path.join(apiDir, 'pyroscope'));
      push!.start({ serverAddress: cfg.push });
    } catch (e) {
      return fatal(`cannot push to ${cfg.push}: ${(e as Error).message}`);
    }
  }

  if (!cfg.cpu && !cfg.heap && !push) return;

  let finalizing: Promise<void> | undefined;
  let done = false;
  const finalize = (): Promise<void> => {
    finalizing ??= (async () => {
      // Bounded by its own stopTimeoutMs (5 s), well inside FINALIZE_TIMEOUT_MS.
      if (push) await push.stop().catch((e: Error) => say(`pushing the last profiles failed: ${e.message}`));
      if (cfg.cpu && cpuStream) {
        try {
          await api.StopCPUProfile!();
          await closeStream(cpuStream);
          record(cfg.report, { kind: 'cpu', file: cfg.cpu, bytes: fs.statSync(cfg.cpu).size });
        } catch (e) {
          say(`writing the CPU profile to ${cfg.cpu} failed: ${(e as Error).message}`);
        }
      }
      if (cfg.heap) {
        try {
          const w = fs.createWriteStream(cfg.heap);
          const opened = new Promise<void>((resolve, reject) => {
            w.once('open', () => resolve());
            w.once('error', reject);
          });
          await opened;
          await api.WriteHeapProfile!(w);
          await closeStream(w);
          record(cfg.report, { kind: 'heap', file: cfg.heap, bytes: fs.statSync(cfg.heap).size });
        } catch (e) {
          say(`writing the heap profile to ${cfg.heap} failed: ${(e as Error).message}`);
        }
      }
      done = true;
    })();
    return finalizing;
  };

  /** Runs `then` after the profiles are written, or after the timeout if writing hangs. */
  const finalizeThen = (then: () => void): void => {
    const timer = setTimeout(() => {
      say(`writing the profiles did not finish within ${FINALIZE_TIMEOUT_MS / 1000}s; exiting without them`);
      then();
    }, FINALIZE_TIMEOUT_MS);
    finalize().finally(() => {
      clearTimeout(timer);
      then();
    });
  };

  // The event loop drained: the common way a script ends. Async work is still allowed here.
  const onBeforeExit = () => {
    process.removeListener('beforeExit', onBeforeExit);
    if (!finalizing) void finalize();
  };
  process.on('beforeExit', onBeforeExit);

  // process.exit() ends the process synchronously, leaving no room for the asynchronous
  // profile write, so the real exit waits until the profiles are on disk. Meanwhile the
  // caller must not go on as if exit had returned (`if (!arg) process.exit(2); use(arg)`),
  // so the call throws, and what that throw (or anything later) raises is swallowed.
  const realExit = process.exit.bind(process);
  let exiting = false;
  const patchedExit = (code?: number | string | null): never => {
    if (code !== undefined && code !== null) process.exitCode = code as number;
    if (done) return realExit();
    if (!exiting) {
      exiting = true;
      finalizeThen(() => realExit());
    }
    throw new ExitDeferred();
  };
  process.exit = patchedExit as typeof process.exit;

  // Only when the program has no handler of its own: then Node would die of the
  // error, so report it as Node does, write the profiles, and exit with status 1.
  const onUncaught = (err: unknown) => {
    if (exiting || err instanceof ExitDeferred) return;
    if (process.listenerCount('uncaughtException') > 1) return;
    exiting = true;
    process.stderr.write(`${util.inspect(err)}\n`);
    process.exitCode = 1;
    finalizeThen(() => realExit());
  };
  process.on('uncaughtException', onUncaught);

  const onSignal = (sig: NodeJS.Signals) => {
    // A program that handles the signal decides itself whether and how to exit; if it
    // does exit, process.exit or beforeExit above catches it.
    if (process.listenerCount(sig) > 1) return;
    if (exiting) return;
    exiting = true;
    finalizeThen(() => {
      for (const s of SIGNALS) process.removeListener(s, onSignal);
      process.kill(process.pid, sig);
    });
  };
  for (const s of SIGNALS) process.on(s, onSignal);

  process.on('exit', () => {
    if (!done) say('the program exited before the profiles could be written');
  });
}

if (isMainThread) setup();
