/**
 * StartCPUProfile / StopCPUProfile over the native signal-driven sampler.
 *
 * The addon's collector thread empties the signal ring and resolves addresses while JS
 * runs; this side pulls resolved records about once a second (and at stop), aggregates
 * identical stacks, and at stop encodes one pprof profile and writes it, gzipped, to the
 * caller's Writable.
 */
import * as path from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import type { Writable } from 'node:stream';
import { native, RECORD_HEADER_WORDS, type NativeCpuStats } from './native';
import { labelsForId, profileStarted, profileStopped, samplesPulled } from './labels';
import { symbolizer, FunctionKind, type FunctionMeta } from './symbolize';
import { PprofBuilder, Frame, packIds, type LabelSpec } from './pprof-builder';
import { SigprofError, ERR_PROFILE_IN_USE, ERR_INVALID_RATE } from './errors';
import { assertWritable, writeAll } from './writer';
import { ThreadSamples, workersStart, workersStop, workersTake, leaveProcessProfile, type ThreadBatch, type ThreadStats } from './workers';

/** Go's SetCPUProfileRate caps the rate at 1 MHz. */
export const MAX_CPU_PROFILE_RATE = 1_000_000;
const DEFAULT_RATE = 100;
const PULL_EVERY_MS = 1000;

// v8::StateTag values (stable prefix across Node 20–26; later versions append).
const enum VmState { JS = 0, GC = 1, PARSER = 2, BYTECODE_COMPILER = 3, COMPILER = 4, OTHER = 5, EXTERNAL = 6, ATOMICS_WAIT = 7, IDLE = 8, LOGGING = 9, IDLE_EXTERNAL = 10 }

const PSEUDO = {
  gc: { name: '(garbage collector)', file: '', line: 0 },
  compiler: { name: '(compiler)', file: '', line: 0 },
  program: { name: '(program)', file: '', line: 0 },
  idle: { name: '(idle)', file: '', line: 0 },
  atomicsWait: { name: '(atomics wait)', file: '', line: 0 },
  lost: { name: '(lost samples)', file: '', line: 0 },
  // Leaf under (lost samples): the periods whose signal another handler took (someone
  // replaced sigprof's handler on its real-time sampling signal).
  lostToOther: { name: '(sampling signal taken by another handler)', file: '', line: 0 },
} satisfies Record<string, Frame>;

/** Identical stacks (same VM state, same resolved frames) merged. */
interface Aggregate {
  words: Uint32Array; hash: number; state: number; count: number; weight: number; ids: number[]; packed?: Uint8Array;
  /** Functions with a frame without a position in this stack, once each (late-load check). */
  noPosition?: number[];
  /** The label-set id the handler copied (0: none) and its labels, resolved at the pull. */
  labelId: number; labels?: LabelSpec[];
}

