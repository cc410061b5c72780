/**
 * sigprof public API: Go's runtime/pprof names first, each with a camelCase alias that is
 * the same function object.
 */
import './early';

export { SigprofError } from './errors';
export type { Frame } from './pprof-builder';
// --- modules add their exports below this line (one `export ... from` per module) ---
export {
  StartCPUProfile, StartCPUProfile as startCPUProfile,
  StopCPUProfile, StopCPUProfile as stopCPUProfile,
  SetCPUProfileRate, SetCPUProfileRate as setCPUProfileRate,
  CPUProfileStats, CPUProfileStats as cpuProfileStats,
  CPUProfileRate, CPUProfileRate as cpuProfileRate,
  MAX_CPU_PROFILE_RATE,
} from './cpu';
export type { CPUProfileStatsResult } from './cpu';
export { NewProfile, newProfile, Lookup, lookup, Profiles, profiles, Profile, SetHandlesProfile, setHandlesProfile, SetBlockProfileRate, setBlockProfileRate, ERR_PROFILE_EXISTS, ERR_PROFILE_VALUE_EXISTS, ERR_PROFILE_BUILTIN } from './registry';
export { runtime, WriteHeapProfile, writeHeapProfile } from './heap';
export {
  Labels, labels, Do, WithLabels, withLabels, SetGoroutineLabels, setGoroutineLabels,
  Label, label, ForLabels, forLabels, LabelSet,
} from './labels';
export { SetSourceMaps, SetSourceMaps as setSourceMaps, SourceMapStats, SourceMapStats as sourceMapStats } from './sourcemaps';
export type { SourceMapOptions, SourceMapStatsResult } from './sourcemaps';
export { default as pyroscope } from './pyroscope';
