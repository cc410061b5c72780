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
 *
 * The program must run exactly as it would without sigprof: process.exit is not touched
 * (it exits then and there, whatever catches around it), no uncaughtException listener is
 * added, and the profiles are written synchronously in the process's 'exit' event, which
 * every one of those endings goes through. See docs/hardening.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { quoteNodeOption } from './args';

interface Api {
  SetCPUProfileRate?: (hz: number) => unknown;
  StartCPUProfile?: (w: Writable) => unknown;
  StopCPUProfile?: () => unknown;
  WriteHeapProfile?: (w: Writable) => unknown;
}

/** lib/exit-hooks.ts: the profiles as gzipped bytes, synchronously. */
interface ExitHooks {
  stopCPUProfileSync?: () => Buffer | null;
  heapProfileSync?: () => Buffer;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

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
  let hooks: ExitHooks = {};
  try {
    hooks = require(path.join(apiDir, 'exit-hooks'));
  } catch {
    // Checked below, by name, for what was asked.
  }
  const need = (name: keyof Api) => {
    if (typeof api[name] !== 'function') fatal(`${name} is not exported by this build of sigprof`);
  };
  const needHook = (name: keyof ExitHooks) => {
    if (typeof hooks[name] !== 'function') fatal(`${name} is missing from this build of sigprof (exit-hooks)`);
  };

  let cpuRunning = false;
  if (cfg.cpu) {
    need('StartCPUProfile');
    needHook('stopCPUProfileSync');
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
      // The profile is taken back as bytes at exit (stopCPUProfileSync), never written
      // to this stream; the file is written then, in one go.
      const unused = new Writable({ write: (_c, _e, cb) => cb() });
      const r = api.StartCPUProfile!(unused);
      if (r && typeof (r as Promise<unknown>).then === 'function') {
        (r as Promise<unknown>).then(undefined, (e: Error) => say(`StartCPUProfile: ${e.message}`));
      }
      cpuRunning = true;
    } catch (e) {
      fatal(`StartCPUProfile: ${(e as Error).message}`);
    }
  }
  if (cfg.heap) needHook('heapProfileSync');

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

  let push: { start(c: { serverAddress: string }): void; stop(): Promise<void>; stopSync(): number } | undefined;
  if (cfg.push) {
    try {
      push = require(path.join(apiDir, 'pyroscope'));
      push!.start({ serverAddress: cfg.push });
      // The loop drained: the last interval goes out asynchronously (bounded by
      // stopTimeoutMs). On process.exit() or a signal, writeProfiles' stopSync sends it.
      process.once('beforeExit', () => { void push!.stop(); });
    } catch (e) {
      return fatal(`cannot push to ${cfg.push}: ${(e as Error).message}`);
    }
  }

  if (!cfg.cpu && !cfg.heap && !push) return;

  let written = false;
  /** Writes the profiles now, synchronously; once. Never throws: the program's exit is its own. */
  const writeProfiles = (): void => {
    if (written) return;
    written = true;
    if (push) {
      try {
        push.stopSync();
      } catch (e) {
        say(`pushing the last profiles failed: ${(e as Error).message}`);
      }
    }
    if (cfg.cpu && cpuRunning) {
      try {
        const data = hooks.stopCPUProfileSync!();
        if (data) {
          fs.writeFileSync(cfg.cpu, data);
          record(cfg.report, { kind: 'cpu', file: cfg.cpu, bytes: data.length });
        } else {
          say(`no CPU profile was running at exit (the program stopped it), so nothing was written to ${cfg.cpu}`);
        }
      } catch (e) {
        say(`writing the CPU profile to ${cfg.cpu} failed: ${(e as Error).message}`);
      }
    }
    if (cfg.heap) {
      try {
        const data = hooks.heapProfileSync!();
        fs.writeFileSync(cfg.heap, data);
        record(cfg.report, { kind: 'heap', file: cfg.heap, bytes: data.length });
      } catch (e) {
        say(`writing the heap profile to ${cfg.heap} failed: ${(e as Error).message}`);
      }
    }
  };

  // Every ending but a fatal signal passes here: the event loop draining, process.exit()
  // (wherever it is called, caught or not), an uncaught exception. Node has settled the
  // exit code by now and nothing here changes it.
  process.on('exit', writeProfiles);

  // A signal that would kill the program (no handler of its own) kills it without an
  // 'exit' event, so the profiles are written here and the signal is raised again with
  // the default action restored: the program dies of it, as it would have.
  const onSignal = (sig: NodeJS.Signals) => {
    // A program that handles the signal decides itself whether and how to exit; if it
    // does exit, the 'exit' hook above writes the profiles.
    if (process.listenerCount(sig) > 1) return;
    writeProfiles();
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    process.kill(process.pid, sig);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
}

if (isMainThread) setup();
