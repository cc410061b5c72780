/**
 * Cheap capture of the current JS stack (for Profile.Add and friends) and its later
 * symbolization. TEMPORARY BODY: uses V8's structured call sites until the native
 * capture (GetStackSample + code map) lands; the signatures are final.
 */
import type { Frame } from './pprof-builder';

/** Opaque handle to a captured stack; hold it, symbolize it only when writing. */
export type RawStack = { readonly frames: Frame[] };

/**
 * Captures the stack of the caller. `skip` = 0 starts at the function that called
 * captureStack; 1 at its caller; and so on.
 */
export function captureStack(skip: number): RawStack {
  const prev = Error.prepareStackTrace;
  const prevLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64 + skip;
  Error.prepareStackTrace = (_e, sites) => sites;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  Error.captureStackTrace(holder, captureStack);
  const sites = holder.stack as unknown as NodeJS.CallSite[];
  Error.prepareStackTrace = prev;
  Error.stackTraceLimit = prevLimit;
  const frames: Frame[] = sites.slice(skip).map((s) => ({
    name: s.getFunctionName() || '(anonymous)',
    file: s.getFileName() || '',
    line: s.getLineNumber() || 0,
  }));
  return { frames };
}

/** Leaf first. */
export function symbolizeStack(raw: RawStack): Frame[] {
  return raw.frames;
}

/** A stable key for aggregating identical stacks. */
export function stackKey(raw: RawStack): string {
  return raw.frames.map((f) => `${f.name}\0${f.file}\0${f.line}`).join('\n');
}
