/**
 * Pieces every stack-keyed profile shares: grouping captured stacks, symbolizing them
 * once per distinct stack at write time, and Go's count-profile encodings.
 */
import { PprofBuilder, nowNanos, type Frame } from '../pprof-builder';
import { symbolizeStack, stackKey, type RawStack } from '../stack';
import { formatCountProfile, sortCountRecords, type CountRecord } from '../legacy-text';

/**
 * Go records runtime/pprof.lostProfileEvent when Add's skip leaves no frames; pprof
 * consumers handle a frameless sample poorly, so a named placeholder keeps the count visible.
 */
export const LOST_FRAME: Frame = { name: 'sigprof.lostProfileEvent', file: '', line: 0 };

/** A resource Node created from native code (an accepted connection, say) has no JS creator. */
export const NO_JS_FRAME: Frame = { name: '(created by Node, no JS frames)', file: '', line: 0 };

const ASYNC_HOOKS_FILE = 'node:internal/async_hooks';

/**
 * A stack captured inside an async_hooks callback starts with Node's emitInit machinery;
 * everything up to its rootmost frame is about how the hook was called, not about who
 * created the resource, so it goes. Frames are leaf first.
 */
export function dropAsyncHookFrames(frames: Frame[]): Frame[] {
  let start = 0;
  for (let i = frames.length - 1; i >= 0; i--) {
    if (frames[i].file === ASYNC_HOOKS_FILE) { start = i + 1; break; }
  }
  // Native resources are created by a C++ constructor (new TCP(), ...): the native
  // capture reports that API frame without a name or file; it says nothing the resource
  // type label does not.
  while (start < frames.length && frames[start].file === '' && frames[start].name === '(unknown)') start++;
  return start > 0 ? frames.slice(start) : frames;
}

export function symbolize(raw: RawStack, transform?: (f: Frame[]) => Frame[], placeholder: Frame = LOST_FRAME): Frame[] {
  let frames = symbolizeStack(raw);
  if (transform) frames = transform(frames);
  return frames.length > 0 ? frames : [placeholder];
}

/** The creation stack of a resource's trigger (the resource whose callback created it). */
export interface AsyncLink {
  readonly type: string;
  readonly raw: RawStack;
}

/**
 * A stack continued across async hops, like an async stack trace: the resource's own
 * frames, then for each trigger a `(async TYPE)` marker and the frames that created that
 * trigger. Without it, a server whose listen() finished in a later tick would show
 * only Node's internals.
 */
export function symbolizeChain(raw: RawStack, chain: readonly AsyncLink[] | undefined, transform?: (f: Frame[]) => Frame[], placeholder: Frame = LOST_FRAME): Frame[] {
  const own = transform ? transform(symbolizeStack(raw)) : symbolizeStack(raw);
  const frames = [...own];
  if (chain) {
    for (const l of chain) {
      frames.push({ name: `(async ${l.type})`, file: '', line: 0 });
      const f = symbolizeStack(l.raw);
      frames.push(...(transform ? transform(f) : f));
    }
  }
  return frames.length > 0 ? frames : [placeholder];
}

export interface StackEntry {
  raw: RawStack;
  /** Continue the stack into the triggers' creation stacks, nearest first. */
  chain?: readonly AsyncLink[];
  labels?: Record<string, string>;
  /** Defaults to 1; lets pre-aggregated sources pass their counts through. */
  count?: number;
}

/** Identity of a symbolized stack: what a reader sees, so equal-looking records merge. */
export function framesKey(frames: Frame[]): string {
  return frames.map((f) => `${f.name}\0${f.file}\0${f.line}\0${f.column ?? 0}\0${f.startLine ?? 0}`).join('\n');
}

/**
 * Counts entries per (stack, labels). Raw stacks are grouped first so each distinct one
 * is symbolized once; groups are merged again afterwards because two raw stacks (say,
 * different positions on one line) can symbolize to the same frames.
 */
export function groupStacks(entries: Iterable<StackEntry>, transform?: (f: Frame[]) => Frame[], placeholder: Frame = LOST_FRAME): CountRecord[] {
  const groups = new Map<string, { raw: RawStack; chain?: readonly AsyncLink[]; labels?: Record<string, string>; count: number }>();
  for (const e of entries) {
    let key = stackKey(e.raw);
    if (e.chain) for (const l of e.chain) key += `\n\0${l.type}\0${stackKey(l.raw)}`;
    if (e.labels) key += '\n\0' + JSON.stringify(e.labels);
    const g = groups.get(key);
    if (g) g.count += e.count ?? 1;
    else groups.set(key, { raw: e.raw, chain: e.chain, labels: e.labels, count: e.count ?? 1 });
  }
  const merged = new Map<string, CountRecord>();
  for (const g of groups.values()) {
    const frames = symbolizeChain(g.raw, g.chain, transform, placeholder);
    const key = framesKey(frames) + (g.labels ? '\n\0' + JSON.stringify(g.labels) : '');
    const m = merged.get(key);
    if (m) m.count += g.count;
    else merged.set(key, { frames, count: g.count, labels: g.labels });
  }
  return [...merged.values()];
}

/**
 * debug 0: Go's printCountProfile proto: period type and sample type are both
 * (profile name, "count"), period 1, one sample per distinct stack.
 * debug >= 1: the legacy `NAME profile: total N` text.
 */
export async function renderCountProfile(name: string, debug: number, records: CountRecord[], comments?: string[]): Promise<Buffer | string> {
  if (debug > 0) return formatCountProfile(name, records);
  const b = new PprofBuilder({
    sampleTypes: [{ type: name, unit: 'count' }],
    periodType: { type: name, unit: 'count' },
    period: 1,
    timeNanos: nowNanos(),
    comments,
  });
  for (const r of sortCountRecords(records)) {
    const labels = r.labels ? Object.keys(r.labels).sort().map((k) => ({ key: k, str: r.labels![k] })) : undefined;
    b.addSample(r.frames, [r.count], labels);
  }
  return b.encodeGzip();
}

/** Go-style coarse duration for debug=2 headers: `N ms`, `N seconds`, `N minutes`. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.floor(ms))} ms`;
  if (ms < 60_000) return `${Math.floor(ms / 1000)} seconds`;
  return `${Math.floor(ms / 60_000)} minutes`;
}

/**
 * Frames as Go's traceback prints them: `function()` then `\tfile:line`. Markers without
 * a file (`(async TickObject)`, placeholders) get their line alone.
 */
export function tracebackLines(frames: Frame[]): string[] {
  const out: string[] = [];
  for (const f of frames) {
    if (!f.file) { out.push(f.name); continue; }
    out.push(`${f.name || '(anonymous)'}()`);
    out.push(`\t${f.file}:${f.line}${f.column ? ':' + f.column : ''}`);
  }
  return out;
}

export function validDebug(debug: unknown): number {
  if (debug === undefined) return 0;
  if (typeof debug !== 'number' || !Number.isInteger(debug)) {
    const e = new TypeError(`sigprof: debug must be an integer (got ${typeof debug === 'number' ? debug : typeof debug})`) as TypeError & { code: string };
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  return debug;
}
