/**
 * Profile labels: Go's pprof.Labels / Do / WithLabels / SetGoroutineLabels / Label /
 * ForLabels for Node. Where Go passes a context.Context, the current label set lives in
 * an AsyncLocalStorage, so it follows the async continuations a labelled function starts
 * (promises, timers, immediates, nextTick, queueMicrotask, I/O callbacks), exactly as
 * any AsyncLocalStorage store does on that Node version.
 *
 * The SIGPROF handler cannot read an AsyncLocalStorage (that needs V8 handles). So each
 * label set that becomes current gets a small integer id, and the id of the running
 * continuation's set is kept in one 32-bit word of the sampler's signal target
 * (native labelSlot(): a Uint32Array over that word); the handler copies the word into
 * every sample, and the CPU profile resolves ids to labels when it pulls records.
 *
 * While a CPU profile runs, the word is kept current by hooks that read the store at each
 * callback and promise-continuation entry and restore the outer value at exit, and by
 * Do, which sets and restores it synchronously around fn. Nothing of this exists until
 * labels are first used (no AsyncLocalStorage, no hook), and the hooks exist only while
 * a profile runs (see docs/labels.md for the per-version details and their cost).
 */
import { AsyncLocalStorage, createHook, type AsyncHook } from 'node:async_hooks';
import { invalidArg } from './errors';
import { native } from './native';

/** Label sets that can have an id at once; more get OVERFLOW_ID until some are collected. */
export const MAX_LABEL_SETS = 16384;
/** Samples taken while a set without an id was current carry this label. */
export const OVERFLOW_LABEL = { key: 'sigprof.labels', str: 'overflow' } as const;
const NO_ID = 0;
const OVERFLOW_ID = 1;

interface Entry {
  id: number;
  key: string;
  /** pprof string labels, key order. */
  spec: Array<{ key: string; str: string }>;
  /**
   * The first LabelSet with this content, the only one registered for finalization;
   * every later set with the same content holds it strongly (LabelSet.canonical), so it
   * is collected only once none of them is reachable. One registration per distinct set,
   * not per Labels() call: a weak cell per request would cost the GC more than the rest.
   */
  canonical: WeakRef<LabelSet>;
}

/**
 * An immutable set of key → value labels (Go's pprof.LabelSet). Make one with Labels();
 * iterate it with for...of ([key, value] pairs in key order) or read one with get().
 */
export class LabelSet implements Iterable<[string, string]> {
  /** @internal sorted by key, unique keys */
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  /** @internal canonical content, the interning key */
  readonly key: string;
  /** @internal slot id, assigned the first time the set becomes current */
  id = -1;
  /** @internal keeps the interned set with this content alive (see Entry.canonical) */
  canonical: LabelSet | null = null;
  #record: Record<string, string> | undefined;

  /** @internal Use Labels(). `pairs` sorted by key, keys unique; `key` is keyOf(pairs). */
  constructor(pairs: Array<readonly [string, string]>, key: string) {
    this.pairs = Object.freeze(pairs);
    this.key = key;
  }

  get size(): number { return this.pairs.length; }

  get(key: string): string | undefined {
    for (const [k, v] of this.pairs) if (k === key) return v;
    return undefined;
  }

  *[Symbol.iterator](): Iterator<[string, string]> {
    for (const [k, v] of this.pairs) yield [k, v];
  }

  /** The labels as a plain object (cached: it is shared, do not modify it). */
  toJSON(): Record<string, string> {
    if (!this.#record) {
      const r: Record<string, string> = {};
      for (const [k, v] of this.pairs) r[k] = v;
      this.#record = Object.freeze(r);
    }
    return this.#record;
  }

  toString(): string {
    return '{' + this.pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(', ') + '}';
  }
}

/**
 * The interning key of sorted, unique pairs: every string length-prefixed, so no two
 * contents share a key whatever characters they hold. (It was JSON.stringify of the
 * pairs: with the Map and sort around it, ~1 µs per Labels() call, which a service
 * makes per request.)
 */
function keyOf(pairs: ReadonlyArray<readonly [string, string]>): string {
  let k = '';
  for (const [a, b] of pairs) k += a.length + ':' + a + b.length + ':' + b;
  return k;
}

const EMPTY = new LabelSet([], '');
EMPTY.id = NO_ID;

