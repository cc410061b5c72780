// ESM entry for sigprof/http: the CommonJS build's objects, so both module systems share
// one profiler state (a CPU capture started over HTTP is the one StopCPUProfile sees).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sigprofHttp = require('../dist/http.js');

export default sigprofHttp;
export const { handler, listen } = sigprofHttp;