export interface CPUProfileStatsResult {
  running: boolean;
  /** Requested rate (Hz). */
  hz: number;
  /**
   * The clock that ran (docs/signals-and-clocks.md): 'perf-event': per-thread perf event
   * counting user-mode CPU (the default where perf_event_open is permitted);
   * 'timer': per-thread CPU-clock POSIX timer (user + kernel CPU; fallback up to 200 Hz);
   * 'thread': helper thread + tgsigqueueinfo (user + kernel; fallback above 200 Hz or
   * when the timer cannot start either, and at
   * any rate when a foreign handler was on sigprof's sampling signal before it: only a
   * clock that checks before each signal is safe then). SIGPROF_CLOCK forces one.
   */
  mode: 'perf-event' | 'timer' | 'thread' | 'none';
  /** Samples recorded (signals that produced a stack). */
  samples: number;
  /** Samples the ring had no room for; they appear as `(lost samples)`. */
  dropped: number;
  droppedWeight: number;
  /**
   * Sampling periods lost because another handler was installed over sigprof's on its
   * real-time sampling signal (not SIGPROF: other profilers on SIGPROF, such as V8's
   * CpuProfiler behind the inspector and @datadog/pprof, cost nothing here). Their CPU
   * time appears as `(lost samples)` → `(sampling signal taken by another handler)`.
   */
  lostToOtherProfiler: number;
  /** Signals that named this thread but failed the tag check or the weight bound (forged). */
  rejectedSignals: number;
  /**
   * The real-time signal number sigprof samples on (chosen once per process: the highest
   * free one from SIGRTMIN to SIGRTMAX, or SIGPROF_SIGNAL=N); -1 before the first start.
   */
  signal: number;
  /** CPU time the samples stand for (weight × period). */
  cpuNanos: number;
  /** Samples per CPU-second of the profiled thread. */
  deliveredHz: number;
  /** Handler time per sample, including GetStackSample. */
  handlerNsMean: number;
  handlerNsMax: number;
  /**
   * The profiler's own time on the profiled thread (signal handler + periodic pulls),
   * as a fraction of the thread CPU time profiled: its direct overhead, self-measured.
   */
  selfCostFraction: number;
  /**
   * CPU time of the profiler's own threads (the collector that resolves samples, and at
   * rates above 200 Hz the timer thread): cost paid on another core, not in
   * selfCostFraction.
   */
  helperThreadsCpuNanos: number;
  /** helperThreadsCpuNanos over the thread CPU time profiled. */
  helperThreadsCostFraction: number;
  frames: number;
  unresolvedFrames: number;
  durationNanos: number;
  /**
   * Functions of your code that appear in this profile without their lines because they
   * were compiled before sigprof's code listener was installed (their frames show the
   * function's first line). The entry module's own top-level code is left out: it is
   * always compiled before it can require sigprof. Counted over the stacks pulled so far.
   */
  /**
   * Samples whose stack was deeper than the capture limit (255 frames): they keep the
   * innermost 255 frames under a `(truncated)` root frame.
   */
  truncatedSamples: number;
  lateUserFunctions: number;
  /**
   * Samples per thread (docs/workers.md): the main thread first, then each Worker the
   * profile sampled or tried to (`error` says why one is left out).
   */
  threads: ThreadStats[];
}

// Both work on a range of the pulled records in place: a typed-array view per sample
// costs more than hashing it.
function hashRange(rec: Uint32Array, start: number, end: number, state: number): number {
  // FNV-1a over the record's words: aggregation without building a string per sample.
  let h = (0x811c9dc5 ^ state) >>> 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ rec[i], 0x01000193) >>> 0;
  return h;
}

function sameRange(a: Uint32Array, rec: Uint32Array, start: number, end: number): boolean {
  if (a.length !== end - start) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== rec[start + i]) return false;
  return true;
}

class CpuProfileSession {
  /** Null for an internal reader (the continuous profile), which has no stream. */
  readonly writer: Writable | null;
  readonly hz: number;
  readonly period: number;
  readonly startMs = Date.now();
  private builderInstance: PprofBuilder | null = null;
  private readonly aggregates = new Map<number, Aggregate | Aggregate[]>();
  private readonly list: Aggregate[] = [];
  private readonly locationOf: (fnId: number, pos: number) => number;
  writerError: Error | null = null;
  pullTimer: NodeJS.Timeout | null = null;
  private detached = false;
  private readonly onError = (err: Error) => { this.writerError ??= err; };

  /** The sampler's counters when this reader joined: its stats are the difference. */
  readonly base: NativeCpuStats | null;
  /** The Workers' samples (main thread's profiles only). */
  readonly threads = new ThreadSamples((state) => pseudoTop(state), PSEUDO.program, RECORD_HEADER_WORDS);

  constructor(writer: Writable | null, hz: number) {
    this.writer = writer;
    this.hz = hz;
    this.base = joinSampler(this, hz);
    this.period = Math.round(1e9 / hz);
    const sym = symbolizer();
    const slot = 2 ** 32;
    this.locationOf = (fnId, pos) => this.builder.locationIdFor(fnId * slot + (pos + 1), () => sym.frame(fnId, pos));
    // Hold on to an early stream error (EPIPE while we profile) instead of letting it
    // crash the process as an unhandled 'error' event; StopCPUProfile reports it.
    writer?.on('error', this.onError);
    // The first timer of a process is costly to set up; StartCPUProfile returns first.
    process.nextTick(() => {
      if (this.detached) return;
      this.pullTimer = setInterval(() => this.pull(), PULL_EVERY_MS);
      this.pullTimer.unref();
    });
  }

  // Made at the first pull, not at start: StartCPUProfile stays cheap.
  get builder(): PprofBuilder {
    return (this.builderInstance ??= new PprofBuilder({
      sampleTypes: [{ type: 'samples', unit: 'count' }, { type: 'cpu', unit: 'nanoseconds' }],
      periodType: { type: 'cpu', unit: 'nanoseconds' },
      period: this.period,
      defaultSampleType: 'cpu',
      timeNanos: BigInt(this.startMs) * 1_000_000n,
    }));
  }

