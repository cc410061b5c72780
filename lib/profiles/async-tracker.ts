/**
 * One async_hooks hook that remembers, for every live async resource except promises,
 * its type, creation time and creation stack. The handles profile lists these.
 *
 * Enabling any init hook makes Node install V8 promise hooks, which slows every promise in
 * the process, and the stack capture costs on every resource created; so the hook runs
 * only while some profile has asked for it (reference counted by user name).
 */
import { createHook, type AsyncHook } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { captureStack, type RawStack } from '../stack';
import type { AsyncLink } from './common';

export interface TrackedResource {
  readonly type: string;
  readonly triggerId: number;
  /** performance.now() at init. */
  readonly created: number;
  readonly raw: RawStack;
  /** Creation stacks of the triggers, nearest first, at most MAX_HOPS. */
  readonly chain: readonly AsyncLink[];
}

/**
 * Hops of trigger history kept per resource. Copied (not linked) so that a timer re-armed
 * from its own callback forever does not keep an ever-longer chain of dead records alive.
 */
const MAX_HOPS = 3;
const NO_CHAIN: readonly AsyncLink[] = [];

export const live = new Map<number, TrackedResource>();
const users = new Set<string>();
let hook: AsyncHook | null = null;

function init(asyncId: number, type: string, triggerAsyncId: number): void {
  // Promises would need GC-driven destroy tracking to ever leave the map, and a stack per
  // promise would dominate the cost; they are not handles anyway.
  if (type === 'PROMISE') return;
  try {
    // 1 skips this hook; the emitInit frames above it are dropped when writing.
    const raw = captureStack(1);
    const parent = live.get(triggerAsyncId);
    let chain = NO_CHAIN;
    if (parent) {
      chain = [{ type: parent.type, raw: parent.raw }];
      for (let i = 0; i < parent.chain.length && chain.length < MAX_HOPS; i++) (chain as AsyncLink[]).push(parent.chain[i]);
    }
    live.set(asyncId, { type, triggerId: triggerAsyncId, created: performance.now(), raw, chain });
  } catch {
    // An exception escaping an async hook terminates the process; a missing stack must not.
  }
}

function destroy(asyncId: number): void {
  live.delete(asyncId);
}

export function acquireTracking(user: string): void {
  users.add(user);
  if (!hook) {
    hook = createHook({ init, destroy });
    hook.enable();
  }
}

export function releaseTracking(user: string): void {
  users.delete(user);
  if (users.size === 0 && hook) {
    hook.disable();
    hook = null;
    // Without the hook, destroys go unseen: keeping entries would report closed handles.
    live.clear();
  }
}

export function trackingUsers(): string[] {
  return [...users];
}
