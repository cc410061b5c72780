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
const pending = new Map<number, RawStack>();

/** Hands over every block that has ended. Call before reading the profile. */
export function deliverBlocks(): void {
  if (!onBlock) return;
  const addon = native();
  const rec = addon.loopTakeRecords();
  for (let i = 0; i < rec.length;) {
    const n = rec[i];
    const id = rec[i + 1];
    pending.set(id, rec.slice(i + RECORD_HEADER_WORDS, i + RECORD_HEADER_WORDS + 2 * n));
    i += RECORD_HEADER_WORDS + 2 * n;
  }
  const durations = addon.loopTakeDurations();
  for (let i = 0; i < durations.length; i += 2) {
    const id = durations[i];
    const raw = pending.get(id) ?? new Uint32Array(0);
    pending.delete(id);
    onBlock(raw, durations[i + 1]);
  }
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
