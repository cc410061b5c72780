/**
 * Cheap capture of the current JS stack (for Profile.Add and friends). The addon walks
 * the physical stack with GetStackSample and maps that path, memoized, to the logical
 * frames V8's StackTrace API reports (inlined functions included, so `skip` counts the
 * functions a reader sees). The result is a small array of (function id, line) that
 * stays valid when code moves; names and files are looked up only when writing.
 */
import { native } from './native';
import { symbolizer } from './symbolize';
import type { Frame } from './pprof-builder';

/** Opaque handle to a captured stack: flat (function id, encoded line) pairs, leaf first. */
export type RawStack = Uint32Array;

const MAX_FRAMES = 64;

/**
 * Captures the stack of the caller. `skip` = 0 starts at the function that called
 * captureStack; 1 at its caller; and so on.
 */
export function captureStack(skip: number): RawStack {
  // +1: captureStack itself is the innermost JS frame.
  return native().captureStack(skip + 1, MAX_FRAMES);
}

/** Leaf first. */
export function symbolizeStack(raw: RawStack): Frame[] {
  const sym = symbolizer();
  sym.prepare(raw);
  const frames: Frame[] = [];
  for (let i = 0; i < raw.length; i += 2) frames.push(sym.frame(raw[i], raw[i + 1] | 0));
  return frames;
}

/** A stable key for aggregating identical stacks. */
export function stackKey(raw: RawStack): string {
  return raw.join(',');
}
