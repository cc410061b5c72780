/**
 * Sends profiles to Pyroscope's HTTP ingest without ever hurting the service that makes
 * them: one request in flight at a time, a bounded queue (the oldest profile is dropped
 * when it is full), a timeout on every request, retries with exponential backoff and
 * jitter for failures that may pass (network errors, timeouts, 5xx, 429), none for the
 * ones that will not (other 4xx). Timers and sockets are unref'd: a pending upload never
 * keeps the process alive, except while stop() flushes, which is bounded by its deadline.
 * Nothing is logged per interval; each kind of trouble is logged once per process and
 * counted in stats().
 */
import * as http from 'node:http';
import * as https from 'node:https';

export interface UploadItem {
  /** 'cpu' or 'heap': for the stats and the log line only; the server reads the body. */
  kind: string;
  /** Unix seconds. */
  from: number;
  until: number;
  /** Gzipped pprof. */
  body: Buffer;
  sampleRate?: number;
  attempts: number;
}

export interface UploaderOptions {
  serverAddress: string;
  /** The `name` query parameter: app name and tags, `app{k=v,...}`. */
  name: string;
  spyName: string;
  headers: Record<string, string>;
  timeoutMs: number;
  maxPending: number;
  maxRetries: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Called at most once per kind of trouble (see warnOnce). */
  warn: (message: string, code: string) => void;
}

export interface UploaderStats {
  /** Profiles the server accepted (2xx). */
  sent: number;
  /** Profiles waiting to be sent (including the one in flight). */
  pending: number;
  /** Dropped because the queue was full: the oldest goes first. */
  droppedQueueFull: number;
  /** Dropped after maxRetries retries failed (network errors, timeouts, 5xx, 429). */
  droppedFailed: number;
  /** Dropped because the server refused them with a 4xx other than 429 (not retried). */
  droppedRejected: number;
  /** Dropped at stop(): the flush deadline passed, or its single attempt failed. */
  droppedAtStop: number;
  /** Attempts that were retried later. */
  retries: number;
  /** Timed-out requests (each is also a failure or a retry). */
  timeouts: number;
  bytesSent: number;
  /** The last failure, for diagnosis: 'HTTP 500: ...', 'ECONNREFUSED', 'timeout'. */
  lastError: string | null;
}

/** Enough of the server's explanation to act on, never a whole HTML page. */
const MAX_ERROR_BODY = 512;

export class Uploader {
  private readonly opts: UploaderOptions;
  private readonly url: URL;
  private readonly transport: typeof http | typeof https;
  private readonly agent: http.Agent;
  private readonly queue: UploadItem[] = [];
  private busy = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** The pending retry waits for the server's Retry-After. */
  private retryHonoursServer = false;
  private flushing = false;
  private closed = false;
  private inFlight: http.ClientRequest | null = null;
  private idleWaiters: Array<() => void> = [];
  private readonly warned = new Set<string>();
  readonly counters: Omit<UploaderStats, 'pending'> = {
    sent: 0, droppedQueueFull: 0, droppedFailed: 0, droppedRejected: 0, droppedAtStop: 0, retries: 0, timeouts: 0, bytesSent: 0, lastError: null,
  };