  /** Stops pulling. The error listener stays until the profile is written (releaseWriter). */
  detach(): void {
    this.detached = true;
    if (this.pullTimer) clearInterval(this.pullTimer);
    readers.delete(this);
  }

  /**
   * Hands the stream back to its owner. Called only once writeAll has settled, i.e. after
   * its own listener came and went: between stopping and writing (the gzip step) the
   * stream must never be without an error listener, or an asynchronous failure (an open
   * that fails with ENOENT, say) is an unhandled 'error' that kills the process.
   */
  releaseWriter(): void {
    this.writer?.removeListener('error', this.onError);
  }

  /**
   * Takes the records resolved so far, merges identical stacks and gives new stacks
   * their pprof locations now, so that stopping only has samples left to write.
   */
  pullNs = 0;

  pull(): void {
    pullAll();
  }

  /** Aggregates records pulled from the sampler (every reader sees the same ones). */
  take(rec: Uint32Array): void {
    const fresh: Aggregate[] = [];
    let i = 0;
    while (i < rec.length) {
      const n = rec[i];
      const weight = rec[i + 1];
      const state = rec[i + 2] & 0xff;
      const labelId = rec[i + 4];
      const start = i + RECORD_HEADER_WORDS;
      const end = start + 2 * n;
      // Samples aggregate by (stack, label set): one pprof sample per pair.
      const hash = hashRange(rec, start, end, state ^ Math.imul(labelId, 0x9e3779b1));
      let agg: Aggregate | undefined;
      const hit = this.aggregates.get(hash);
      if (hit) {
        if (!Array.isArray(hit)) {
          if (hit.state === state && hit.labelId === labelId && sameRange(hit.words, rec, start, end)) agg = hit;
        } else {
          for (const a of hit) if (a.state === state && a.labelId === labelId && sameRange(a.words, rec, start, end)) { agg = a; break; }
        }
      }
      if (!agg) {
        // Resolved now: the id may be reused once this profile has stopped.
        const own = labelId === 0 ? undefined : labelsForId(labelId) as LabelSpec[] | undefined;
        const labels = own ? [...own, THREAD_LABEL] : [THREAD_LABEL];
        agg = { words: rec.slice(start, end), hash, state, count: 0, weight: 0, ids: [], labelId, labels };
        if (!hit) this.aggregates.set(hash, agg);
        else if (Array.isArray(hit)) hit.push(agg);
        else this.aggregates.set(hash, [hit, agg]);
        this.list.push(agg);
        fresh.push(agg);
      }
      agg.count += 1;
      agg.weight += weight;
      i = end;
    }
    if (fresh.length === 0) return;
    const pairs: number[] = [];
    for (const a of fresh) for (const w of a.words) pairs.push(w);
    symbolizer().prepare(pairs);
    for (const a of fresh) {
      const top = pseudoTop(a.state);
      if (top) a.ids.push(this.builder.locationIdFor(`pseudo:${top.name}`, () => top));
      for (let k = 0; k < a.words.length; k += 2) {
        const pos = a.words[k + 1] | 0;
        a.ids.push(this.locationOf(a.words[k], pos));
        if (pos === -1) noPosition(a, a.words[k]);
      }
      // Nothing silently vanishes: a sample without any frame is still CPU time.
      if (a.ids.length === 0) a.ids.push(this.builder.locationIdFor('pseudo:program', () => PSEUDO.program));
      a.packed = packIds(a.ids);
    }
    noPositionSeen.clear();
  }

  private lateCache = { stacks: -1, count: 0 };

  /** lateFunctions().length, recounted only when new stacks arrived (stats while running). */
  lateCount(): number {
    if (this.lateCache.stacks !== this.list.length) this.lateCache = { stacks: this.list.length, count: this.lateFunctions().length };
    return this.lateCache.count;
  }

