// ESM entry: the same objects as the CommonJS build (one addon, one profiler state).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sigprof = require('../dist/index.js');

export default sigprof;
export const {
  SigprofError,
  StartCPUProfile, startCPUProfile, StopCPUProfile, stopCPUProfile,
  SetCPUProfileRate, setCPUProfileRate, CPUProfileStats, cpuProfileStats,
  CPUProfileRate, cpuProfileRate, MAX_CPU_PROFILE_RATE,
  NewProfile, newProfile, Lookup, lookup, Profiles, profiles, Profile,
  SetHandlesProfile, setHandlesProfile, SetBlockProfileRate, setBlockProfileRate,
  ERR_PROFILE_EXISTS, ERR_PROFILE_VALUE_EXISTS, ERR_PROFILE_BUILTIN,
  runtime, WriteHeapProfile, writeHeapProfile,
  Labels, labels, Do, WithLabels, withLabels, SetGoroutineLabels, setGoroutineLabels,
  Label, label, ForLabels, forLabels, LabelSet,
  SetSourceMaps, setSourceMaps, SourceMapStats, sourceMapStats,
  pyroscope,
} = sigprof;