// A service makes the same few sets over and over: Labels() and merge() hand back the
// live interned set with the content when there is one (it already has an id), which
// skips the new object and its interning at Do and keeps one object per content.
function fromMap(m: Map<string, string>): LabelSet {
  const pairs = [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const key = keyOf(pairs);
  return byKey.get(key)?.canonical.deref() ?? new LabelSet(pairs, key);
}

/**
 * Labels('route', '/api/users', 'tenant', 't42'): a LabelSet from key, value pairs. As in
 * Go, a later pair overrides an earlier one with the same key. Keys and values are
 * strings; an odd count or a non-string throws a TypeError.
 */
export function Labels(...args: string[]): LabelSet {
  const n = args.length;
  // The same call again (a service labels each request with a few routes): a walk down
  // the argument cache, no string built, no allocation.
  let node: ArgNode | undefined = argCache;
  for (let i = 0; i < n && node; i++) node = node.next?.get(args[i]);
  const hit = node?.set?.deref();
  if (hit) return hit;
  const set = makeLabels(args);
  if (set.id >= 0 && set !== EMPTY) cacheArgs(args, set);
  return set;
}

/**
 * Argument sequences of earlier Labels() calls whose set is live and interned, as a trie
 * (one level per argument). A cache: dropped whole when it grows past a bound, so label
 * values of high cardinality cannot grow it without limit; entries whose set was
 * collected only miss (the WeakRef is empty).
 */
interface ArgNode { next?: Map<string, ArgNode>; set?: WeakRef<LabelSet> }
let argCache: ArgNode = {};
let argCacheLeaves = 0;
const ARG_CACHE_MAX = 4096;

function cacheArgs(args: string[], set: LabelSet): void {
  if (argCacheLeaves >= ARG_CACHE_MAX) {
    argCache = {};
    argCacheLeaves = 0;
  }
  let node = argCache;
  for (const a of args) {
    const next = (node.next ??= new Map());
    let child = next.get(a);
    if (!child) next.set(a, (child = {}));
    node = child;
  }
  if (!node.set) argCacheLeaves++;
  node.set = new WeakRef(set);
}

function makeLabels(args: string[]): LabelSet {
  const n = args.length;
  if (n % 2 !== 0) throw invalidArg(`sigprof: Labels needs key, value pairs (got ${n} arguments)`);
  // The pairs' argument positions in key order, a later pair replacing an earlier one
  // with the same key (insertion: a label set has a handful of keys).
  const order: number[] = [];
  for (let i = 0; i < n; i += 2) {
    const k = args[i], v = args[i + 1];
    if (typeof k !== 'string' || typeof v !== 'string') {
      throw invalidArg(`sigprof: Labels keys and values must be strings (argument ${typeof k !== 'string' ? i : i + 1} is ${typeof (typeof k !== 'string' ? k : v)})`);
    }
    let j = order.length;
    while (j > 0 && args[order[j - 1]] > k) j--;
    if (j > 0 && args[order[j - 1]] === k) order[j - 1] = i;
    else if (j === order.length) order.push(i);
    else order.splice(j, 0, i);
  }
  if (order.length === 0) return EMPTY;
  const pairs = order.map((i) => [args[i], args[i + 1]] as const);
  const key = keyOf(pairs);
  return byKey.get(key)?.canonical.deref() ?? new LabelSet(pairs, key);
}

function checkSet(labels: unknown, what: string): asserts labels is LabelSet {
  if (!(labels instanceof LabelSet)) throw invalidArg(`sigprof: ${what} must be a LabelSet from Labels() (got ${labels === null ? 'null' : typeof labels})`);
}

function merge(base: LabelSet | undefined, add: LabelSet): LabelSet {
  if (!base || base.size === 0) return add;
  if (add.size === 0) return base;
  const m = new Map<string, string>(base.pairs as Array<[string, string]>);
  for (const [k, v] of add.pairs) m.set(k, v);
  const out = fromMap(m);
  return out.key === base.key ? base : out;
}

// ---- state that exists only once labels are used ----

let storage: AsyncLocalStorage<LabelSet> | null = null;
let slot: Uint32Array | null = null;
let hook: AsyncHook | null = null;
// Slot values of the callbacks we are nested in, restored by `after`.
const outer: number[] = [];

function hookBefore(): void {
  // Balanced by `after` except across an uncaught exception (reset below) or a hook
  // enabled mid-callback; never let a lost `after` grow it without bound.
  if (outer.length > 4096) outer.length = 0;
  outer.push(slot![0]);
  const s = storage!.getStore();
  slot![0] = s ? idOf(s) : NO_ID;
}

function hookAfter(): void {
  slot![0] = outer.length > 0 ? outer.pop()! : NO_ID;
}

/**
 * How the slot follows the async context, chosen when the hooks are first installed:
 * - 'async-hooks' (Node 20, 22; 24+ with --no-async-context-frame): AsyncLocalStorage
 *   itself runs on async_hooks, so one before/after hook (promises included, through
 *   Node's own promise hook) reads the store that Node has just entered.
 * - 'frame+promise-hooks' (Node 24+: AsyncLocalStorage on AsyncContextFrame, V8's
 *   continuation-preserved embedder data): V8 restores the frame before a promise
 *   reaction's `before` promise hook runs, so v8.promiseHooks before/after cover promises
 *   without async ids, and an async hook created with trackPromises: false covers the
 *   other resources (timers, immediates, nextTick, I/O). 'frame': where that option is
 *   not honoured (older 24.x) the async hook tracks promises too and no v8 promise hook
 *   is added.
 *
 * Only the CPU profile reads the slot (Label, ForLabels and Profile.Add read the store),
 * so the hooks exist only while a CPU profile runs in this thread and labels are in use:
 * installed by the first Do during a profile or at the start of a profile once labels
 * are used, removed when the last profile stops. Outside a profile the labels cost the
 * AsyncLocalStorage alone; the hooks (V8's promise-hook slow path, Node's callback
 * hooks) are the larger part of their cost (docs/labels.md).
 */
export let mechanism: 'none' | 'async-hooks' | 'frame' | 'frame+promise-hooks' = 'none';
let stopPromiseHooks: Array<() => void> = [];

function ensure(): AsyncLocalStorage<LabelSet> {
  if (storage) return storage;
  storage = new AsyncLocalStorage<LabelSet>();
  slot = native().labelSlot() as Uint32Array;
  if (profiles > 0) installHooks();
  return storage;
}

function installHooks(): void {
  const st = storage!;
  // The async_hooks-based store has _propagate (its init hook); the frame-based has not.
  const frame = typeof (st as unknown as { _propagate?: unknown })._propagate !== 'function';
  if (frame) {
    const h = createHook({ before: hookBefore, after: hookAfter, trackPromises: false } as Parameters<typeof createHook>[0]);
    // The option is honoured where the hook carries kNoPromiseHook = true.
    const untracked = Object.getOwnPropertySymbols(h).some((k) => String(k) === 'Symbol(kNoPromiseHook)' && (h as unknown as Record<symbol, unknown>)[k] === true);
    hook = h;
    if (untracked) {
      const { promiseHooks } = require('node:v8') as typeof import('node:v8');
      stopPromiseHooks = [promiseHooks.onBefore(hookBefore), promiseHooks.onAfter(hookAfter)] as Array<() => void>;
      mechanism = 'frame+promise-hooks';
    } else {
      mechanism = 'frame';
    }
  } else {
    hook = createHook({ before: hookBefore, after: hookAfter });
    mechanism = 'async-hooks';
  }
  hook.enable();
  // Installed mid-run (a profile started inside a labelled continuation): the slot starts
  // as the running code's set; `after`s of callbacks entered before this find `outer`
  // empty and reset it, and the next `before` sets it right.
  outer.length = 0;
  const cur = st.getStore();
  slot![0] = cur ? idOf(cur) : NO_ID;
  // An uncaught exception unwinds callbacks without their `after`: start clean.
  process.on('uncaughtExceptionMonitor', onUncaught);
}

function removeHooks(): void {
  if (!hook) return;
  hook.disable();
  for (const stop of stopPromiseHooks) stop();
  stopPromiseHooks = [];
  mechanism = 'none';
  process.removeListener('uncaughtExceptionMonitor', onUncaught);
  hook = null;
  outer.length = 0;
  // Do still sets and restores the slot around synchronous code; nothing reads it now.
  slot![0] = NO_ID;
}

/**
 * @internal For benchmarks that alternate labels on and off in one process: removes the
 * hooks and the store, as if labels had never been used (the next Do makes them again).
 */
export function resetLabels(): void {
  if (!storage) return;
  removeHooks();
  storage.disable();
  storage = null;
}

function onUncaught(): void {
  outer.length = 0;
  slot![0] = NO_ID;
}

/** @internal For tests and docs: whether the slot-updating hooks are installed. */
export function labelsActive(): boolean {
  return hook !== null;
}

/** The current label set, or undefined. */
function current(): LabelSet | undefined {
  return storage ? storage.getStore() : undefined;
}

// ---- the id table ----

const byKey = new Map<string, Entry>();
const byId: Array<Entry | undefined> = [];
const freeIds: number[] = [];
let nextId = 2;
// Entries retired while a CPU profile ran: samples still in flight may name them, so
// they are resolved and reused only after that profile's last pull.
let quarantine: Entry[] = [];
/** When each quarantined entry retired (Date.now()), in order. */
let quarantineAt: number[] = [];
let profiles = 0;
/**
 * A sample that names a retired id was taken before it retired; the collector resolves it
 * within its interval (at most 500 ms) and the next pull takes it. A pull this long after
 * the retirement has taken every such sample, so the id can go while the profile runs on
 * (a continuous profile never stops).
 */
const QUARANTINE_MS = 1000;
let overflowed = 0;
/** Label sets retired so far (tests: retirement during a profile, whatever the quarantine released since). */
let retired = 0;

const collected = new FinalizationRegistry<Entry>((e) => {
  retired++;
  if (byKey.get(e.key) === e) byKey.delete(e.key);
  if (profiles > 0) {
    quarantine.push(e);
    quarantineAt.push(Date.now());
  } else release(e);
});

function release(e: Entry): void {
  byId[e.id] = undefined;
  freeIds.push(e.id);
}

function idOf(set: LabelSet): number {
  if (set.id >= 0) return set.id;
  if (set.size === 0) return (set.id = NO_ID);
  const e = byKey.get(set.key);
  const canonical = e?.canonical.deref();
  if (e && canonical) {
    set.canonical = canonical;
    return (set.id = e.id);
  }
  // No entry, or one whose canonical set was collected and awaits its finalizer: a new
  // entry (the old one is retired by that finalizer, which checks it is still byKey's).
  const id = freeIds.length > 0 ? freeIds.pop()! : nextId < MAX_LABEL_SETS ? nextId++ : -1;
  if (id < 0) {
    // Not cached on the set: once others are collected it can get an id of its own.
    overflowed++;
    return OVERFLOW_ID;
  }
  const fresh: Entry = { id, key: set.key, spec: set.pairs.map(([k, v]) => ({ key: k, str: v })), canonical: new WeakRef(set) };
  byKey.set(set.key, fresh);
  byId[id] = fresh;
  if (publisher) publisher(id, set.pairs);
  collected.register(set, fresh);
  return (set.id = id);
}

/**
 * In a Worker (lib/workers.ts): one word, non-zero while the Worker runs its sampler for
 * the main thread's process profile, and the function that brings the labels in step
 * with it. The registry tells the Worker's event loop when it joins, but a Do that runs
 * before that turn of the loop starts the hooks itself, so its continuations are followed.
 */
let joinWord: Uint32Array | null = null;
let joinSync: (() => void) | null = null;

/** @internal */
export function setJoinWord(word: Uint32Array, sync: () => void): void {
  joinWord = word;
  joinSync = sync;
}

type Publisher = (id: number, pairs: ReadonlyArray<readonly [string, string]>) => void;
let publisher: Publisher | null = null;

/**
 * @internal In a Worker (lib/workers.ts): every id this table gives a label set, now and
 * from here on, is told to `fn` with its pairs, so that the Worker's samples in the main
 * thread's process profile resolve to them (docs/workers.md, "Labels"). A retired id is
 * told again with its new pairs when it is reused (after the quarantine).
 */
export function setLabelPublisher(fn: Publisher): void {
  publisher = fn;
  fn(OVERFLOW_ID, [[OVERFLOW_LABEL.key, OVERFLOW_LABEL.str]]);
  for (const e of byId) if (e) fn(e.id, e.spec.map((l) => [l.key, l.str] as const));
}

/**
 * @internal The pprof labels of a sample's label id (CPU profile pulls). Ids stay
 * resolvable until releaseRetired() after the profile's last pull.
 */
export function labelsForId(id: number): ReadonlyArray<{ key: string; str: string }> | undefined {
  if (id === NO_ID) return undefined;
  if (id === OVERFLOW_ID) return [OVERFLOW_LABEL];
  return byId[id]?.spec;
}

/** @internal A CPU profile started: retired ids are held until profileStopped(). */
export function profileStarted(): void {
  profiles++;
  if (storage && !hook) installHooks();
}

/** @internal Call after the profile's last pull. */
export function profileStopped(): void {
  if (profiles > 0) profiles--;
  if (profiles > 0) return;
  removeHooks();
  const q = quarantine;
  quarantine = [];
  quarantineAt = [];
  for (const e of q) release(e);
}

/** @internal After each pull of CPU samples: releases the ids retired long enough ago. */
export function samplesPulled(): void {
  if (quarantine.length === 0) return;
  const cutoff = Date.now() - QUARANTINE_MS;
  let k = 0;
  while (k < quarantine.length && quarantineAt[k] <= cutoff) release(quarantine[k++]);
  if (k > 0) {
    quarantine.splice(0, k);
    quarantineAt.splice(0, k);
  }
}

/** @internal Counters for tests and stats. */
export function labelTableStats(): { live: number; quarantined: number; retired: number; overflowed: number; hookInstalled: boolean; storeMade: boolean; mechanism: string; profiles: number } {
  return { live: byKey.size, quarantined: quarantine.length, retired, overflowed, hookInstalled: hook !== null, storeMade: storage !== null, mechanism, profiles };
}

/** @internal The current labels as a plain object (for Profile.Add), or undefined. */
export function currentLabelRecord(): Record<string, string> | undefined {
  const s = current();
  return s && s.size > 0 ? s.toJSON() : undefined;
}

// ---- the public API ----

function runIn<R>(set: LabelSet, fn: () => R): R {
  const s = slot!;
  const prev = s[0];
  s[0] = idOf(set);
  try {
    return fn();
  } finally {
    s[0] = prev;
  }
}

/**
 * Go's pprof.Do: runs fn with `labels` added to the current label set (a key already set
 * takes the new value) and returns what fn returns (its promise, when fn is async). CPU
 * samples taken while fn or any continuation it starts runs carry the labels, and so
 * does Profile.Add inside them.
 */
export function Do<R>(labels: LabelSet, fn: () => R): R {
  checkSet(labels, 'Do(labels, fn): labels');
  if (typeof fn !== 'function') throw invalidArg(`sigprof: Do(labels, fn): fn must be a function (got ${typeof fn})`);
  const st = ensure();
  if (hook === null && joinWord !== null && joinWord[0] !== 0) joinSync!();
  const set = merge(st.getStore(), labels);
  return st.run(set, runIn<R>, set, fn);
}

/**
 * Go's pprof.WithLabels without a context: WithLabels(labels) returns the current label
 * set with `labels` added; WithLabels(parent, labels) adds them to `parent` instead.
 * Nothing becomes current; pass the result to Do or SetGoroutineLabels.
 */
export function WithLabels(parentOrLabels: LabelSet, labels?: LabelSet): LabelSet {
  if (labels === undefined) {
    checkSet(parentOrLabels, 'WithLabels(labels): labels');
    return merge(current(), parentOrLabels);
  }
  checkSet(parentOrLabels, 'WithLabels(parent, labels): parent');
  checkSet(labels, 'WithLabels(parent, labels): labels');
  return merge(parentOrLabels, labels);
}

/**
 * Go's pprof.SetGoroutineLabels: makes `labels` (exactly; merge with WithLabels first to
 * keep the current ones) the label set of the current async context, for the rest of
 * the current synchronous run and the continuations it starts, like
 * AsyncLocalStorage.enterWith. Prefer Do, which scopes the labels to a function.
 */
export function SetGoroutineLabels(labels: LabelSet): void {
  checkSet(labels, 'SetGoroutineLabels(labels): labels');
  const st = ensure();
  if (hook === null && joinWord !== null && joinWord[0] !== 0) joinSync!();
  st.enterWith(labels);
  slot![0] = idOf(labels);
}

/** Go's pprof.Label: the current value of `key`, or undefined when it is not set. */
export function Label(key: string): string | undefined {
  if (typeof key !== 'string') throw invalidArg(`sigprof: Label(key): key must be a string (got ${typeof key})`);
  return current()?.get(key);
}

/**
 * Go's pprof.ForLabels: calls fn(key, value) for each current label in key order, until
 * fn returns false.
 */
export function ForLabels(fn: (key: string, value: string) => boolean | void): void {
  if (typeof fn !== 'function') throw invalidArg(`sigprof: ForLabels(fn): fn must be a function (got ${typeof fn})`);
  const s = current();
  if (!s) return;
  for (const [k, v] of s.pairs) if (fn(k, v) === false) return;
}

export const labels = Labels;
export const withLabels = WithLabels;
export const setGoroutineLabels = SetGoroutineLabels;
export const label = Label;
export const forLabels = ForLabels;