  /**
   * Your functions whose frames in this profile have no line because their code was
   * compiled before sigprof's listener: the ones SIGPROF_LATE_LOAD is about. Heaviest
   * first.
   */
  lateFunctions(): LateFunction[] {
    const weightOf = new Map<number, number>();
    for (const a of this.list) {
      if (a.noPosition) for (const fn of a.noPosition) weightOf.set(fn, (weightOf.get(fn) ?? 0) + a.weight);
    }
    const fns: LateFunction[] = [];
    if (weightOf.size > 0) {
      const sym = symbolizer();
      for (const id of native().lineLessFunctions(Uint32Array.from(weightOf.keys()))) {
        const f = sym.fn(id);
        if (!isUserCode(f)) continue;
        fns.push({ name: f.name, file: f.file, line: f.line, weight: weightOf.get(id) ?? 0 });
      }
      fns.sort((a, b) => b.weight - a.weight);
    }
    return fns;
  }

  takeThreads(batches: ThreadBatch[]): void {
    for (const b of batches) this.threads.take(b, this.builder);
  }

  /** Adds the aggregated samples and the lost-sample record; call once, at stop. */
  finish(durationNanos: number, droppedWeight: number, lostToOther: number): PprofBuilder {
    this.builder.setDuration(Math.max(0, Math.round(durationNanos)));
    for (const a of this.list) this.builder.addSampleIds(a.ids, [a.count, a.weight * this.period], a.labels, a.packed);
    this.threads.finish(this.builder, this.period);
    if (droppedWeight > 0) this.builder.addSample([PSEUDO.lost], [0, droppedWeight * this.period]);
    if (lostToOther > 0) this.builder.addSample([PSEUDO.lostToOther, PSEUDO.lost], [0, lostToOther * this.period]);
    return this.builder;
  }
}

let rate = DEFAULT_RATE;
let session: CpuProfileSession | null = null;
/** Every sample says which thread took it; this thread's are `main` or its Worker's. */
const THREAD_LABEL: LabelSpec = { key: 'thread', str: isMainThread ? 'main' : `worker-${threadId}` };

/*
 * One sampler, several readers. The native profiler runs once per thread; whoever reads
 * it (the StartCPUProfile session, the continuous profile that sigprof/pyroscope pushes,
 * and each /debug/pprof/profile capture) is a reader. Every pull hands the same records to
 * every reader, so each gets exactly the samples from its own start to its own end; the
 * sampler starts with the first reader and stops with the last. All readers sample at the
 * rate the sampler was started with. docs/pyroscope.md, "Sharing the CPU profiler".
 */
const readers = new Set<CpuProfileSession>();

/** Adds a reader, starting the sampler if it is the first; returns the counters to subtract (null: fresh start). */
function joinSampler(r: CpuProfileSession, hz: number): NativeCpuStats | null {
  const addon = native();
  if (readers.size === 0) {
    leaveProcessProfile();
    addon.cpuStart(hz);
    // Every other JS thread of the process joins a profile started in the main thread.
    workersStart(hz);
    profileStarted();
    readers.add(r);
    return null;
  }
  // Records already taken belong to the readers that were there before this one; the
  // flush makes that every sample up to now, not only what the collector resolved so far.
  pullAll(true);
  readers.add(r);
  return addon.cpuStats();
}

/** Removes a reader after giving it its last records; the last one stops the sampler first, which flushes it. */
function leaveSampler(r: CpuProfileSession): void {
  if (!readers.has(r)) return;
  const last = readers.size === 1;
  try {
    if (last) {
      native().cpuStop();
      workersStop();
    }
    pullAll(!last);
  } finally {
    readers.delete(r);
    // After the sampler's last pull: retired label ids may be reused from here.
    if (last) profileStopped();
  }
}

/** The rate the sampler runs at, 0 when no reader runs. */
function samplerHz(): number {
  for (const r of readers) return r.hz;
  return 0;
}

/** @internal Readers of the sampler now (0: it is stopped). */
export function samplerReaders(): number {
  return readers.size;
}

/** Takes the resolved records once and gives them to every reader (flush: see cpuTakeRecords). */
function pullAll(flush = false): void {
  // Thread CPU time, not wall time: on a shared core a pull can be preempted, and the
  // other process's time slice is not our cost.
  const addon = native();
  const t0 = addon.threadCpuNs();
  try {
    const rec = addon.cpuTakeRecords(flush);
    if (rec.length > 0) for (const r of readers) r.take(rec);
    const threads = workersTake();
    if (threads.length > 0) for (const r of readers) r.takeThreads(threads);
    samplesPulled();
  } finally {
    const ns = addon.threadCpuNs() - t0;
    for (const r of readers) r.pullNs += ns;
  }
}
let lastStats: CPUProfileStatsResult | null = null;
let warnedLateLoad = false;
const packageRoot = path.join(__dirname, '..') + path.sep;

