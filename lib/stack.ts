/**
 * Cheap capture of the current JS stack (for Profile.Add and friends): the addon walks
 * the stack with GetStackSample and resolves each frame against the code map at once,
 * so the result is a small array of (function id, position) that stays valid when code
 * moves later. Names, files and lines are looked up only when a profile is written.
 */
import { native } from './native';
import { symbolizer } from './symbolize';
import type { Frame } from './pprof-builder';

/** Opaque handle to a captured stack: flat (function id, source position) pairs, leaf first. */
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
