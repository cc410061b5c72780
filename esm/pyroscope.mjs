// ESM entry for sigprof/pyroscope: the CommonJS build's objects, so both module systems
// share one push and one profiler state.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const pyroscope = require('../dist/pyroscope/index.js');

export default pyroscope.default;
export const {
  init, start, stop, stopSync, stats, wrapWithLabels, getLabels, setLabels, getWallLabels, setWallLabels,
  expressMiddleware, fastifyMiddleware,
  startCpuProfiling, startWallProfiling, startHeapProfiling, stopCpuProfiling, stopWallProfiling, stopHeapProfiling,
} = pyroscope;