interface LateFunction { name: string; file: string; line: number; weight: number }

// fn → the stack that last recorded it: once per stack without a scan (deep stacks).
const noPositionSeen = new Map<number, Aggregate>();
function noPosition(a: Aggregate, fn: number): void {
  if (noPositionSeen.get(fn) === a) return;
  noPositionSeen.set(fn, a);
  (a.noPosition ??= []).push(fn);
}

/**
 * Code the warning is about: the application's JavaScript, not Node's internals (node:
 * modules, and the wrapper `node -e` runs its script in), not sigprof's own package, and
 * not a module's top-level code (anonymous at 1:1: the module that requires sigprof was
 * compiled before it could, so its top level is always late).
 */
function isUserCode(f: FunctionMeta): boolean {
  if (f.kind !== FunctionKind.Js || f.file === '' || f.file.startsWith('node:') || f.file === '[eval]-wrapper') return false;
  if (f.file.startsWith(packageRoot)) return false;
  return !(f.name === '(anonymous)' && f.line <= 1 && f.column <= 1);
}

/**
 * Once per process, when a profile first has frames that lost their lines: name the
 * heaviest few, so the warning says which part of the profile it is about.
 */
function warnLateLoad(late: LateFunction[]): void {
  if (warnedLateLoad || late.length === 0) return;
  warnedLateLoad = true;
  const named = late.slice(0, 3).map((f) => `${f.name} (${f.file}:${f.line})`).join(', ');
  const more = late.length > 3 ? ` and ${late.length - 3} more` : '';
  const fix = process.env.SIGPROF_CODE_EVENTS === 'lazy'
    ? 'SIGPROF_CODE_EVENTS=lazy defers the code listener to the first profile; unset it to get lines for code compiled before then.'
    : 'Load sigprof before your code to get their lines: node --require sigprof/register app.js';
  process.emitWarning(`sigprof: ${late.length} function(s) in this CPU profile were compiled before sigprof loaded, so their samples have function-level lines only: ${named}${more}. ${fix}`, { code: 'SIGPROF_LATE_LOAD' });
}

/**
 * Go's rate is an `int` of Hz: whole numbers from 1 up. Fractions are refused rather than
 * rounded (1e-11 Hz would round to 0 and 1.5 Hz to a rate the caller did not ask for);
 * above 1 MHz the rate is capped, as Go caps it.
 */
function validateRate(hz: unknown): number {
  const range = `a whole number of Hz from 1 to ${MAX_CPU_PROFILE_RATE} (larger whole numbers are capped to ${MAX_CPU_PROFILE_RATE})`;
  if (typeof hz !== 'number' || !Number.isFinite(hz)) {
    throw new SigprofError(ERR_INVALID_RATE, `sigprof: the CPU profile rate must be ${range}; got ${typeof hz === 'number' ? hz : typeof hz}`);
  }
  if (hz <= 0) {
    throw new SigprofError(ERR_INVALID_RATE, `sigprof: the CPU profile rate must be ${range}; got ${hz} (use StopCPUProfile() to stop profiling)`);
  }
  if (!Number.isInteger(hz)) {
    throw new SigprofError(ERR_INVALID_RATE, `sigprof: the CPU profile rate must be ${range}; got ${hz}`);
  }
  return Math.min(hz, MAX_CPU_PROFILE_RATE);
}

/**
 * Sets the sampling rate (Hz) for the next CPU profile. Capped at 1 MHz like Go. Refused
 * while a profile runs (Go prints a warning and ignores it; we throw, changing nothing).
 */
export function SetCPUProfileRate(hz: number): void {
  const value = validateRate(hz);
  if (session) {
    throw new SigprofError(ERR_PROFILE_IN_USE, 'sigprof: cannot change the CPU profile rate while a CPU profile is running');
  }
  rate = value;
}

/** The rate the next (or current) CPU profile uses. */
export function CPUProfileRate(): number {
  return session ? session.hz : rate;
}

/**
 * Starts CPU profiling of this thread; the profile is written to `w` (gzipped pprof) by
 * StopCPUProfile. Throws if a CPU profile is already running.
 */
