/**
 * Loads the addon once per thread. Loading it early matters: V8 only gives line tables
 * for code compiled after the addon's code listener is installed.
 */
import * as path from 'node:path';
import { SigprofError, ERR_NATIVE_UNAVAILABLE } from './errors';

export interface NativeCpuStats {
  signals: number; samples: number; weight: number; dropped: number; droppedWeight: number;
  handlerCalls: number; handlerNsTotal: number; handlerNsMax: number; frames: number; unresolvedFrames: number; truncated: number;
  startNs: number; stopNs: number; hz: number; threadMode: number; codeEntries: number; codeGraveyard: number;
  functions: number; scripts: number; positions: number; codeEvents: number; nowNs: number;
  collectorCpuNs: number; helperCpuNs: number;
  clock: 'perf-event' | 'timer' | 'thread' | 'none';
  foreignLostWeight: number; loopWithheld: number; rejectedSignals: number; signal: number;
}

/**
 * Words before the frames of a resolved record: frame count, weight, vm_state | kind << 8,
 * aux (µs), label id (native/sampler.h kRecordHeaderWords).
 */
export const RECORD_HEADER_WORDS = 5;

export interface NativeAddon {
  /** Returns the clock that started. */
  cpuStart(hz: number): string;
  cpuStop(): void;
  /** flush: resolve the ring's backlog now, on this thread (an exact reader boundary). */
  cpuTakeRecords(flush?: boolean): Uint32Array;
  /** Flat [name, url, scriptId, line, column, kind, address, mapping] for each id (unknown ids: the unknown function). */
  functionsById(ids: Uint32Array): Array<string | number>;
  /** functionsById's layout for every JS function the code map has seen in one script (also after the script is collected). */
  functionsOfScript(scriptId: number): Array<string | number>;
  /** Flat [id, path, buildId, start, limit, offset] per native object mapping resolved so far. */
  nativeMappings(): Array<string | number>;
  positionsToLines(scriptId: number, positions: Int32Array): Int32Array;
  captureStack(skip: number, maxFrames: number): Uint32Array;
  cpuStats(): NativeCpuStats;
  /** CPU time of the calling thread, ns. */
  threadCpuNs(): number;
  /** The ids among `ids` whose code was compiled before the code listener (no line table). */
  lineLessFunctions(ids: Uint32Array): Uint32Array;
  /** Uint32Array(1) over the word the SIGPROF handler copies into each sample as its label id. */
  labelSlot(): Uint32Array;
  loopStart(thresholdNs: number): void;
  loopStop(): void;
  /** Records as cpuTakeRecords; the weight word is the block id. */
  loopTakeRecords(): Uint32Array;
  /** Flat [block id, duration ns] pairs. */
  loopTakeDurations(): Float64Array;
  [name: string]: unknown;
}

let addon: NativeAddon | undefined;
let loadError: Error | undefined;

/** What a binary must match here, in the terms node-gyp-build matches prebuilds by. */
export function nativeTarget(): string {
  let libc = 'libc unknown';
  try {
    // Only on the error path: a report is a few milliseconds of work.
    const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    libc = header?.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : 'not glibc (musl?)';
  } catch { /* keep "unknown" */ }
  return `platform ${process.platform}, arch ${process.arch}, Node ${process.versions.node} (ABI ${process.versions.modules}), ${libc}`;
}

export function native(): NativeAddon {
  if (addon) return addon;
  if (loadError) throw loadError;
  const root = path.join(__dirname, '..');
  // SIGPROF_ADDON: a binary kept outside build/ and prebuilds/ (sanitizer and cross-version
  // builds). When it is set it is the only candidate, so a test never silently runs another one.
  const override = process.env.SIGPROF_ADDON;
  try {
    if (override) {
      addon = require(path.resolve(override)) as NativeAddon;
    } else {
      // build/Release (built from source here), else prebuilds/<platform>-<arch>/ matched by ABI and libc.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const load = require('node-gyp-build') as (dir: string) => unknown;
      addon = load(root) as NativeAddon;
    }
    return addon;
  } catch (err) {
    const why = (err as Error).message.split('\n')[0];
    loadError = new SigprofError(ERR_NATIVE_UNAVAILABLE, override
      ? `sigprof: the addon SIGPROF_ADDON names could not be loaded (${nativeTarget()}): ${path.resolve(override)}: ${why}`
      : `sigprof: no native addon for ${nativeTarget()} could be loaded from ${root} (${why}). ` +
        'Build it from source with `npm rebuild sigprof` (needs a C++ toolchain: g++, make, python3).');
    throw loadError;
  }
}
