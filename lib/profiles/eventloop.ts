/**
 * The `eventloop` profile (alias `block`): stacks that kept the event loop from turning
 * for at least the threshold set with SetBlockProfileRate(ns). Off by default, like Go's
 * block profile. Encoded as Go encodes block/mutex profiles (contentions/count and
 * delay/nanoseconds), so tools that read Go's block profile read this one.
 *
 * The native watchdog (lib/loop-watchdog.ts) samples the JS thread's stack while the loop
 * is still blocked, so the stack is what blocked it, as in Go; the delay is the block's
 * full duration, from leaving the I/O wait to entering it again. Blocks are detected
 * with a 1 ms granularity, so thresholds below 1 ms act as 1 ms.
 */
import type { BuiltinProfileSource } from '../registry-types';
import type { Frame } from '../pprof-builder';
import { PprofBuilder, nowNanos } from '../pprof-builder';
import { stackKey, type RawStack } from '../stack';
import { formatContentionProfile, type ContentionRecord } from '../legacy-text';
import { startLoopWatchdog, stopLoopWatchdog, deliverBlocks } from '../loop-watchdog';
import { dropAsyncHookFrames, framesKey, symbolizeChain, LOST_FRAME, NO_JS_FRAME, type AsyncLink } from './common';
import { SigprofError, ERR_INVALID_RATE } from '../errors';

interface BlockGroup {
  raw?: RawStack;
  chain?: readonly AsyncLink[];
  frames?: Frame[];
  leaf?: Frame;
  count: number;
  delayNs: number;
}

const groups = new Map<string, BlockGroup>();
const RECENT_MAX = 256;
const recent: Array<{ at: number; delayNs: number; key: string }> = [];
let thresholdNs = 0;

function isRawStack(s: RawStack | Frame[]): s is RawStack {
  return !Array.isArray(s);
}

/**
 * Records one event-loop block of `delayNs` nanoseconds at `stack` (leaf first).
 * `stack` is either a RawStack from captureStack / the native sampler (symbolized only
 * when written) or already symbolized frames. `leaf`, if given, is prepended as the
 * innermost frame (the fallback's `[Timeout callback]`). Ignored while the profile is off.
 */
export function recordBlock(stack: RawStack | Frame[], delayNs: number, leaf?: Frame, chain?: readonly AsyncLink[]): void {
  if (thresholdNs <= 0 || !(delayNs >= 0)) return;
  let key = isRawStack(stack) ? 'r' + stackKey(stack) : 'f' + stack.map((f) => `${f.name}\0${f.file}\0${f.line}`).join('\n');
  if (leaf) key = `${leaf.name}\0${key}`;
  if (chain) for (const l of chain) key += `\n\0${l.type}\0${stackKey(l.raw)}`;
  let g = groups.get(key);
  if (!g) {
    g = isRawStack(stack) ? { raw: stack, chain, leaf, count: 0, delayNs: 0 } : { frames: stack.slice(), leaf, count: 0, delayNs: 0 };
    groups.set(key, g);
  }
  g.count++;
  g.delayNs += delayNs;
  recent.push({ at: Date.now(), delayNs, key });
  if (recent.length > RECENT_MAX) recent.shift();
}

/**
 * Records event-loop blocks of at least `ns` nanoseconds; `ns` <= 0 turns recording off
 * (the default). Unlike Go's SetBlockProfileRate this is a threshold, not a sampling
 * rate: every block at least that long is recorded, shorter ones never are. Records
 * already taken are kept, as in Go.
 */
export function SetBlockProfileRate(ns: number): void {
  // 0 turns it off. Negative values are refused rather than read as "off" (Go's int
  // rate treats them so, but here a negative threshold is more likely a bug), and so
  // are NaN, ±Infinity and thresholds past 2^53 ns (104 days), which no block reaches
  // and the native side could not convert exactly.
  if (typeof ns !== 'number' || !Number.isFinite(ns) || ns < 0 || ns > Number.MAX_SAFE_INTEGER) {
    throw new SigprofError(ERR_INVALID_RATE, `sigprof: SetBlockProfileRate expects a threshold in nanoseconds from 0 (off) to ${Number.MAX_SAFE_INTEGER}; got ${typeof ns === 'number' ? ns : typeof ns}`);
  }
  thresholdNs = ns > 0 ? ns : 0;
  if (thresholdNs > 0) startLoopWatchdog(thresholdNs, (raw, delayNs) => recordBlock(raw, delayNs));
  else stopLoopWatchdog();
}

/** The current threshold in nanoseconds, 0 when off. */
export function blockProfileRate(): number {
  return thresholdNs;
}

function groupFrames(g: BlockGroup): Frame[] {
  const base = g.raw ? symbolizeChain(g.raw, g.chain, dropAsyncHookFrames, NO_JS_FRAME) : g.frames!;
  const frames = g.leaf ? [g.leaf, ...base] : base;
  return frames.length > 0 ? frames : [NO_JS_FRAME];
}

/** Go's printCountCycleProfile shape, shared with the always-empty mutex profile. */
export async function encodeContention(records: ContentionRecord[], comments?: string[]): Promise<Buffer> {
  const b = new PprofBuilder({
    sampleTypes: [{ type: 'contentions', unit: 'count' }, { type: 'delay', unit: 'nanoseconds' }],
    periodType: { type: 'contentions', unit: 'count' },
    period: 1,
    timeNanos: nowNanos(),
    comments,
  });
  for (const r of [...records].sort((a, b) => b.delayNs - a.delayNs)) b.addSample(r.frames, [r.count, Math.round(r.delayNs)]);
  return b.encodeGzip();
}

export function makeEventLoopSource(name: string, aliasOf?: string): BuiltinProfileSource {
  return {
    name,
    aliasOf,
    description: aliasOf
      ? `Same profile as ${aliasOf}, under Go's name for scrapers that ask for it`
      : 'Stack traces that blocked the event loop for at least the threshold (SetBlockProfileRate(ns) to enable)',
    count: () => {
      deliverBlocks();
      return groups.size;
    },
    async render(debug: number): Promise<Buffer | string> {
      deliverBlocks();
      const frames = new Map<string, Frame[]>();
      for (const [k, g] of groups) frames.set(k, groupFrames(g));
      const merged = new Map<string, ContentionRecord>();
      for (const [k, g] of groups) {
        const f = frames.get(k)!;
        const mk = framesKey(f);
        const m = merged.get(mk);
        if (m) { m.count += g.count; m.delayNs += g.delayNs; } else merged.set(mk, { frames: f, count: g.count, delayNs: g.delayNs });
      }
      const records = [...merged.values()];
      const events = recent.slice();
      if (debug <= 0) return encodeContention(records, [`eventloop blocks at least ${thresholdNs} ns long`]);
      let text = formatContentionProfile('contention', records, [`threshold=${thresholdNs}`]);
      if (debug >= 2 && events.length > 0) {
        // Individual events, newest first, to tell one long block from many short ones.
        const lines = [`# last ${events.length} blocks, newest first:`];
        for (let j = events.length - 1; j >= 0; j--) {
          const e = events[j];
          const top = (frames.get(e.key) ?? [LOST_FRAME]).slice(0, 2).map((f) => `${f.name} ${f.file}:${f.line}`).join(' < ');
          lines.push(`# ${new Date(e.at).toISOString()}\t${(e.delayNs / 1e6).toFixed(3)} ms\t${top}`);
        }
        text += lines.join('\n') + '\n';
      }
      return text;
    },
  };
}