export function StartCPUProfile(w: Writable): void {
  assertWritable(w, 'StartCPUProfile(w): w');
  if (session) throw new SigprofError(ERR_PROFILE_IN_USE, 'sigprof: a CPU profile is already running; call StopCPUProfile() first');
  const running = samplerHz();
  if (running !== 0 && running !== rate) {
    throw new SigprofError(ERR_PROFILE_IN_USE, `sigprof: the CPU profiler is already sampling at ${running} Hz for sigprof/pyroscope's continuous profile or a /debug/pprof/profile capture; a profile taken meanwhile shares it and must use the same rate: SetCPUProfileRate(${running}), or start it once those have stopped`);
  }
  session = new CpuProfileSession(w, rate);
}

function collectStats(running: boolean, hz: number, pullNs: number, lateUserFunctions: number, base: NativeCpuStats | null = null, now: NativeCpuStats | null = null, threads: ThreadSamples | null = null): CPUProfileStatsResult {
  const s = sinceJoin(now ?? native().cpuStats(), base);
  const period = 1e9 / (hz || DEFAULT_RATE);
  const cpuNanos = s.weight * period;
  return {
    running,
    hz,
    mode: s.hz === 0 ? 'none' : s.clock,
    samples: s.samples,
    dropped: s.dropped,
    droppedWeight: s.droppedWeight,
    lostToOtherProfiler: s.foreignLostWeight,
    rejectedSignals: s.rejectedSignals,
    signal: s.signal,
    cpuNanos,
    deliveredHz: cpuNanos > 0 ? s.samples / (cpuNanos / 1e9) : 0,
    handlerNsMean: s.handlerCalls > 0 ? s.handlerNsTotal / s.handlerCalls : 0,
    handlerNsMax: s.handlerNsMax,
    selfCostFraction: cpuNanos > 0 ? (s.handlerNsTotal + pullNs) / cpuNanos : 0,
    helperThreadsCpuNanos: s.collectorCpuNs + s.helperCpuNs,
    helperThreadsCostFraction: cpuNanos > 0 ? (s.collectorCpuNs + s.helperCpuNs) / cpuNanos : 0,
    frames: s.frames,
    unresolvedFrames: s.unresolvedFrames,
    truncatedSamples: s.truncated,
    durationNanos: (running ? s.nowNs : s.stopNs) - s.startNs,
    lateUserFunctions,
    threads: [{ thread: THREAD_LABEL.str!, name: '', samples: s.samples, lost: 0 }, ...(threads?.stats() ?? [])],
  };
}

/**
 * A reader's share of the sampler's counters: the difference since it joined (handlerNsMax
 * stays the sampler's), ending now if other readers keep the sampler running.
 */
function sinceJoin(s: NativeCpuStats, base: NativeCpuStats | null): NativeCpuStats {
  const stopNs = readers.size > 0 ? s.nowNs : s.stopNs;
  if (!base) return { ...s, stopNs };
  const out = { ...s, stopNs, startNs: base.nowNs };
  for (const k of ['signals', 'samples', 'weight', 'dropped', 'droppedWeight', 'handlerCalls', 'handlerNsTotal', 'frames', 'unresolvedFrames', 'collectorCpuNs', 'helperCpuNs', 'truncated', 'foreignLostWeight', 'rejectedSignals'] as const) out[k] = s[k] - base[k];
  return out;
}

/** @internal One slice of the continuous CPU profile, ready to encode. */
export interface CPUSlice {
  builder: PprofBuilder;
  startMs: number;
  endMs: number;
  hz: number;
  stats: CPUProfileStatsResult;
}

/**
 * @internal The CPU profile as consecutive slices with no gap between them (what
 * sigprof/pyroscope uploads): cut() ends the current slice and starts the next in one
 * synchronous step, so every sample is in exactly one slice. It is a reader of the shared
 * sampler, so StartCPUProfile keeps working alongside it. A /debug/pprof/profile capture
 * is one too, stopped after its single slice.
 */
export class ContinuousCPUProfile {
  private cur: CpuProfileSession | null;

  /** Joins the sampler at its running rate, or starts it at `hz` (default: SetCPUProfileRate's). */
  constructor(hz?: number) {
    const h = samplerHz() || (hz === undefined ? rate : validateRate(hz));
    this.cur = new CpuProfileSession(null, h);
  }

  get running(): boolean { return this.cur !== null; }

