/**
 * Writing a finished profile to a user's Writable. Node streams report failures
 * asynchronously (EPIPE, ENOSPC, a closed fd) and some never call back at all, so every
 * write here settles within a bounded time and surfaces the stream's own error.
 */
import type { Writable } from 'node:stream';
import { SigprofError, ERR_WRITE_TIMEOUT, invalidArg } from './errors';

export function isWritable(w: unknown): w is Writable {
  return !!w && typeof (w as Writable).write === 'function' && typeof (w as Writable).on === 'function' && typeof (w as Writable).once === 'function';
}

export function assertWritable(w: unknown, what = 'writer'): asserts w is Writable {
  if (!isWritable(w)) throw invalidArg(`sigprof: ${what} must be a Writable stream (got ${w === null ? 'null' : typeof w})`);
}

/** setTimeout's ceiling: a longer delay would fire at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * A write timeout the timer can honour: a whole number of ms from 1 to 2^31-1. Anything
 * else (-1, NaN, 1e12, which setTimeout would turn into 1 ms) is refused, not clamped.
 */
export function checkTimeoutMs(v: unknown, what = 'timeoutMs'): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_TIMEOUT_MS) {
    const e = new RangeError(`sigprof: ${what} must be an integer number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (got ${typeof v === 'number' ? v : v === null ? 'null' : typeof v})`) as RangeError & { code: string };
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  return v;
}

export interface WriteOptions {
  /** End the stream after writing (default true; never for process.stdout/stderr). */
  end?: boolean;
  timeoutMs?: number;
}

/** Resolves when `data` is flushed (and the stream finished, if `end`), rejects with the stream's error. */
export function writeAll(w: Writable, data: Buffer | string, opts: WriteOptions = {}): Promise<void> {
  const isStdio = w === (process.stdout as unknown) || w === (process.stderr as unknown);
  const end = (opts.end ?? true) && !isStdio;
  let timeoutMs: number;
  try {
    timeoutMs = checkTimeoutMs(opts.timeoutMs) ?? 30_000;
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const done = (err?: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      w.removeListener('error', onError);
      w.removeListener('finish', onFinish);
      w.removeListener('close', onClose);
      if (err) reject(err); else resolve();
    };
    const onError = (err: Error) => done(err);
    const onFinish = () => done();
    const onClose = () => {
      // A stream closed before it finished lost our data; say so instead of hanging.
      if (end && !(w as Writable & { writableFinished?: boolean }).writableFinished) {
        done((w as Writable & { errored?: Error | null }).errored ?? new SigprofError('ERR_STREAM_CLOSED', 'sigprof: the writer closed before the profile was written'));
      }
    };
    const timer = setTimeout(() => done(new SigprofError(ERR_WRITE_TIMEOUT, `sigprof: writing the profile did not finish within ${timeoutMs} ms`)), timeoutMs);
    timer.unref?.();
    const existing = (w as Writable & { errored?: Error | null }).errored;
    if (existing) return done(existing);
    if (w.destroyed || (w as Writable).writableEnded) {
      return done(new SigprofError('ERR_STREAM_DESTROYED', 'sigprof: the writer is already closed or ended'));
    }
    w.on('error', onError);
    w.once('close', onClose);
    try {
      if (end) {
        w.once('finish', onFinish);
        w.end(data);
      } else {
        w.write(data, (err) => done(err ?? null));
      }
    } catch (err) {
      done(err as Error);
    }
  });
}
