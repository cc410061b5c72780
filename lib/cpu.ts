/**
 * StartCPUProfile / StopCPUProfile over the native SIGPROF sampler.
 *
 * The addon's collector thread empties the signal ring and resolves addresses while JS
 * runs; this side pulls resolved records about once a second (and at stop), aggregates
 * identical stacks, and at stop encodes one pprof profile and writes it, gzipped, to the
 * caller's Writable.
 */
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { native } from './native';
import { symbolizer } from './symbolize';
import { PprofBuilder, Frame } from './pprof-builder';
import { SigprofError, ERR_PROFILE_IN_USE, ERR_INVALID_RATE } from './errors';
import { assertWritable, writeAll } from './writer';

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
} satisfies Record<string, Frame>;

interface Aggregate { pairs: number[]; state: number; count: number; weight: number }

export interface CPUProfileStatsResult {
  running: boolean;
  /** Requested rate (Hz). */
  hz: number;
  /** 'timer': per-thread CPU-clock POSIX timer; 'thread': helper thread + tgsigqueueinfo (rates above 200 Hz). */
  mode: 'timer' | 'thread' | 'none';
  /** Samples recorded (signals that produced a stack). */
  samples: number;
  /** Samples the ring had no room for; they appear as `(lost samples)`. */
  dropped: number;
  droppedWeight: number;
  /** CPU time the samples stand for (weight × period). */
  cpuNanos: number;
  /** Samples per CPU-second of the profiled thread. */
  deliveredHz: number;
  /** Handler time per sample, including GetStackSample. */
  handlerNsMean: number;
  handlerNsMax: number;
  frames: number;
  unresolvedFrames: number;
  durationNanos: number;
  /** User functions compiled before sigprof loaded (their lines are function-level). */
  lateUserFunctions: number;
}

class CpuProfileSession {
  readonly writer: Writable;
  readonly hz: number;
  readonly startMs = Date.now();
  readonly aggregates = new Map<string, Aggregate>();
  writerError: Error | null = null;
  pullTimer: NodeJS.Timeout;
  private readonly onError = (err: Error) => { this.writerError ??= err; };

  constructor(writer: Writable, hz: number) {
    this.writer = writer;
    this.hz = hz;
    // Hold on to an early stream error (EPIPE while we profile) instead of letting it
    // crash the process as an unhandled 'error' event; StopCPUProfile reports it.
    writer.on('error', this.onError);
    this.pullTimer = setInterval(() => this.pull(), PULL_EVERY_MS);
    this.pullTimer.unref();
  }

  detach(): void {
    clearInterval(this.pullTimer);
    this.writer.removeListener('error', this.onError);
  }

  pull(): void {
    const rec = native().cpuTakeRecords();
    let i = 0;
    while (i < rec.length) {
      const n = rec[i];
      const weight = rec[i + 1];
      const state = rec[i + 2] & 0xff;
      const start = i + 4;
      const end = start + 2 * n;
      const key = `${state}|${rec.subarray(start, end).join(',')}`;
      let agg = this.aggregates.get(key);
      if (!agg) {
        agg = { pairs: Array.from(rec.subarray(start, end)), state, count: 0, weight: 0 };
        this.aggregates.set(key, agg);
      }
      agg.count += 1;
      agg.weight += weight;
      i = end;
    }
  }
}

let rate = DEFAULT_RATE;
let session: CpuProfileSession | null = null;
let lastStats: CPUProfileStatsResult | null = null;
let warnedLateLoad = false;

