/**
 * Worker threads in the process's CPU profile (docs/workers.md).
 *
 * Loaded in every thread that loads sigprof, and preloaded into every Worker created after
 * sigprof loaded: `worker_threads.Worker` is replaced by a Proxy whose construct trap adds
 * `-r <this file>` to the Worker's execArgv, so the addon loads in the Worker before its
 * own code is compiled (its code then has line tables) and its sampler joins the native
 * registry (native/worker_registry.cc). A profile started in the main thread then samples
 * each registered thread on that thread's own clock and ring; each thread turns its
 * samples' positions into lines itself and hands them over with the metadata of the
 * functions they name, so every frame here is named from the code map of the isolate
 * that took it.
 */
import type * as workerThreads from 'node:worker_threads';
import { isMainThread, threadId } from 'node:worker_threads';
import { native } from './native';
import { Symbolizer, type FunctionMeta } from './symbolize';
import type { Frame, LabelSpec, PprofBuilder } from './pprof-builder';
import { profileStarted, profileStopped, samplesPulled, setJoinWord, setLabelPublisher } from './labels';

/**
 * How long StopCPUProfile waits for the Workers in the profile to stop and hand over
 * their last samples. A Worker running JS (even a synchronous loop) or idle answers at
 * once; only one blocked in a system call (a synchronous read of a pipe, say) does not,
 * and its samples since its last hand-over (at most a second's) are counted as lost.
 */
const STOP_WAIT_MS = Number(process.env.SIGPROF_WORKER_STOP_MS ?? 1000);

interface WorkerAddon {
  setThreadId(id: number): void;
  setWorkerName(id: number, name: string): void;
  processStart(hz: number): void;
  processStop(timeoutMs: number): number;
  processTake(): RawBatch[];
  inProcessProfile(): boolean;
  processLeave(): void;
  publishLabelSet(id: number, flat: string[]): void;
  onProcessProfile(fn: () => void): Uint32Array | undefined;
}

interface RawBatch {
  key: number; threadId: number; name: string; records: Uint32Array; fns: Array<string | number>;
  lost: number; gone: boolean; error: string; code: string;
  /** The label sets the records name: a record's label word is 1 + an index here (0: none). */
  labels: string[][];
}

/** What one thread handed over since the last pull. */
export interface ThreadBatch {
  key: number;
  /** `worker-<threadId>` (the `thread` label). */
  thread: string;
  /** The Worker's `name` option, '' if none (the `thread_name` label). */
  name: string;
  records: Uint32Array;
  /** Flat key, value, ... of the label sets the records name (label word 1 + index). */
  labels: string[][];
  lost: number;
  error: string;
  code: string;
  symbolizer: Symbolizer;
}

function addon(): WorkerAddon {
  return native() as unknown as WorkerAddon;
}

let notJoined = 0;
let warnedNotJoined = false;

type WorkerCtor = typeof workerThreads.Worker;

/**
 * Constructs the Worker with `-r <this file>` added to its execArgv. An explicit execArgv
 * replaces the options a Worker would inherit, so without one of its own it gets the
 * parent's process.execArgv first, less the flags a Worker refuses (V8 and process-wide
 * flags such as --max-old-space-size or --expose-gc, which it would not inherit either:
 * they already apply to the whole process); Node names them in its error.
 */
