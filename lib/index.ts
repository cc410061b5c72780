/**
 * sigprof public API: Go's runtime/pprof names first, each with a camelCase alias that is
 * the same function object.
 */
export { SigprofError } from './errors';
export type { Frame } from './pprof-builder';
// --- modules add their exports below this line (one `export ... from` per module) ---