function validateRate(hz: unknown): number {
  if (typeof hz !== 'number' || Number.isNaN(hz) || !Number.isFinite(hz)) {
    throw new SigprofError(ERR_INVALID_RATE, `sigprof: the CPU profile rate must be a finite number of Hz (got ${typeof hz === 'number' ? hz : typeof hz})`);
  }
  if (hz <= 0) {
    throw new SigprofError(ERR_INVALID_RATE, `sigprof: the CPU profile rate must be > 0 Hz (got ${hz}); use StopCPUProfile() to stop profiling`);
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
  const addon = native();
  addon.cpuStart(rate);
  session = new CpuProfileSession(w, rate);
  const late = lateUserFunctions();
  if (late > 0 && !warnedLateLoad) {
    warnedLateLoad = true;
    process.emitWarning(`sigprof was loaded after ${late} function(s) of your code were compiled; their samples get function-level lines only. Load it first: node --require sigprof/register app.js`, { code: 'SIGPROF_LATE_LOAD' });
  }
}

function collectStats(running: boolean, hz: number): CPUProfileStatsResult {
  const s = native().cpuStats();
  const period = 1e9 / (hz || DEFAULT_RATE);
  const cpuNanos = s.weight * period;
  return {
    running,
    hz,
    mode: s.hz === 0 ? 'none' : s.threadMode ? 'thread' : 'timer',
    samples: s.samples,
    dropped: s.dropped,
    droppedWeight: s.droppedWeight,
    cpuNanos,
    deliveredHz: cpuNanos > 0 ? s.samples / (cpuNanos / 1e9) : 0,
    handlerNsMean: s.handlerCalls > 0 ? s.handlerNsTotal / s.handlerCalls : 0,
    handlerNsMax: s.handlerNsMax,
    frames: s.frames,
    unresolvedFrames: s.unresolvedFrames,
    durationNanos: (running ? s.nowNs : s.stopNs) - s.startNs,
    lateUserFunctions: lateUserFunctions(),
  };
}

const packageRoot = path.join(__dirname, '..') + path.sep;

/** User functions (outside node: internals and sigprof itself) compiled before sigprof loaded. */
function lateUserFunctions(): number {
  let n = 0;
  for (const [url, count] of Object.entries(native().lateFunctions())) {
    const file = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
    if (!file.startsWith(packageRoot)) n += count;
  }
  return n;
}

/** Self-statistics of the current (or last) CPU profile: samples, drops, handler cost. */
export function CPUProfileStats(): CPUProfileStatsResult | null {
  if (session) return collectStats(true, session.hz);
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

export function buildCpuProfile(aggregates: Iterable<Aggregate>, hz: number, durationNanos: number, startMs: number, droppedWeight: number): PprofBuilder {
  const period = Math.round(1e9 / hz);
  const builder = new PprofBuilder({
    sampleTypes: [{ type: 'samples', unit: 'count' }, { type: 'cpu', unit: 'nanoseconds' }],
    periodType: { type: 'cpu', unit: 'nanoseconds' },
    period,
    defaultSampleType: 'cpu',
    timeNanos: BigInt(startMs) * 1_000_000n,
    durationNanos: Math.max(0, Math.round(durationNanos)),
  });
  const sym = symbolizer();
  const list = [...aggregates];
  const all: number[] = [];
  for (const a of list) for (const v of a.pairs) all.push(v);
  sym.prepare(all);
  for (const a of list) {
    const frames: Frame[] = [];
    const top = pseudoTop(a.state);
    if (top) frames.push(top);
    for (let i = 0; i < a.pairs.length; i += 2) frames.push(sym.frame(a.pairs[i], a.pairs[i + 1] | 0));
    // Nothing silently vanishes: a sample without any frame is still CPU time.
    if (frames.length === 0) frames.push(PSEUDO.program);
    builder.addSample(frames, [a.count, a.weight * period]);
  }
  if (droppedWeight > 0) builder.addSample([PSEUDO.lost], [0, droppedWeight * period]);
  return builder;
}

/**
 * Stops the CPU profile and writes it. Resolves once every byte is written and the
 * stream ended; rejects with the writer's error (the profiler is stopped either way).
 * Resolves immediately when no profile is running.
 */
export async function StopCPUProfile(): Promise<void> {
  const s = session;
  if (!s) return;
  const addon = native();
  try {
    addon.cpuStop();
  } finally {
    session = null;
    s.detach();
  }
  s.pull();
  lastStats = collectStats(false, s.hz);
  if (s.writerError) throw s.writerError;
  const builder = buildCpuProfile(s.aggregates.values(), s.hz, lastStats.durationNanos, s.startMs, lastStats.droppedWeight);
  const data = await builder.encodeGzip();
  await writeAll(s.writer, data);
}

// A process that exits mid-profile must not leave a timer behind (the addon's cleanup
// hook also stops it when the environment goes away).
process.once('exit', () => {
  if (session) {
    try { native().cpuStop(); } catch { /* exiting anyway */ }
  }
});
