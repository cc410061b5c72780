/**
 * Loads the addon once per thread. Loading it early matters: V8 only gives line tables
 * for code compiled after the addon's code listener is installed.
 */
import * as path from 'node:path';
import { SigprofError, ERR_NATIVE_UNAVAILABLE } from './errors';

export interface NativeCpuStats {
  signals: number; samples: number; weight: number; dropped: number; droppedWeight: number;
  handlerCalls: number; handlerNsTotal: number; handlerNsMax: number; frames: number; unresolvedFrames: number;
  startNs: number; stopNs: number; hz: number; threadMode: number; codeEntries: number; codeGraveyard: number;
  functions: number; scripts: number; positions: number; codeEvents: number; nowNs: number;
  collectorCpuNs: number; helperCpuNs: number;
  clock: 'perf-event' | 'timer' | 'thread' | 'none';
  foreignLostWeight: number; loopWithheld: number; rejectedSignals: number;
}

export interface NativeAddon {
  /** Returns the clock that started. */
  cpuStart(hz: number): string;
  cpuStop(): void;
  cpuTakeRecords(): Uint32Array;
  /** Flat [name, url, scriptId, line, column, kind] for each id (unknown ids: the unknown function). */
  functionsById(ids: Uint32Array): Array<string | number>;
  positionsToLines(scriptId: number, positions: Int32Array): Int32Array;
  captureStack(skip: number, maxFrames: number): Uint32Array;
  cpuStats(): NativeCpuStats;
  /** CPU time of the calling thread, ns. */
  threadCpuNs(): number;
  lateFunctions(): Record<string, number>;
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

function candidates(): string[] {
  const root = path.join(__dirname, '..');
  const abi = process.versions.modules;
  return [
    // For sanitizer and cross-version builds kept outside build/.
    ...(process.env.SIGPROF_ADDON ? [path.resolve(process.env.SIGPROF_ADDON)] : []),
    path.join(root, 'build', 'Release', 'sigprof.node'),
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `node.abi${abi}.node`),
    path.join(root, 'build', 'Debug', 'sigprof.node'),
  ];
}

export function native(): NativeAddon {
  if (addon) return addon;
  if (loadError) throw loadError;
  const tried: string[] = [];
  for (const file of candidates()) {
    try {
      addon = require(file) as NativeAddon;
      return addon;
    } catch (err) {
      tried.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  loadError = new SigprofError(ERR_NATIVE_UNAVAILABLE,
    `sigprof: the native addon could not be loaded (run \`npm install\` to build it). Tried:\n  ${tried.join('\n  ')}`);
  throw loadError;
}
