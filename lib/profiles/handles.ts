/**
 * The `handles` profile (alias `goroutine`): Node's closest analogue of "all current
 * goroutines" is the set of live async resources (timers, sockets, servers, fs requests,
 * child processes, ...), each with the stack that created it.
 *
 * Off by default, because recording creation stacks needs an async_hooks init hook (see
 * async-tracker.ts for what that costs). SetHandlesProfile(true) turns it on; resources
 * created before that have no recorded stack and are not listed. While off, the profile
 * still answers with what Node itself knows, process.getActiveResourcesInfo(): one
 * stackless record per active resource type, named so that nobody mistakes it for a stack.
 */
import type { BuiltinProfileSource } from '../registry-types';
import { performance } from 'node:perf_hooks';
import { acquireTracking, releaseTracking, live, type TrackedResource } from './async-tracker';
import { dropAsyncHookFrames, formatAge, groupStacks, renderCountProfile, symbolizeChain, tracebackLines, NO_JS_FRAME, type StackEntry } from './common';
import type { CountRecord } from '../legacy-text';

let enabled = false;

/** Turns creation-stack tracking for the handles/goroutine profile on or off. */
export function SetHandlesProfile(on: boolean): void {
  if (typeof on !== 'boolean') {
    const e = new TypeError('sigprof: SetHandlesProfile expects a boolean') as TypeError & { code: string };
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  if (on === enabled) return;
  enabled = on;
  if (on) acquireTracking('handles'); else releaseTracking('handles');
}

export function handlesProfileEnabled(): boolean {
  return enabled;
}

const OFF_NOTE = 'handle tracking is off: records are process.getActiveResourcesInfo() types without creation stacks; call SetHandlesProfile(true) to record them';

function activeResourceTypes(): string[] {
  const info = (process as unknown as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo;
  return typeof info === 'function' ? info.call(process) : [];
}

function untrackedRecords(types: string[]): CountRecord[] {
  const counts = new Map<string, number>();
  for (const t of types) counts.set(t, (counts.get(t) ?? 0) + 1);
  return [...counts].map(([type, count]) => ({
    frames: [{ name: `[${type}] (creation stack not recorded)`, file: '', line: 0 }],
    count,
    labels: { type },
  }));
}

function snapshot(): Array<[number, TrackedResource]> {
  return [...live];
}

function renderDetailed(entries: Array<[number, TrackedResource]>): string {
  const now = performance.now();
  const out: string[] = [];
  entries.sort((a, b) => a[0] - b[0]);
  for (const [id, r] of entries) {
    out.push(`handle ${id} [${r.type}, ${formatAge(now - r.created)}]:`);
    out.push(...tracebackLines(symbolizeChain(r.raw, r.chain, dropAsyncHookFrames, NO_JS_FRAME)));
    out.push(`triggered by async resource ${r.triggerId}`);
    out.push('');
  }
  return out.join('\n') + (out.length ? '' : '\n');
}

function renderUntrackedDetailed(types: string[]): string {
  const out = [`# ${OFF_NOTE}`, ''];
  for (const t of types) out.push(`handle ? [${t}, age unknown]:`, '(creation stack not recorded)', '');
  return out.join('\n');
}

export function makeHandlesSource(name: string, aliasOf?: string): BuiltinProfileSource {
  return {
    name,
    aliasOf,
    description: aliasOf
      ? `Same profile as ${aliasOf}, under Go's name for scrapers that ask for it`
      : 'Live async resources (timers, sockets, servers, requests, child processes) with the stacks that created them (SetHandlesProfile(true) to record stacks)',
    count(): number {
      return enabled ? live.size : activeResourceTypes().length;
    },
    async render(debug: number): Promise<Buffer | string> {
      if (!enabled) {
        const types = activeResourceTypes();
        if (debug >= 2) return renderUntrackedDetailed(types);
        return renderCountProfile(name, debug, untrackedRecords(types), [OFF_NOTE]);
      }
      // Snapshot before any await: the profile describes the moment WriteTo was called.
      const entries = snapshot();
      if (debug >= 2) return renderDetailed(entries);
      const stackEntries: StackEntry[] = entries.map(([, r]) => ({ raw: r.raw, chain: r.chain, labels: { type: r.type } }));
      return renderCountProfile(name, debug, groupStacks(stackEntries, dropAsyncHookFrames, NO_JS_FRAME));
    },
  };
}