  constructor(opts: UploaderOptions) {
    this.opts = opts;
    this.url = new URL(opts.serverAddress);
    this.transport = this.url.protocol === 'https:' ? https : http;
    // Keep-alive: one connection reused across intervals instead of a handshake each time.
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets: 1 });
  }

  stats(): UploaderStats {
    return { ...this.counters, pending: this.queue.length };
  }

  enqueue(item: UploadItem): void {
    if (this.closed) return;
    this.queue.push(item);
    // The item in flight (queue[0] while busy) is never the one dropped.
    while (this.queue.length > this.opts.maxPending) {
      const victim = this.busy ? 1 : 0;
      if (victim >= this.queue.length) break;
      this.queue.splice(victim, 1);
      this.counters.droppedQueueFull++;
      this.warnOnce('queue', `sigprof/pyroscope: uploads are not keeping up with the profiles (the server at ${this.url.origin} is slow or failing); the oldest pending profiles are dropped, see Pyroscope.stats()`, 'SIGPROF_PYROSCOPE_DROPPED');
    }
    this.pump();
  }

  /**
   * Sends what is queued, one attempt each, within `deadlineMs`; whatever is left then is
   * dropped (counted). Meanwhile the process stays alive, for at most that long.
   */
  async flush(deadlineMs: number): Promise<void> {
    this.flushing = true;
    // A backoff of ours is cut short; a server's Retry-After is not (if it ends after the
    // deadline, what waits is dropped).
    if (this.retryTimer && !this.retryHonoursServer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.refInFlight();
    this.pump();
    if (!this.busy && this.queue.length === 0) return this.close();
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      // Referenced on purpose: stop() is awaited, and must finish before the process goes.
      timer = setTimeout(resolve, deadlineMs);
    });
    clearTimeout(timer);
    this.close();
  }

  /**
   * @internal Takes what is queued out of this uploader (for stopSync, which sends it from
   * another process) and closes it; the request in flight is aborted and sent again there.
   */
  drain(): UploadItem[] {
    const items = this.queue.splice(0);
    this.close();
    return items;
  }

  /** Drops everything left (counted) and aborts the request in flight. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.counters.droppedAtStop += this.queue.length;
    this.queue.length = 0;
    this.inFlight?.destroy();
    this.agent.destroy();
    this.settleIdle();
  }

  private settleIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private warnOnce(key: string, message: string, code: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    try {
      this.opts.warn(message, code);
    } catch { /* a logger that throws must not stop the uploads */ }
  }

  private refInFlight(): void {
    const sock = this.inFlight?.socket;
    if (sock) sock.ref();
  }

  private pump(): void {
    if (this.busy || this.retryTimer || this.closed) return;
    const item = this.queue[0];
    if (!item) {
      if (this.flushing) this.settleIdle();
      return;
    }
    this.busy = true;
    item.attempts++;
    this.send(item, (outcome) => {
      this.busy = false;
      this.inFlight = null;
      if (this.closed) return;
      // Still the head unless close() emptied the queue.
      if (this.queue[0] === item) {
        if (outcome.kind === 'ok') {
          this.queue.shift();
          this.counters.sent++;
          this.counters.bytesSent += item.body.length;
        } else if (outcome.kind === 'reject') {
          this.queue.shift();
          this.counters.droppedRejected++;
        } else if (this.flushing) {
          this.queue.shift();
          this.counters.droppedAtStop++;
          // Told to wait: the rest would be refused too, and sending it would not wait.
          if (outcome.retryAfterMs !== undefined) return this.close();
        } else if (item.attempts > this.opts.maxRetries) {
          this.queue.shift();
          this.counters.droppedFailed++;
          this.warnOnce('failed', `sigprof/pyroscope: profiles could not be sent to ${this.url.origin} after ${this.opts.maxRetries} retries (${this.counters.lastError}); they are dropped and counted in Pyroscope.stats(), and sending goes on`, 'SIGPROF_PYROSCOPE_FAILED');
        } else {
          this.counters.retries++;
          this.retryHonoursServer = outcome.retryAfterMs !== undefined;
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.pump();
          }, this.backoff(item.attempts, outcome.retryAfterMs));
          this.retryTimer.unref();
          return;
        }
      }
      this.pump();
    });
  }

  /** Exponential with full jitter in its upper half; a server's Retry-After is a floor. */
  private backoff(attempt: number, retryAfterMs: number | undefined): number {
    const exp = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** (attempt - 1));
    const jittered = exp / 2 + Math.random() * (exp / 2);
    // Honoured up to 5 minutes: the queue is bounded, so waiting longer only loses more.
    return Math.max(jittered, Math.min(retryAfterMs ?? 0, 300_000));
  }

  private send(item: UploadItem, done: (o: { kind: 'ok' | 'reject' | 'retry'; retryAfterMs?: number }) => void): void {
    let finished = false;
    const finish = (o: { kind: 'ok' | 'reject' | 'retry'; retryAfterMs?: number }, error?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      if (error) this.counters.lastError = error;
      done(o);
    };
    const q = new URLSearchParams();
    q.set('format', 'pprof');
    q.set('from', String(item.from));
    q.set('name', this.opts.name);
    q.set('spyName', this.opts.spyName);
    q.set('until', String(item.until));
    if (item.sampleRate !== undefined) q.set('sampleRate', String(item.sampleRate));
    const base = this.url.pathname.replace(/\/+$/, '');
    let req: http.ClientRequest;
    try {
      req = this.transport.request({
        protocol: this.url.protocol,
        hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
        port: this.url.port || undefined,
        path: `${base}/ingest?${q.toString()}`,
        method: 'POST',
        agent: this.agent,
        auth: this.url.username ? `${decodeURIComponent(this.url.username)}:${decodeURIComponent(this.url.password)}` : undefined,
        headers: { ...this.opts.headers, 'Content-Type': 'application/octet-stream', 'Content-Length': item.body.length },
      });
    } catch (e) {
      // A URL the request cannot be made for will not get better.
      this.warnOnce('badurl', `sigprof/pyroscope: cannot send to ${this.url.origin}: ${(e as Error).message}`, 'SIGPROF_PYROSCOPE_FAILED');
      setImmediate(() => finish({ kind: 'reject' }, (e as Error).message));
      return;
    }
    this.inFlight = req;
    // One timer for the whole exchange (connect, send, answer): a server that accepts and
    // never answers costs this long, then the socket goes.
    const deadline = setTimeout(() => {
      this.counters.timeouts++;
      req.destroy(new Error('timeout'));
    }, this.opts.timeoutMs);
    if (!this.flushing) deadline.unref();
    req.on('socket', (s) => {
      if (!this.flushing) s.unref();
      else s.ref();
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'retry' }, e.code ?? e.message));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        res.resume();
        res.on('end', () => finish({ kind: 'ok' }));
        res.on('error', () => finish({ kind: 'ok' }));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_ERROR_BODY) chunks.push(c);
        size += c.length;
      });
      const settle = () => {
        const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY).trim();
        const err = `HTTP ${status}${text ? `: ${text}` : ''}`;
        if (status === 429 || status >= 500 || status < 400) {
          finish({ kind: 'retry', retryAfterMs: status === 429 ? retryAfter(res.headers['retry-after']) : undefined }, err);
        } else {
          this.warnOnce(`http${status}`, `sigprof/pyroscope: ${this.url.origin} refused the ${item.kind} profile with ${err}; profiles it refuses are not retried (counted in Pyroscope.stats())`, 'SIGPROF_PYROSCOPE_REJECTED');
          finish({ kind: 'reject' }, err);
        }
      };
      res.on('end', settle);
      res.on('error', settle);
      res.on('close', settle);
    });
    req.end(item.body);
  }
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
function retryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}