  /** Ends the current slice and begins the next one. */
  cut(): CPUSlice {
    const old = this.mustRun();
    // Joining pulls (old takes what is resolved so far), then the next slice is a reader
    // and old leaves, with nothing in between: each record lands in one of them, and the
    // counters the next one starts from are the ones old ends at.
    const next = new CpuProfileSession(null, old.hz);
    old.detach();
    this.cur = next;
    const end = Date.now();
    const stats = collectStats(false, old.hz, old.pullNs, 0, old.base, next.base, old.threads);
    return { builder: old.finish(stats.durationNanos, stats.droppedWeight, stats.lostToOtherProfiler), startMs: old.startMs, endMs: end, hz: old.hz, stats };
  }

  /** Ends the last slice and leaves the sampler (stopping it if nobody else reads it). */
  stop(): CPUSlice {
    const old = this.mustRun();
    this.cur = null;
    try {
      leaveSampler(old);
    } finally {
      old.detach();
    }
    const stats = collectStats(false, old.hz, old.pullNs, 0, old.base, null, old.threads);
    return { builder: old.finish(stats.durationNanos, stats.droppedWeight, stats.lostToOtherProfiler), startMs: old.startMs, endMs: Date.now(), hz: old.hz, stats };
  }

  private mustRun(): CpuProfileSession {
    if (!this.cur) throw new SigprofError(ERR_PROFILE_IN_USE, 'sigprof: this continuous CPU profile was stopped');
    return this.cur;
  }
}

/** Self-statistics of the current (or last) CPU profile: samples, drops, handler cost. */
export function CPUProfileStats(): CPUProfileStatsResult | null {
  if (session) return collectStats(true, session.hz, session.pullNs, session.lateCount(), session.base, null, session.threads);
  return lastStats;
}

function pseudoTop(state: number): Frame | null {
  switch (state) {
    case VmState.GC: return PSEUDO.gc;
    case VmState.PARSER:
    case VmState.BYTECODE_COMPILER:
    case VmState.COMPILER: return PSEUDO.compiler;
    case VmState.IDLE:
    case VmState.IDLE_EXTERNAL: return PSEUDO.idle;
    case VmState.ATOMICS_WAIT: return PSEUDO.atomicsWait;
    default: return null;
  }
}

/** Stops the native profiler and takes the last records; null when nothing runs. */
function stopSession(): CpuProfileSession | null {
  const s = session;
  if (!s) return null;
  try {
    leaveSampler(s);
  } finally {
    session = null;
    s.detach();
  }
  const late = s.lateFunctions();
  lastStats = collectStats(false, s.hz, s.pullNs, late.length, s.base, null, s.threads);
  warnLateLoad(late);
  return s;
}

/**
 * Stops the CPU profile and writes it. Resolves once every byte is written and the
 * stream ended; rejects with the writer's error (the profiler is stopped either way).
 * Resolves immediately when no profile is running.
 */
export async function StopCPUProfile(): Promise<void> {
  const s = stopSession();
  if (!s) return;
  try {
    if (s.writerError) throw s.writerError;
    const data = await s.finish(lastStats!.durationNanos, lastStats!.droppedWeight, lastStats!.lostToOtherProfiler).encodeGzip();
    // The stream may have failed while we compressed (its open, say); streams without
    // `errored` would not tell writeAll.
    if (s.writerError) throw s.writerError;
    await writeAll(s.writer!, data);
  } finally {
    s.releaseWriter();
  }
}

/**
 * @internal Stops the CPU profile and returns it gzipped, synchronously, without writing
 * to the stream it was started with (whose listener is released). For `sigprof run`'s
 * exit hook, where no asynchronous work can run. Null when no profile runs.
 */
export function stopCPUProfileSync(): Buffer | null {
  const s = stopSession();
  if (!s) return null;
  s.releaseWriter();
  const raw = s.finish(lastStats!.durationNanos, lastStats!.droppedWeight, lastStats!.lostToOtherProfiler).encode();
  return zlib.gzipSync(raw, { level: zlib.constants.Z_BEST_SPEED });
}

// A process that exits mid-profile must not leave a timer behind (the addon's cleanup
// hook also stops it when the environment goes away).
process.once('exit', () => {
  if (readers.size > 0) {
    try { native().cpuStop(); } catch { /* exiting anyway */ }
  }
});
