/**
 * @internal Synchronous profile writers for `sigprof run` (lib/cli/preload.ts). They run
 * in the process's 'exit' event, where nothing asynchronous can happen, so the profiled
 * program's process.exit() and exit status stay exactly its own. Not part of the API.
 */
export { stopCPUProfileSync } from './cpu';
export { heapProfileSync } from './heap';
