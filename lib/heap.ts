/**
 * Heap profiling: Go's runtime.MemProfileRate, WriteHeapProfile and the `heap` / `allocs`
 * profiles, over V8's sampling heap profiler (native/heap_profiler.cc).
 *
 * How the numbers are made (V8's sampler read in src/profiler/sampling-heap-profiler.cc,
 * the same on V8 11.3 / Node 20 through V8 14 / Node 26):
 *  - V8 samples allocations with a Poisson process of mean `rate` bytes, like Go's
 *    MemProfileRate: an object of `size` bytes is sampled with probability
 *    1 - exp(-size / rate).
 *  - The tree GetAllocationProfile returns is ALREADY unsampled (count = round(n / p)),
 *    and each Sample's `count` is that scaling rounded per sample. We take neither: we
 *    count raw samples (one per observation) per (stack, size) and divide by p exactly
 *    once, here. The tree's counts are only compared against ours in the tests.
 *  - Only the V8 heap is sampled. Buffer / ArrayBuffer contents live outside it and do not
 *    appear; their small JS wrappers do.
 *
 * In use vs allocated:
 *  - V8 < 14 (Node 20, 22, 24): the sampler runs without the include-collected flags, so V8
 *    drops a sample when its object is collected and what remains is the live set. There is
 *    no honest per-stack estimate of past allocations (with the include flags V8 keeps the
 *    samples but cannot say which are live, which would break `heap`), so `allocs` carries
 *    the in-use values only and says so; no alloc_* numbers are made up.
 *  - V8 >= 14 (Node 26): the sampler keeps collected samples and marks `is_live`, giving
 *    both views. Kept samples grow without bound (~100 bytes of native memory each), so
 *    when more than BACKLOG_CAP are held the current sampler's allocation totals are folded
 *    into a per-(stack, size) table here and the sampler restarts. The cost: objects that
 *    were live at that restart leave the in-use view (V8 cannot hand samples over). The
 *    profile's comments say when the in-use view starts.
 *  - As of the last GC, like Go ("the most recently completed garbage collection"): the
 *    addon notes the newest sample id at the end of each GC (minor or major) and samples
 *    taken after it are left out, so a burst of garbage allocated since the last GC does
 *    not count as in use. `{ gc: true }` (Go's ?gc=1) runs a full GC first, so everything
 *    current is included. docs/heap.md has the details and the minor-GC decision.
 */
import type { Writable } from 'node:stream';
import * as v8 from 'node:v8';
import { PprofBuilder, nowNanos, type Frame } from './pprof-builder';
import { SigprofError, ERR_INVALID_RATE, ERR_NATIVE_UNAVAILABLE, ERR_PROFILE_IN_USE } from './errors';
import { assertWritable, writeAll } from './writer';
import type { BuiltinProfileSource, WriteToOptions } from './registry-types';
import { native } from './native';
import { mapFrame } from './symbolize';

export const DEFAULT_MEM_PROFILE_RATE = 512 * 1024;
/** V8 caps each sampling step at INT_MAX, so a larger mean would not be honoured (and the scaling would lie). */
export const MAX_MEM_PROFILE_RATE = 2 ** 31 - 1;
/** Frames kept per sample. V8's own default is 16; Go keeps 32. Deeper costs only at sample time. */
const STACK_DEPTH = 64;
/** V8 >= 14 only: collected samples V8 may hold before we fold and restart (~20 MB of native memory). */
const BACKLOG_CAP = 200_000;
const BACKLOG_CHECK_MS = 60_000;

interface HeapAddon {
  heapStart(interval: number, depth: number, includeCollected: boolean): boolean;
  heapStop(): void;
  heapProfile(): RawHeapProfile | null;
  heapSampleCount(): number;
  heapFullGC(): void;
  heapHasIsLive: boolean;
}