function constructWithPreload(target: WorkerCtor, args: unknown[], nt: Function, opts: workerThreads.WorkerOptions, argv: string[]): workerThreads.Worker {
  const make = (execArgv: string[]) => Reflect.construct(target, [args[0], { ...opts, execArgv: [...execArgv, '-r', __filename] }, ...args.slice(2)], nt) as workerThreads.Worker;
  try {
    return make(argv);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || opts.execArgv) throw err;
    const refused = new Set(((err as Error).message.split(': ')[1] ?? '').split(', '));
    try {
      return make(argv.filter((a) => !refused.has(a)));
    } catch (again) {
      if ((again as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw again;
      // Created as asked, and left out of process profiles.
      notJoined++;
      if (!warnedNotJoined) {
        warnedNotJoined = true;
        process.emitWarning(`sigprof: a Worker could not preload sigprof (${(again as Error).message}); CPU profiles started in the main thread leave it out.`, { code: 'SIGPROF_WORKER_NOT_PROFILED' });
      }
      return Reflect.construct(target, args, nt) as workerThreads.Worker;
    }
  }
}

function install(): void {
  const mod = require('node:worker_threads') as { Worker: WorkerCtor };
  const original = mod.Worker;
  const proxy: WorkerCtor = new Proxy(original, {
    construct(target, args, newTarget) {
      const nt = newTarget === proxy ? target : newTarget;
      const opts = (args[1] ?? {}) as workerThreads.WorkerOptions;
      const argv = opts.execArgv ?? process.execArgv;
      let w: workerThreads.Worker;
      if (Array.isArray(argv) && !argv.includes(__filename)) {
        w = constructWithPreload(target, args, nt, opts, argv as string[]);
      } else {
        w = Reflect.construct(target, args, nt) as workerThreads.Worker;
      }
      if (typeof opts.name === 'string' && opts.name !== '') {
        try { addon().setWorkerName(w.threadId, opts.name); } catch { /* no addon: nothing to label */ }
      }
      return w;
    },
  });
  try {
    mod.Worker = proxy;
    // `import { Worker } from 'node:worker_threads'` reads a separate ESM binding.
    (require('node:module') as { syncBuiltinESMExports?: () => void }).syncBuiltinESMExports?.();
  } catch {
    // A frozen export: Workers are left out rather than sigprof failing to load.
  }
}

/**
 * A Worker's labels in the main thread's process profile (docs/workers.md, "Labels"): the
 * Worker's label table publishes each id's pairs to the native registry, which copies the
 * pairs of the ids a hand-over names into it; and while the Worker is part of a process
 * profile, its labels run as in a profile of its own (the hooks that keep its label word
 * current across async continuations, and the quarantine of retired ids). The registry
 * calls `syncProcessProfile` on this thread's event loop when it joins or leaves and
 * after each hand-over.
 */
let inProcess = false;
function syncProcessProfile(): void {
  const joined = addon().inProcessProfile();
  if (joined && !inProcess) {
    inProcess = true;
    profileStarted();
  } else if (!joined && inProcess) {
    inProcess = false;
    // After its last hand-over: retired ids may be reused from here.
    profileStopped();
  } else if (joined) {
    // A hand-over took every record resolved before it: ids retired long enough ago go.
    samplesPulled();
  }
}

try {
  const a = addon();
  a.setThreadId(threadId);
  if (!isMainThread) {
    setLabelPublisher((id, pairs) => {
      const flat: string[] = [];
      for (const [k, v] of pairs) flat.push(k, v);
      a.publishLabelSet(id, flat);
    });
    const word = a.onProcessProfile(syncProcessProfile);
    if (word) setJoinWord(word, syncProcessProfile);
    // A Worker that starts during a process profile joined in the addon's init.
    syncProcessProfile();
  }
} catch { /* no addon: reported by the first API call that needs it */ }
install();

/** Workers created since sigprof loaded that could not preload it (counted, warned once). */
export function workersNotJoined(): number {
  return notJoined;
}

/** The main thread's profile starts: every other registered thread starts sampling. */
export function workersStart(hz: number): void {
  if (isMainThread) addon().processStart(hz);
}

/** The main thread's profile stops; waits (bounded) for the threads' last samples. */
export function workersStop(): void {
  if (isMainThread) addon().processStop(STOP_WAIT_MS);
}

/**
 * A Worker starts a CPU profile of its own: it leaves the main thread's process profile
 * first (which keeps its samples so far and says why the rest is missing), so that a
 * Worker can always profile itself, as before process profiles existed.
 */
export function leaveProcessProfile(): void {
  if (isMainThread) return;
  addon().processLeave();
  syncProcessProfile();
}

const UNKNOWN_FLAT: Array<string | number> = ['(unknown)', '', -1, 0, 0, 0, 0, 0];
/** Per registered thread: the metadata of the functions its samples named, and its symbolizer. */
const tables = new Map<number, { fns: Map<number, Array<string | number>>; symbolizer: Symbolizer }>();

/** What the threads handed over since the last call (main thread only). */
export function workersTake(): ThreadBatch[] {
  if (!isMainThread) return [];
  const out: ThreadBatch[] = [];
  for (const b of addon().processTake()) {
    let t = tables.get(b.key);
    if (!t) {
      const fns = new Map<number, Array<string | number>>();
      const symbolizer = new Symbolizer((ids) => {
        const flat: Array<string | number> = [];
        for (const id of ids) flat.push(...(fns.get(id) ?? UNKNOWN_FLAT));
        return flat;
      });
      tables.set(b.key, (t = { fns, symbolizer }));
    }
    for (let i = 0; i < b.fns.length; i += 9) t.fns.set(b.fns[i] as number, b.fns.slice(i + 1, i + 9));
    out.push({ key: b.key, thread: `worker-${b.threadId}`, name: b.name, records: b.records, labels: b.labels ?? [], lost: b.lost, error: b.error, code: b.code, symbolizer: t.symbolizer });
    // Its isolate is gone: nothing more will come, and the readers have their frames.
    if (b.gone) tables.delete(b.key);
  }
  return out;
}

/** Per-thread figures of a profile (CPUProfileStats().threads). */
export interface ThreadStats {
  /** The `thread` label: 'main' or 'worker-<threadId>'. */
  thread: string;
  /** The Worker's `name` option ('' if none, and for the main thread). */
  name: string;
  samples: number;
  /** Samples the thread took but did not hand over before the stop stopped waiting for it. */
  lost: number;
  /** Why the thread is not in the profile (it runs its own CPU profile, say); '' if it is. */
  error?: string;
  code?: string;
}

interface Agg { ids: number[]; count: number; weight: number; labels: LabelSpec[] }

/**
 * One reader's share of the Workers' samples: aggregated by (thread, state, stack) into
 * the reader's pprof builder, labelled `thread` and `thread_name`.
 */
export class ThreadSamples {
  private readonly aggs = new Map<string, Agg>();
  private readonly threads = new Map<number, ThreadStats>();

  constructor(private readonly topFrame: (state: number) => Frame | null, private readonly program: Frame, private readonly headerWords: number) {}

  take(b: ThreadBatch, builder: PprofBuilder): void {
    let st = this.threads.get(b.key);
    if (!st) this.threads.set(b.key, (st = { thread: b.thread, name: b.name, samples: 0, lost: 0 }));
    if (b.name) st.name = b.name;
    st.lost += b.lost;
    if (b.error) { st.error = b.error; st.code = b.code; }
    const rec = b.records;
    if (rec.length === 0) return;
    const base: LabelSpec[] = [{ key: 'thread', str: b.thread }];
    if (st.name) base.push({ key: 'thread_name', str: st.name });
    // The batch's label sets (its records' label words are 1 + an index), by content.
    const setKeys: string[] = [];
    const setLabels: LabelSpec[][] = [];
    for (const flat of b.labels) {
      const spec: LabelSpec[] = [];
      for (let k = 0; k + 1 < flat.length; k += 2) spec.push({ key: flat[k], str: flat[k + 1] });
      setKeys.push(JSON.stringify(flat));
      setLabels.push([...spec, ...base]);
    }
    const pairs: number[] = [];
    for (let i = 0; i < rec.length;) {
      const n = rec[i], start = i + this.headerWords;
      for (let k = start; k < start + 2 * n; k++) pairs.push(rec[k]);
      i = start + 2 * n;
    }
    b.symbolizer.prepare(pairs);
    for (let i = 0; i < rec.length;) {
      const n = rec[i], weight = rec[i + 1], state = rec[i + 2] & 0xff, word = rec[i + 4];
      const start = i + this.headerWords, end = start + 2 * n;
      const set = word > 0 && word <= setKeys.length ? word - 1 : -1;
      const labels = set >= 0 ? setLabels[set] : base;
      const key = `${b.key}|${state}|${set >= 0 ? setKeys[set] : ''}|${rec.subarray(start, end).join(',')}`;
      let a = this.aggs.get(key);
      if (!a) {
        const ids: number[] = [];
        const top = this.topFrame(state);
        if (top) ids.push(builder.locationIdFor(`pseudo:${top.name}`, () => top));
        for (let k = start; k < end; k += 2) {
          const fn = rec[k], pos = rec[k + 1] | 0;
          ids.push(builder.locationIdFor(`t${b.key}:${fn}:${pos}`, () => b.symbolizer.frame(fn, pos)));
        }
        if (ids.length === 0) ids.push(builder.locationIdFor('pseudo:program', () => this.program));
        this.aggs.set(key, (a = { ids, count: 0, weight: 0, labels }));
      }
      a.count += 1;
      a.weight += weight;
      st.samples += 1;
      i = end;
    }
  }

  finish(builder: PprofBuilder, period: number): void {
    for (const a of this.aggs.values()) builder.addSampleIds(a.ids, [a.count, a.weight * period], a.labels);
  }

  stats(): ThreadStats[] {
    return [...this.threads.values()].map((t) => ({ ...t }));
  }
}

export type { FunctionMeta };
