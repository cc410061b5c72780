/**
 * The native event-loop watchdog, seen from JS: a thread notices the loop has not turned
 * for the threshold and has the SIGPROF handler sample the JS stack while it is still
 * blocked; when the loop turns again the block's full duration is known. This module
 * pairs the two and hands each finished block to a callback.
 */
import { native, RECORD_HEADER_WORDS } from './native';
import type { RawStack } from './stack';

/** Blocks shorter than this are not detected: the watchdog polls at most every 1 ms. */
export const MIN_THRESHOLD_NS = 1_000_000;
const DELIVER_EVERY_MS = 250;

type OnBlock = (raw: RawStack, delayNs: number) => void;

let onBlock: OnBlock | null = null;
let timer: NodeJS.Timeout | null = null;
// Stacks of blocks still going on (sampled, not yet ended), by block id.
const pending = new Map<number, { js: number; raw: RawStack }>();
// Ids only grow (the watchdog numbers blocks in order), so a sample for an id at or below
// the last one delivered is a late resample of a block already recorded: dropped, or it
// would stay in `pending` forever.
let lastDelivered = 0;

/** Hands over every block that has ended. Call before reading the profile. */
export function deliverBlocks(): void {
  if (!onBlock) return;
  const addon = native();
  const rec = addon.loopTakeRecords();
  for (let i = 0; i < rec.length;) {
    const n = rec[i];
    const id = rec[i + 1];
    // The watchdog samples a block several times because a sample can find no JS frames
    // (V8 in a GC, a frame being set up; such a sample holds at most the builtin the PC
    // was in): the first sample with JS frames is kept, the stack at the threshold.
    const js = (rec[i + 2] >>> 16) & 1;
    const have = pending.get(id);
    if (id > lastDelivered && (!have || (js && !have.js))) pending.set(id, { js, raw: rec.slice(i + RECORD_HEADER_WORDS, i + RECORD_HEADER_WORDS + 2 * n) });
    i += RECORD_HEADER_WORDS + 2 * n;
  }
  const durations = addon.loopTakeDurations();
  for (let i = 0; i < durations.length; i += 2) {
    const id = durations[i];
    const raw = pending.get(id)?.raw ?? new Uint32Array(0);
    pending.delete(id);
    if (id > lastDelivered) lastDelivered = id;
    onBlock(raw, durations[i + 1]);
  }
  for (const id of pending.keys()) if (id <= lastDelivered) pending.delete(id);
}

export function startLoopWatchdog(thresholdNs: number, cb: OnBlock): void {
  native().loopStart(Math.max(thresholdNs, MIN_THRESHOLD_NS));
  onBlock = cb;
  if (!timer) {
    timer = setInterval(deliverBlocks, DELIVER_EVERY_MS);
    timer.unref();
  }
}

export function stopLoopWatchdog(): void {
  if (!onBlock) return;
  deliverBlocks();
  native().loopStop();
  onBlock = null;
  pending.clear();
  if (timer) clearInterval(timer);
  timer = null;
}