interface RawHeapProfile {
  names: string[];
  scripts: string[];
  parent: Int32Array;
  ids: Uint32Array;
  lines: Int32Array;
  columns: Int32Array;
  /** V8's script id per node (0 or less: none); absent from an older addon. */
  scriptIds?: Int32Array;
  allocNode: Uint32Array;
  allocSize: Float64Array;
  allocCount: Float64Array;
  sampleNode: Int32Array;
  sampleSize: Float64Array;
  sampleId: Float64Array;
  sampleLive: Uint8Array;
  /** Newest sample id at the end of the last GC the addon looked at; -1 before one. */
  gcCutoff: number;
  gcs: number;
  gcsSkipped: number;
}

let addon: HeapAddon | null = null;
let addonError: Error | null = null;
try {
  const a = native() as unknown as Partial<HeapAddon>;
  if (typeof a.heapStart === 'function') addon = a as HeapAddon;
  else addonError = new Error('the addon was built without native/heap_profiler.cc');
} catch (err) {
  addonError = err as Error;
}

/** True where V8 reports is_live (V8 >= 14), i.e. where `allocs` has alloc_* values. */
export const heapHasAllocEstimate = !!addon?.heapHasIsLive;

interface Agg { frames: Frame[]; size: number; objects: number }

const state = {
  rate: DEFAULT_MEM_PROFILE_RATE,
  /** We started the isolate's sampler and it is ours to stop. */
  owns: false,
  /** When the current sampler started: the in-use view covers objects allocated since. */
  sinceMs: 0,
  /** Why there is no sampler although rate > 0 (someone else holds it, or it was stopped under us). */
  problem: '' as string,
  /** V8 >= 14: allocation estimates (already unsampled) of samplers that are gone, per stack+size. */
  folded: new Map<string, Agg>(),
  timer: null as NodeJS.Timeout | null,
  loadStarted: false,
  /** The sampler was restarted after its first start (rate change, fold): in-use misses older objects. */
  restarted: false,
  everStarted: false,
  /** Newest sample id after the last `gc: true` read (-1: none since the sampler started). */
  gcCutoff: -1,
};

function nativeOrThrow(): HeapAddon {
  if (!addon) {
    throw new SigprofError(ERR_NATIVE_UNAVAILABLE, `sigprof: the native addon is not available for heap profiling (${addonError?.message ?? 'unknown'})`);
  }
  return addon;
}

function validateRate(v: unknown): number {
  if (typeof v !== 'number') {
    const e = new TypeError(`sigprof: MemProfileRate must be a number of bytes (got ${v === null ? 'null' : typeof v})`) as TypeError & { code: string };
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  if (!Number.isInteger(v) || v < 0 || v > MAX_MEM_PROFILE_RATE) {
    const e = new RangeError(`sigprof: MemProfileRate must be an integer from 0 (off) to ${MAX_MEM_PROFILE_RATE} bytes (got ${v})`) as RangeError & { code: string };
    e.code = ERR_INVALID_RATE;
    throw e;
  }
  return v;
}

function startSampler(a: HeapAddon, rate: number): boolean {
  if (!a.heapStart(rate, STACK_DEPTH, a.heapHasIsLive)) return false;
  state.owns = true;
  state.restarted = state.everStarted;
  state.everStarted = true;
  state.sinceMs = Date.now();
  state.gcCutoff = -1;
  state.problem = '';
  if (a.heapHasIsLive && !state.timer) {
    state.timer = setInterval(checkBacklog, BACKLOG_CHECK_MS);
    state.timer.unref();
  }
  return true;
}

/** Stops our sampler; V8 frees every sample with it. On V8 >= 14 its allocation totals are kept first. */
function stopSampler(a: HeapAddon): void {
  if (!state.owns) return;
  if (a.heapHasIsLive) foldAllocations(a);
  a.heapStop();
  state.owns = false;
}

function foldAllocations(a: HeapAddon): void {
  const raw = a.heapProfile();
  if (!raw) return;
  for (const r of aggregate(raw).values()) {
    if (r.allN === 0) continue;
    const key = recordKey(r.frames, r.size);
    const prev = state.folded.get(key);
    const objects = r.allN * scale(r.size, state.rate);
    if (prev) prev.objects += objects;
    else state.folded.set(key, { frames: r.frames, size: r.size, objects });
  }
}

function checkBacklog(): void {
  try {
    const a = addon;
    if (!a || !state.owns) return;
    if (a.heapSampleCount() <= BACKLOG_CAP) return;
    stopSampler(a);
    if (!startSampler(a, state.rate)) state.problem = 'the sampler could not be restarted after folding its samples';
  } catch {
    // A timer must never take the process down; the next profile read reports the state.
  }
}

/**
 * Changing the rate restarts V8's sampler, which discards every sample taken so far: the
 * in-use view starts empty and fills as new objects are allocated (objects allocated before
 * the change are not represented any more). On V8 >= 14 the allocation totals so far are
 * kept. Like Go, set it once, early. Setting the current value again changes nothing.
 */
function setMemProfileRate(v: unknown): void {
  const rate = validateRate(v);
  const a = addon;
  if (!a) {
    state.rate = rate;
    return;
  }
  if (rate === state.rate && (state.owns || rate === 0)) return;
  if (!state.owns && rate > 0) {
    // Someone else may hold the isolate's sampler; refuse before changing anything.
    if (!startSampler(a, rate)) {
      throw new SigprofError(ERR_PROFILE_IN_USE, 'sigprof: V8\'s sampling heap profiler is already running for another user (inspector, --heap-prof or another profiler)');
    }
    state.rate = rate;
    return;
  }
  stopSampler(a);
  state.rate = rate;
  if (rate > 0 && !startSampler(a, rate)) state.problem = 'V8\'s sampling heap profiler could not be restarted';
}

/** Go's `runtime` package, for the one variable that belongs there. */
export const runtime: { MemProfileRate: number } = Object.defineProperty({} as { MemProfileRate: number }, 'MemProfileRate', {
  get: () => state.rate,
  set: setMemProfileRate,
  enumerable: true,
  configurable: false,
});

/**
 * Starts sampling at the default rate, as Go does from process start. Idempotent, and never
 * throws: when another user holds V8's sampler, profiles say so instead.
 */
export function startHeapSamplingAtLoad(): void {
  if (state.loadStarted) return;
  state.loadStarted = true;
  if (!addon || state.owns || state.rate === 0) return;
  try {
    if (!startSampler(addon, state.rate)) state.problem = 'V8\'s sampling heap profiler was already running for another user (inspector, --heap-prof or another profiler) when sigprof loaded';
  } catch (err) {
    state.problem = `starting V8's sampling heap profiler failed: ${(err as Error).message}`;
  }
}

// ---- reading the profile ----------------------------------------------------------------

function scale(size: number, rate: number): number {
  // P(sampled) = 1 - exp(-size/rate); expm1 keeps precision for size << rate.
  return rate > 0 && size > 0 ? 1 / -Math.expm1(-size / rate) : 1;
}

function recordKey(frames: Frame[], size: number): string {
  let k = String(size);
  for (const f of frames) k += `\n${f.name}\0${f.file}\0${f.line}\0${f.column ?? 0}`;
  return k;
}

interface RawRecord { frames: Frame[]; size: number; liveN: number; allN: number }

/**
 * Frames of scripts V8 no longer has. V8's sampler names a node's file and line from the
 * scripts alive when the profile is read, so a module that was collected since (nothing of
 * it reachable, only the data it allocated) leaves its frames with a name and nothing
 * else. The code map saw every function's code event, with its script's URL and first
 * line, and keeps them: the file is the script's, and the line is the first line of the
 * one function of that name in it (none when the name is not unique there).
 */
class CollectedScripts {
  private readonly scripts = new Map<number, { url: string; lines: Map<string, number[]> }>();

  frame(scriptId: number, name: string, line: number, column: number): { url: string; line: number; column: number } {
    let s = this.scripts.get(scriptId);
    if (!s) {
      s = { url: '', lines: new Map() };
      let flat: Array<string | number> = [];
      try { flat = native().functionsOfScript(scriptId); } catch { /* an addon without it */ }
      for (let i = 0; i + 7 < flat.length; i += 8) {
        s.url ||= flat[i + 1] as string;
        const fnName = (flat[i] as string) || '(anonymous)';
        const at = [flat[i + 3] as number, flat[i + 4] as number];
        const known = s.lines.get(fnName);
        if (!known) s.lines.set(fnName, at);
        else if (known[0] !== at[0] || known[1] !== at[1]) s.lines.set(fnName, [0, 0]);
      }
      this.scripts.set(scriptId, s);
    }
    if (!s.url) return { url: '', line, column };
    const at = line > 0 ? [line, column] : (s.lines.get(name) ?? [0, 0]);
    return { url: s.url, line: at[0], column: at[1] };
  }
}

/**
 * Raw sample counts per (stack, size); the unit Go's buckets use and the legacy text needs.
 * Samples with ids above `cutoff` (taken after the last GC) are left out of the live count;
 * they are allocations all the same.
 */
function aggregate(raw: RawHeapProfile, cutoff = Infinity): Map<string, RawRecord> {
  const n = raw.names.length;
  const stacks: Frame[][] = new Array(n);
  const collected = new CollectedScripts();
  for (let i = 0; i < n; i++) {
    const name = raw.names[i] || '(anonymous)';
    let url = raw.scripts[i] || '';
    let line = raw.lines[i] > 0 ? raw.lines[i] : 0;
    let column = raw.columns[i] > 0 ? raw.columns[i] : 0;
    const scriptId = raw.scriptIds?.[i] ?? 0;
    if (!url && scriptId > 0) ({ url, line, column } = collected.frame(scriptId, name, line, column));
    // V8 reports the function's start here, so the map's name for that position is the function's.
    const generated: Frame = { name, file: url, line, startLine: line, column };
    const frame = url && line > 0 ? mapFrame(url, generated, column, column) : generated;
    const p = raw.parent[i];
    // Parents precede children in the native walk; leaf first like pprof samples.
    stacks[i] = p >= 0 ? [frame, ...stacks[p]] : [frame];
  }
  const out = new Map<string, RawRecord>();
  const byNodeSize = new Map<number, Map<number, RawRecord>>();
  for (let i = 0; i < raw.sampleNode.length; i++) {
    const node = raw.sampleNode[i];
    const size = raw.sampleSize[i];
    let sizes = byNodeSize.get(node);
    if (!sizes) byNodeSize.set(node, (sizes = new Map()));
    let r = sizes.get(size);
    if (!r) {
      const key = recordKey(stacks[node], size);
      r = out.get(key);
      if (!r) out.set(key, (r = { frames: stacks[node], size, liveN: 0, allN: 0 }));
      sizes.set(size, r);
    }
    r.allN++;
    if (raw.sampleLive[i] && raw.sampleId[i] <= cutoff) r.liveN++;
  }
  return out;
}

export interface HeapRecord {
  frames: Frame[];
  /** Bytes per object (Go's blocksize). */
  size: number;
  /** Raw samples of live objects / of all objects (V8 >= 14; else = live). */
  liveSamples: number;
  allocSamples: number;
  /** Estimates: raw samples divided by their sampling probability, once. */
  inuseObjects: number;
  inuseBytes: number;
  allocObjects: number;
  allocBytes: number;
}

export interface HeapSnapshot {
  rate: number;
  hasAlloc: boolean;
  records: HeapRecord[];
  comments: string[];
  /** The tree's own (V8-unsampled) in-use bytes, for cross-checks; NaN when the tree includes collected samples. */
  treeBytes: number;
  /** Samples of live objects taken since the last GC, left out of the in-use view (0 with `gc: true`). */
  afterGC: number;
  /** GCs since the sampler started, and those whose cutoff was not read (cost budget). */
  gcs: number;
  gcsSkipped: number;
}

function runFullGC(a: HeapAddon): void {
  const g = (globalThis as { gc?: unknown }).gc;
  if (typeof g === 'function') (g as () => void)();
  else a.heapFullGC();
}

/** Reads the sampler now. Exported for tests and tools; the profiles below are built from it. */
export function takeHeapSnapshot(opts: WriteToOptions = {}): HeapSnapshot {
  const a = nativeOrThrow();
  if (opts.gc) runFullGC(a);
  const comments: string[] = [];
  const rate = state.rate;
  let raw: RawHeapProfile | null = null;
  if (state.owns) {
    raw = a.heapProfile();
    if (!raw) {
      // Stopped under us (inspector's HeapProfiler.stopSampling, another addon).
      state.owns = false;
      state.problem = 'V8\'s sampling heap profiler was stopped by another user; set runtime.MemProfileRate to restart it';
    }
  }
  if (state.problem) comments.push(`sigprof: ${state.problem}`);
  if (rate === 0) comments.push('sigprof: MemProfileRate is 0: heap sampling is off');
  const hasAlloc = a.heapHasIsLive;
  const records: HeapRecord[] = [];
  let treeBytes = 0;
  let afterGC = 0;
  const gcs = raw?.gcs ?? 0;
  const gcsSkipped = raw?.gcsSkipped ?? 0;
  const seen = new Set<string>();
  if (raw) {
    if (hasAlloc) {
      treeBytes = NaN;
    } else {
      for (let i = 0; i < raw.allocNode.length; i++) treeBytes += raw.allocSize[i] * raw.allocCount[i];
    }
    // Go's heap profile is "as of the most recently completed garbage collection": what
    // was allocated since has had no chance to be freed, so counting it would count the
    // garbage of a burst as in use. With `gc: true` a full GC has just run: nothing is newer.
    let cutoff = Math.max(raw.gcCutoff, state.gcCutoff);
    if (opts.gc) {
      // The GC just run is the last one: remember where it left the sampler whatever the
      // addon's cost budget did, so later reads without `gc` include all of it too.
      for (let i = 0; i < raw.sampleId.length; i++) if (raw.sampleId[i] > state.gcCutoff) state.gcCutoff = raw.sampleId[i];
      cutoff = Infinity;
    } else if (cutoff < 0) {
      cutoff = Infinity;
    }
    for (let i = 0; i < raw.sampleId.length; i++) if (raw.sampleLive[i] && raw.sampleId[i] > cutoff) afterGC++;
    if (cutoff === Infinity && !opts.gc) comments.push('sigprof: no garbage collection has completed since sampling started: objects not yet collected count as in use');
    else if (afterGC > 0) comments.push(`sigprof: as of the most recently completed garbage collection (${afterGC} samples taken since then are left out; gc=1 runs one first)`);
    for (const [key, r] of aggregate(raw, cutoff)) {
      const s = scale(r.size, rate);
      const folded = state.folded.get(key);
      if (folded) seen.add(key);
      const allocObjects = hasAlloc ? r.allN * s + (folded?.objects ?? 0) : 0;
      records.push({
        frames: r.frames, size: r.size, liveSamples: r.liveN, allocSamples: r.allN,
        inuseObjects: r.liveN * s, inuseBytes: r.liveN * s * r.size,
        allocObjects, allocBytes: allocObjects * r.size,
      });
    }
    if (state.restarted) comments.push(`sigprof: the sampler restarted at ${new Date(state.sinceMs).toISOString()}; objects allocated before that are not in the in-use view`);
  }
  if (hasAlloc) {
    for (const [key, f] of state.folded) {
      if (seen.has(key)) continue;
      records.push({ frames: f.frames, size: f.size, liveSamples: 0, allocSamples: 0, inuseObjects: 0, inuseBytes: 0, allocObjects: f.objects, allocBytes: f.objects * f.size });
    }
  }
  return { rate, hasAlloc, records, comments, treeBytes, afterGC, gcs, gcsSkipped };
}

function buildPprof(snap: HeapSnapshot, defaultType: 'inuse_space' | 'alloc_space'): PprofBuilder {
  const sampleTypes = snap.hasAlloc
    ? [{ type: 'alloc_objects', unit: 'count' }, { type: 'alloc_space', unit: 'bytes' }, { type: 'inuse_objects', unit: 'count' }, { type: 'inuse_space', unit: 'bytes' }]
    : [{ type: 'inuse_objects', unit: 'count' }, { type: 'inuse_space', unit: 'bytes' }];
  const comments = [...snap.comments];
  if (!snap.hasAlloc && defaultType === 'alloc_space') {
    comments.push('sigprof: allocs carries in-use values only: this V8 (< 14) cannot tell collected samples from live ones, so no honest allocation estimate exists');
  }
  const b = new PprofBuilder({
    sampleTypes,
    periodType: { type: 'space', unit: 'bytes' },
    period: snap.rate,
    defaultSampleType: snap.hasAlloc ? defaultType : 'inuse_space',
    timeNanos: nowNanos(),
    comments,
  });
  for (const r of snap.records) {
    const inuse = [Math.round(r.inuseObjects), Math.round(r.inuseBytes)];
    const values = snap.hasAlloc ? [Math.round(r.allocObjects), Math.round(r.allocBytes), ...inuse] : inuse;
    // One sample per (stack, size) with Go's `bytes` label, so -tagfocus=bytes works the same.
    b.addSample(r.frames, values, [{ key: 'bytes', num: r.size }]);
  }
  return b;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * Go's legacy heap text. Like Go it carries RAW sample counts with `@ heap/<2*rate>` and
 * leaves the unsampling to the reader (pprof's legacy parser divides by 1-exp(-size/rate)),
 * which is why records are per (stack, size). Where no allocation estimate exists the
 * bracketed pair is 0: 0, which pprof reads as "no alloc data".
 */
function renderLegacyText(snap: HeapSnapshot): string {
  const rate = snap.rate;
  // Folded estimates and samples of an older rate have no raw count at this rate: express
  // them in samples-at-this-rate so the reader's unsampling gives the estimate back.
  const rawAt = (objects: number, size: number) => (rate > 0 ? objects / scale(size, rate) : objects);
  const rows = snap.records.map((r) => {
    const inN = r.liveSamples;
    const alN = snap.hasAlloc ? Math.round(rawAt(r.allocObjects, r.size)) : 0;
    return { frames: r.frames, inN, inB: inN * r.size, alN, alB: alN * r.size };
  }).filter((r) => r.inN > 0 || r.alN > 0);
  rows.sort((x, y) => y.inB - x.inB || y.alB - x.alB);
  const tot = rows.reduce((t, r) => ({ inN: t.inN + r.inN, inB: t.inB + r.inB, alN: t.alN + r.alN, alB: t.alB + r.alB }), { inN: 0, inB: 0, alN: 0, alB: 0 });

  const addrOf = new Map<string, number>();
  const addr = (f: Frame) => {
    const k = `${f.name}\0${f.file}\0${f.line}\0${f.column ?? 0}`;
    let v = addrOf.get(k);
    if (v === undefined) addrOf.set(k, (v = 0x400000 + addrOf.size * 0x10));
    return v;
  };
  const out: string[] = [];
  out.push(`heap profile: ${tot.inN}: ${tot.inB} [${tot.alN}: ${tot.alB}] @ heap/${2 * rate}\n`);
  for (const r of rows) {
    out.push(`${r.inN}: ${r.inB} [${r.alN}: ${r.alB}] @${r.frames.map((f) => ` ${hex(addr(f))}`).join('')}\n`);
    for (const f of r.frames) out.push(`#\t${hex(addr(f))}\t${f.name}+0x0\t${f.file}:${f.line}\n`);
    out.push('\n');
  }
  out.push('\n# v8.getHeapStatistics()\n');
  for (const [k, v] of Object.entries(v8.getHeapStatistics())) out.push(`# ${k} = ${v}\n`);
  out.push(`# MemProfileRate = ${rate}\n`);
  for (const c of snap.comments) out.push(`# ${c}\n`);
  if (!snap.hasAlloc) out.push('# sigprof: no allocation estimate on this V8 (< 14); the bracketed alloc values are 0\n');
  return out.join('');
}

function renderProfile(debug: number, opts: WriteToOptions | undefined, defaultType: 'inuse_space' | 'alloc_space'): Promise<Buffer | string> {
  try {
    const snap = takeHeapSnapshot(opts ?? {});
    if (debug >= 1) return Promise.resolve(renderLegacyText(snap));
    return buildPprof(snap, defaultType).encodeGzip();
  } catch (err) {
    return Promise.reject(err);
  }
}

function countRecords(): number {
  if (!addon) return 0;
  try {
    return takeHeapSnapshot().records.filter((r) => r.liveSamples > 0 || r.allocObjects > 0).length;
  } catch {
    return 0;
  }
}

export const heapProfileSource: BuiltinProfileSource = {
  name: 'heap',
  description: 'A sampling of live objects on the V8 heap, by allocating stack. You can specify the gc GET parameter to run GC before taking the heap sample.',
  count: countRecords,
  render: (debug, opts) => renderProfile(debug, opts, 'inuse_space'),
};

export const allocsProfileSource: BuiltinProfileSource = {
  name: 'allocs',
  description: heapHasAllocEstimate
    ? 'A sampling of all past allocations on the V8 heap, by allocating stack.'
    : 'In-use objects only (V8 < 14 cannot tell collected samples from live ones, so past allocations are not estimated): the same data as heap.',
  count: countRecords,
  render: (debug, opts) => renderProfile(debug, opts, 'alloc_space'),
};

/**
 * @internal The heap profile sigprof/pyroscope sends each interval: gzipped pprof of the
 * in-use types only (Pyroscope adds up what it receives, and alloc_* here are totals since
 * start, not per interval). Null when heap sampling is off or unavailable.
 */
export function heapPushProfile(): Promise<Buffer | null> {
  try {
    const b = heapPushBuilder();
    return b ? b.encodeGzip() : Promise.resolve(null);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** @internal heapPushProfile's profile, unencoded (for the synchronous exit path). */
export function heapPushBuilder(): PprofBuilder | null {
  if (!addon || state.rate === 0 || !state.owns) return null;
  const snap = takeHeapSnapshot();
  return buildPprof({ ...snap, hasAlloc: false, records: snap.records.filter((r) => r.liveSamples > 0) }, 'inuse_space');
}

/** Go's pprof.WriteHeapProfile: the `heap` profile at debug 0 (gzipped pprof) to `w`. */
export async function WriteHeapProfile(w: Writable): Promise<void> {
  assertWritable(w);
  const buf = (await renderProfile(0, undefined, 'inuse_space')) as Buffer;
  await writeAll(w, buf);
}
export const writeHeapProfile = WriteHeapProfile;

/** @internal The `heap` profile at debug 0, gzipped, synchronously: for `sigprof run`'s exit hook. */
export function heapProfileSync(): Buffer {
  return require('node:zlib').gzipSync(buildPprof(takeHeapSnapshot(), 'inuse_space').encode(), { level: 1 });
}

/** Test hook: fold and restart as the backlog check would (V8 >= 14). Not part of the API. */
export function _foldAndRestartForTest(): void {
  const a = nativeOrThrow();
  stopSampler(a);
  if (state.rate > 0) startSampler(a, state.rate);
}

// Like Go, sampling is on from the start. Importing this module (index.ts re-exports it)
// is the start; startHeapSamplingAtLoad() is idempotent for callers that want it explicit.
startHeapSamplingAtLoad();
