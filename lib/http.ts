/**
 * `sigprof/http`: Go's net/http/pprof for Node. `handler()` answers /debug/pprof/... on
 * any node:http server, Express or Connect app; `listen()` starts a dedicated server.
 *
 *   GET /debug/pprof/                 HTML index: every profile, its count, a description
 *   GET /debug/pprof/profile          CPU profile (?seconds=N, default 30)
 *   GET /debug/pprof/<name>           any registered profile (?debug=N, ?gc=1 on heap/allocs)
 *   GET /debug/pprof/<name>?seconds=N delta: what changed over N seconds (not CPU)
 *   GET /debug/pprof/cmdline          process.argv, NUL-separated
 *
 * Differences from Go, on purpose: unknown or malformed query parameters are a 400 with
 * the reason (Go ignores them, so a typo like `?second=5` silently gives a 30 s capture);
 * `/symbol` (GET, or POST as `go tool pprof` sends it) answers Go's format but names no
 * address: every frame sigprof could name was named when the profile was written, and a
 * native address no symbol covers has no name here either (pprof then keeps the address,
 * or symbolizes it from the file); `/trace` does not exist; HEAD checks the request and answers
 * with the headers a GET would have, without taking the profile.
 */
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import * as zlib from 'node:zlib';
import { Writable } from 'node:stream';
import * as sigprof from './index';
import type { Profile } from './registry';
import { decodePprof, subtractProfiles, DeltaShapeError } from './http/delta';
import { ContinuousCPUProfile, type CPUSlice } from './cpu';

export interface HandlerOptions {
  /** Where the endpoints live. Default '/debug/pprof'; a trailing '/' is ignored. */
  prefix?: string;
}

export interface ListenOptions extends HandlerOptions {
  /**
   * Address to bind. Default '127.0.0.1'. Anything reachable from other machines is a
   * risk you take explicitly: the endpoints have no authentication, a CPU or delta
   * capture keeps a request open for as long as the caller asks, the index lists every
   * profile name, heap and handle profiles reveal source paths and code structure,
   * and /cmdline reveals the command line (which may contain secrets). Put it behind
   * something that authenticates if it must leave the machine.
   */
  host?: string;
  /** Default 6060; 0 picks a free port (read it from server.address()). */
  port?: number;
  /**
   * Time a client has to send the request headers (ms, default 10,000). A socket that
   * connects and never finishes its headers is closed after this, so idle or slow
   * clients cannot pile up. Node's own default is 60 s, checked every 30 s.
   */
  headersTimeout?: number;
  /**
   * Time a client has to send the whole request (ms, default 20,000; at least
   * headersTimeout). Only reading the request: a capture answering after ?seconds=N is not
   * cut short by it.
   */
  requestTimeout?: number;
  /** Idle time after a response before a keep-alive connection is closed (ms, default 5,000). */
  keepAliveTimeout?: number;
  /**
   * Connections open at once (default 64); further ones are closed as they arrive.
   * pprof clients use one connection per request, so this bounds what a flood of
   * connections can hold in the profiled process.
   */
  maxConnections?: number;
}

/** listen()'s defaults for the limits above; see docs/hardening.md. */
export const LISTEN_DEFAULTS = { headersTimeout: 10_000, requestTimeout: 20_000, keepAliveTimeout: 5_000, maxConnections: 64 } as const;
/** How often Node checks headersTimeout/requestTimeout (its default, 30 s, would let a slow socket live 40 s). */
const CONNECTIONS_CHECK_MS = 1_000;

/** `(req, res, next?) => boolean`; true when the request was under the prefix and is being answered. */
export type PprofHandler = (req: http.IncomingMessage, res: http.ServerResponse, next?: (err?: unknown) => void) => boolean;

const DEFAULT_CPU_SECONDS = 30;
/** setTimeout's ceiling (2^31-1 ms); longer waits would fire at once. */
const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

const PROFILE_DESCRIPTION = 'CPU profile of the JavaScript thread. You can specify the duration in the seconds GET parameter (default 30). After you get the profile file, use the go tool pprof command to investigate the profile.';
const CMDLINE_DESCRIPTION = 'The command line invocation of the current program (process.argv).';
// Go's /debug/pprof/symbol: "num_symbols: 1" says lookups are served; then one
// "<address> <name>" line per address it can name, which here is none (see the header).
const SYMBOL_HEADER = 'num_symbols: 1\n';
const SYMBOL_MAX_BODY = 1 << 20;
const TRACE_BODY = 'trace is not provided: Node has no equivalent of Go\'s runtime/trace execution tracer\n';

type Params = { seconds?: number; debug?: number; gc?: boolean; gz?: boolean };

class BadRequest extends Error {}

/** Accepted parameters per endpoint kind; anything else is refused with the list. */
const ACCEPTS = {
  index: [] as string[],
  cmdline: [] as string[],
  cpu: ['seconds', 'gz'],
  heap: ['debug', 'gc', 'gz', 'seconds'],
  profile: ['debug', 'gz', 'seconds'],
};

function parseParams(query: string, accepted: readonly string[], where: string): Params {
  const out: Params = {};
  const seen = new Set<string>();
  for (const [key, value] of new URLSearchParams(query)) {
    if (!accepted.includes(key)) {
      const list = accepted.length ? `accepted: ${accepted.join(', ')}` : 'it takes no parameters';
      throw new BadRequest(`unknown parameter "${key}" for ${where} (${list})`);
    }
    if (seen.has(key)) throw new BadRequest(`parameter "${key}" is given more than once`);
    seen.add(key);
    const int = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
    switch (key) {
      case 'seconds':
        if (!(int > 0 && int <= MAX_SECONDS)) throw new BadRequest(`invalid value for "seconds": must be a positive integer number of seconds, at most ${MAX_SECONDS} (got "${value}")`);
        out.seconds = int;
        break;
      case 'debug':
        if (Number.isNaN(int)) throw new BadRequest(`invalid value for "debug": must be a non-negative integer (got "${value}")`);
        out.debug = int;
        break;
      case 'gc':
        if (Number.isNaN(int)) throw new BadRequest(`invalid value for "gc": must be a non-negative integer, > 0 runs a full GC first (got "${value}")`);
        out.gc = int > 0;
        break;
      case 'gz':
        if (value !== '0' && value !== '1') throw new BadRequest(`invalid value for "gz": must be 0 (uncompressed protobuf) or 1 (got "${value}")`);
        out.gz = value === '1';
        break;
    }
  }
  if (out.gz !== undefined && (out.debug ?? 0) > 0) throw new BadRequest('"gz" applies to the protobuf format (debug=0) only');
  return out;
}

function sendError(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    // Part of a body is out; a truncated profile must not look complete.
    res.destroy();
    return;
  }
  res.removeHeader('Content-Disposition');
  res.removeHeader('Content-Length');
  // go tool pprof prints the body of a text/plain error carrying X-Go-Pprof instead of
  // just the status line, so its users see the reason.
  const body = message.endsWith('\n') ? message : `${message}\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Go-Pprof': '1', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Sends a complete body; for HEAD (body null) the headers alone. */
function send(res: http.ServerResponse, headers: Record<string, string>, body: Buffer | string | null): void {
  if (res.destroyed) return;
  const h: Record<string, string | number> = { ...headers };
  if (body !== null) h['Content-Length'] = Buffer.byteLength(body);
  res.writeHead(200, h);
  res.end(body ?? undefined);
}

function protoHeaders(filename: string): Record<string, string> {
  // The name goes into a quoted header value; anything that could break out of it goes.
  const safe = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  return { 'Content-Type': 'application/octet-stream', 'Content-Disposition': `attachment; filename="${safe}"` };
}

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8' };

/** Collects what a profile writes, so a failure before the end can still be a clean 500. */
class Collector extends Writable {
  private readonly chunks: Buffer[] = [];
  _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    cb();
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Starts writing the profile synchronously (the snapshot is taken now), resolves with its bytes. */
function renderNow(p: Profile, debug: number, gc: boolean): Promise<Buffer> {
  const sink = new Collector();
  return p.WriteTo(sink, debug, { gc, end: true }).then(() => sink.buffer());
}

/**
 * Heap profiles are the expensive ones (a forced GC plus a walk of the sampler's tree
 * blocks the event loop for ~100 ms on a 40 MB heap), and many clients asking at once
 * (a dashboard, a scraper fleet, a loop) must not multiply that. So for heap and allocs:
 *  - requests for the same (profile, debug, gc) while one is being computed, or within
 *    SHARE_MS after it finished, get that same result: one computation, one Buffer shared
 *    by every response, so memory does not grow with the number of clients;
 *  - a forced GC (?gc=1) runs at most once per GC_MIN_INTERVAL_MS; a ?gc=1 request within
 *    that interval gets a profile without a new GC, and the last full GC is under a
 *    second old.
 * Other profiles are cheap and change with each Add/Remove, so every request gets its own
 * snapshot. See docs/hardening.md.
 */
const SHARED_PROFILES = new Set(['heap', 'allocs']);
export const SHARE_MS = 1000;
/** A delta's two snapshots must be taken at the window's edges, so they share only this closely. */
const DELTA_SHARE_MS = 100;
export const GC_MIN_INTERVAL_MS = 1000;
interface SharedRender { promise: Promise<Buffer>; startedAt: number; done: boolean }
const sharedRenders = new Map<string, SharedRender>();
let lastForcedGcAt = -Infinity;

function render(p: Profile, debug: number, gc: boolean, gz?: boolean, shareMs = SHARE_MS): Promise<Buffer> {
  if (!SHARED_PROFILES.has(p.Name())) return renderNow(p, debug, gc).then((b) => (debug > 0 ? b : maybeGunzip(b, gz)));
  const key = `${p.Name()}\0${debug}\0${gc ? 1 : 0}\0${gz === false ? 0 : 1}`;
  const now = performance.now();
  const hit = sharedRenders.get(key);
  // One still being computed is joined however long it takes, except by a delta, which
  // needs a snapshot taken now.
  if (hit && (now - hit.startedAt < shareMs || (!hit.done && shareMs === SHARE_MS))) return hit.promise;
  let forceGc = false;
  if (gc && now - lastForcedGcAt >= GC_MIN_INTERVAL_MS) {
    forceGc = true;
    lastForcedGcAt = now;
  }
  const promise = renderNow(p, debug, forceGc).then((b) => (debug > 0 ? b : maybeGunzip(b, gz)));
  const entry: SharedRender = { promise, startedAt: now, done: false };
  sharedRenders.set(key, entry);
  const forget = () => { if (sharedRenders.get(key) === entry) sharedRenders.delete(key); };
  // Dropped once stale, so an idle server holds no profile; at once if it failed.
  promise.then(() => {
    entry.done = true;
    setTimeout(forget, SHARE_MS).unref();
  }, forget);
  return promise;
}

/** Requests one connection may have waiting here for its client to read; past it the connection is closed. */
export const MAX_WAITING_PER_CONNECTION = 16;
/** Per connection: the requests waiting in connectionReady, woken together on drain or close. */
const waitingOn = new WeakMap<object, Set<() => void>>();

function wakeAll(conn: object): void {
  const set = waitingOn.get(conn);
  if (set) for (const wake of [...set]) wake();
}

/**
 * Waits until this response may be written without piling up: its turn on a pipelined
 * connection has come (Node assigns the socket then) and the socket has drained what
 * was written before. A client that sends requests and never reads makes them wait
 * here, computing nothing and holding no body; one that has more than
 * MAX_WAITING_PER_CONNECTION waiting is cut off. Resolves false if the connection went away.
 */
async function connectionReady(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
  const conn = req.socket;
  const ready = () => !res.destroyed && !!res.socket && !res.socket.writableNeedDrain;
  if (ready()) return true;
  let set = waitingOn.get(conn);
  if (!set) {
    set = new Set();
    waitingOn.set(conn, set);
    // One pair of listeners per connection, however many requests wait on it.
    conn.on('drain', () => wakeAll(conn));
    conn.once('close', () => wakeAll(conn));
  }
  if (set.size >= MAX_WAITING_PER_CONNECTION) {
    conn.destroy();
    return false;
  }
  const waiters = set;
  while (!res.destroyed && !conn.destroyed) {
    if (ready()) return true;
    await new Promise<void>((resolve) => {
      const wake = () => {
        waiters.delete(wake);
        res.removeListener('socket', wake);
        res.removeListener('close', wake);
        resolve();
      };
      waiters.add(wake);
      res.once('socket', wake);
      res.once('close', wake);
    });
  }
  return false;
}

/**
 * The idle time after which the server drops this connection (server.timeout, or a
 * socket-level setTimeout), or 0 for none. It plays the part of Go's WriteTimeout: a
 * capture keeps the socket silent for its whole duration, so one at least this long
 * would be cut off. requestTimeout and headersTimeout only bound reading the request,
 * which is over by then, and do not matter here.
 */
function idleTimeoutMs(req: http.IncomingMessage): number {
  const sock = req.socket as (typeof req.socket & { timeout?: number; server?: { timeout?: number } }) | null;
  const limits = [sock?.timeout, sock?.server?.timeout].filter((t): t is number => typeof t === 'number' && t > 0);
  return limits.length ? Math.min(...limits) : 0;
}

function checkDuration(req: http.IncomingMessage, seconds: number): void {
  const limit = idleTimeoutMs(req);
  if (limit > 0 && seconds * 1000 >= limit) {
    throw new BadRequest(`profile duration exceeds the server's timeout: ${seconds} s requested, but the connection is dropped after ${limit} ms without output (server.timeout); ask for fewer seconds`);
  }
}

/** Resolves true after `ms`, or false as soon as the client goes away (nothing left to answer). */
function waitUnlessGone(res: http.ServerResponse, ms: number): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onClose = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.removeListener('close', onClose);
      resolve(true);
    }, ms);
    res.once('close', onClose);
  });
}

const maybeGunzip = (buf: Buffer, gz: boolean | undefined): Buffer => (gz === false ? zlib.gunzipSync(buf) : buf);

/**
 * A capture is a reader of the shared CPU sampler (lib/cpu.ts), as the program's own
 * StartCPUProfile and sigprof/pyroscope's push are: it answers 200 with the window's
 * samples whoever else samples meanwhile, and nobody else can stop it. It samples at the
 * rate the sampler already runs at (the profile's period says which), else at
 * SetCPUProfileRate's. docs/hardening.md, "/debug/pprof/profile is a reader".
 */
async function serveCPU(req: http.IncomingMessage, res: http.ServerResponse, params: Params, head: boolean): Promise<void> {
  const seconds = params.seconds ?? DEFAULT_CPU_SECONDS;
  checkDuration(req, seconds);
  if (head) return send(res, protoHeaders('profile'), null);
  let capture: ContinuousCPUProfile;
  try {
    capture = new ContinuousCPUProfile();
  } catch (e) {
    return sendError(res, 500, `Could not enable CPU profiling: ${(e as Error).message}`);
  }
  let completed = false;
  let slice: CPUSlice;
  try {
    completed = await waitUnlessGone(res, seconds * 1000);
  } finally {
    // Left whatever happens: a reader left behind would keep the sampler running.
    slice = capture.stop();
  }
  if (!completed) return;
  const out = params.gz === false ? Buffer.from(slice.builder.encode()) : await slice.builder.encodeGzip();
  send(res, protoHeaders('profile'), out);
}

async function serveProfile(req: http.IncomingMessage, res: http.ServerResponse, p: Profile, params: Params, head: boolean): Promise<void> {
  const debug = params.debug ?? 0;
  const headers = debug > 0 ? TEXT : protoHeaders(p.Name());
  if (head) return send(res, headers, null);
  if (!(await connectionReady(req, res))) return;
  const data = await render(p, debug, !!params.gc, params.gz);
  send(res, headers, data);
}

async function serveDelta(req: http.IncomingMessage, res: http.ServerResponse, p: Profile, params: Params, head: boolean): Promise<void> {
  const seconds = params.seconds!;
  checkDuration(req, seconds);
  if ((params.debug ?? 0) !== 0) throw new BadRequest('seconds and debug params are incompatible: a delta profile is protobuf only');
  const headers = protoHeaders(`${p.Name()}-delta`);
  if (head) return send(res, headers, null);
  const gc = !!params.gc;
  const t0 = process.hrtime.bigint();
  const first = render(p, 0, gc, undefined, DELTA_SHARE_MS);
  // Settled now, awaited later: a failure must not become an unhandled rejection while we wait.
  first.catch(() => {});
  const completed = await waitUnlessGone(res, seconds * 1000);
  const before = await first;
  if (!completed) return;
  const after = await render(p, 0, gc, undefined, DELTA_SHARE_MS);
  const elapsed = Number(process.hrtime.bigint() - t0);
  const builder = subtractProfiles(decodePprof(before), decodePprof(after), elapsed,
    `sigprof: delta profile: the ${p.Name()} profile at the end of a ${seconds} s window minus the same profile at its start`);
  const out = params.gz === false ? Buffer.from(builder.build().encode()) : await builder.encodeGzip();
  send(res, headers, out);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface IndexEntry { name: string; href: string; count: string; description: string }

function indexPage(title: string): string {
  const entries: IndexEntry[] = [];
  for (const p of sigprof.Profiles()) {
    let count: string;
    try {
      count = String(p.Count());
    } catch (e) {
      count = `error: ${(e as Error).message}`;
    }
    const name = p.Name();
    entries.push({ name, href: `${encodeURIComponent(name)}?debug=1`, count, description: p.description || 'Custom profile (NewProfile); its records by the stack that added them.' });
  }
  // No query on these links: profile takes only seconds, cmdline nothing.
  entries.push({ name: 'profile', href: 'profile', count: '', description: PROFILE_DESCRIPTION });
  entries.push({ name: 'cmdline', href: 'cmdline', count: '', description: CMDLINE_DESCRIPTION });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rows = entries.map((e) => `<tr><td>${escapeHtml(e.count)}</td><td><a href="${escapeHtml(e.href)}">${escapeHtml(e.name)}</a></td></tr>`);
  const descs = entries.map((e) => `<li><span class="name">${escapeHtml(e.name)}:</span> ${escapeHtml(e.description)}</li>`);
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: sans-serif; }
td { padding: 0 1em; }
td:first-child { text-align: right; }
.name { font-weight: bold; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>Links give the legacy text format (debug=1); without it, profiles are gzipped protobuf for <code>go tool pprof</code>. Add seconds=N to any profile but the CPU one for a delta over N seconds.</p>
<table>
<thead><tr><td>Count</td><td>Profile</td></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<p><a href="goroutine?debug=2">full handle (goroutine) stack dump</a></p>
<p>Profile descriptions:</p>
<ul>
${descs.join('\n')}
</ul>
<p>Not provided: trace (Node has no execution tracer like Go's runtime/trace) and symbol lookups (frames are symbolized when the profile is written; <code>symbol</code> answers in Go's format with no names).</p>
</body>
</html>
`;
}

/** Reads (and discards) up to 1 MiB of addresses, then answers as Go does with no names. */
async function serveSymbol(req: http.IncomingMessage, res: http.ServerResponse, query: string, head: boolean): Promise<void> {
  let words = query;
  if (req.method === 'POST' && !req.readableEnded) {
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > SYMBOL_MAX_BODY) throw new BadRequest(`the /symbol request body is over ${SYMBOL_MAX_BODY} bytes`);
      chunks.push(c);
    }
    words = Buffer.concat(chunks).toString('latin1');
  }
  for (const w of words.split('+')) {
    if (w !== '' && !/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(w.trim())) throw new BadRequest(`/symbol takes addresses joined by '+' (got ${JSON.stringify(w.slice(0, 40))})`);
  }
  send(res, TEXT, head ? null : SYMBOL_HEADER);
}

async function route(req: http.IncomingMessage, res: http.ServerResponse, prefix: string, url: string): Promise<void> {
  const q = url.indexOf('?');
  const path = url.slice(prefix.length, q < 0 ? url.length : q);
  const query = q < 0 ? '' : url.slice(q + 1);
  const head = req.method === 'HEAD';
  if (path === '') {
    // Relative links in the index only resolve against a path ending in '/'.
    res.writeHead(301, { Location: `${url.slice(0, prefix.length)}/${q < 0 ? '' : url.slice(q)}`, ...TEXT });
    res.end(head ? undefined : 'Moved Permanently\n');
    return;
  }
  let name: string;
  try {
    name = decodeURIComponent(path.slice(1));
  } catch {
    throw new BadRequest(`malformed percent-encoding in ${JSON.stringify(path)}`);
  }
  if (name === '') {
    parseParams(query, ACCEPTS.index, 'the index');
    const page = indexPage(`${url.slice(0, prefix.length)}/`);
    return send(res, { 'Content-Type': 'text/html; charset=utf-8' }, head ? null : page);
  }
  switch (name) {
    case 'profile':
      return serveCPU(req, res, parseParams(query, ACCEPTS.cpu, '/profile'), head);
    case 'cmdline':
      parseParams(query, ACCEPTS.cmdline, '/cmdline');
      return send(res, TEXT, head ? null : process.argv.join('\0'));
    case 'symbol':
      return serveSymbol(req, res, query, head);
    case 'trace':
      return sendError(res, 404, TRACE_BODY);
  }
  const p = sigprof.Lookup(name);
  if (!p) return sendError(res, 404, 'Unknown profile');
  const accepted = name === 'heap' || name === 'allocs' ? ACCEPTS.heap : ACCEPTS.profile;
  const params = parseParams(query, accepted, `/${name}`);
  if (params.seconds !== undefined) return serveDelta(req, res, p, params, head);
  return serveProfile(req, res, p, params, head);
}

function normalizePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) {
    throw new TypeError(`sigprof/http: prefix must be a path starting with "/" (got ${JSON.stringify(prefix)})`);
  }
  return prefix.replace(/\/+$/, '');
}

/** Node calls 'request' listeners with the server as `this` (http and https alike). */
function isSoleRequestListener(self: unknown, fn: unknown): boolean {
  const em = self as { listeners?: (e: string) => unknown[] } | null | undefined;
  if (!em || typeof em.listeners !== 'function') return false;
  const ls = em.listeners('request');
  return ls.length === 1 && ls[0] === fn;
}

/**
 * The /debug/pprof endpoints as a request handler. Use it as
 *  - a server's only listener: `http.createServer(handler())` (other paths get a 404);
 *  - Express/Connect middleware: `app.use(handler())`, or mounted at the prefix
 *    (`app.use('/debug/pprof', handler())`, recognised through req.originalUrl); other
 *    paths go to `next()`;
 *  - a plain function: `if (!h(req, res)) ...` — false means not ours, nothing was sent.
 * Outside the prefix it costs one string comparison: no parsing, no timers, no I/O.
 */
export function handler(opts: HandlerOptions = {}): PprofHandler {
  const prefix = normalizePrefix(opts.prefix ?? '/debug/pprof');
  return function pprofHandler(this: unknown, req, res, next) {
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const c = url.charCodeAt(prefix.length);
    // 47 '/', 63 '?', NaN at the end: '/debug/pprofx' is someone else's path.
    if (!url.startsWith(prefix) || !(c === 47 || c === 63 || Number.isNaN(c))) {
      if (typeof next === 'function') next();
      else if (isSoleRequestListener(this, pprofHandler)) {
        // createServer(handler()): nobody else will answer.
        res.writeHead(404, { ...TEXT, 'X-Content-Type-Options': 'nosniff' });
        res.end('404 page not found\n');
        return true;
      }
      return false;
    }
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // go tool pprof POSTs the addresses of a profile's address-only Locations to /symbol
    // (Go's handler takes both); a 405 there made `go tool pprof <url>` fail outright.
    const isSymbol = /^\/symbol(\?|$)/.test(url.slice(prefix.length));
    if (req.method !== 'GET' && req.method !== 'HEAD' && !(isSymbol && req.method === 'POST')) {
      res.setHeader('Allow', 'GET, HEAD');
      sendError(res, 405, `method ${req.method} not allowed: the pprof endpoints answer GET and HEAD`);
      return true;
    }
    route(req, res, prefix, url).catch((e: unknown) => {
      if (e instanceof BadRequest) sendError(res, 400, e.message);
      else if (e instanceof DeltaShapeError) sendError(res, 500, e.message);
      else sendError(res, 500, `sigprof: ${(e as Error)?.message ?? String(e)}`);
    });
    return true;
  };
}

/**
 * Starts a dedicated server for the endpoints; resolves once it listens.
 *
 * Loopback (127.0.0.1) unless `host` says otherwise; see ListenOptions.host for why
 * exposing it is a risk. The server is an ordinary, referenced one: while it listens the
 * process stays alive, as any server would. A program that should still exit when its
 * own work is done calls `server.unref()` (`sigprof run --http` does); `server.close()`
 * stops it. Its limits (headersTimeout, requestTimeout, keepAliveTimeout,
 * maxConnections; see ListenOptions and LISTEN_DEFAULTS) keep slow or idle clients from
 * holding sockets in the profiled process.
 */
export function listen(opts: ListenOptions = {}): Promise<http.Server> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 6060;
  if (typeof host !== 'string' || host === '') {
    return Promise.reject(new TypeError(`sigprof/http: host must be a non-empty string (got ${JSON.stringify(host)})`));
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    return Promise.reject(new TypeError(`sigprof/http: port must be an integer from 0 to 65535 (got ${JSON.stringify(port)})`));
  }
  const limits: Record<keyof typeof LISTEN_DEFAULTS, number> = { ...LISTEN_DEFAULTS };
  for (const key of Object.keys(LISTEN_DEFAULTS) as (keyof typeof LISTEN_DEFAULTS)[]) {
    const v = opts[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) {
      return Promise.reject(new TypeError(`sigprof/http: ${key} must be an integer from 1 to ${2 ** 31 - 1} (got ${JSON.stringify(v)})`));
    }
    limits[key] = v;
  }
  if (opts.requestTimeout === undefined) limits.requestTimeout = Math.max(limits.requestTimeout, limits.headersTimeout);
  if (limits.requestTimeout < limits.headersTimeout) {
    return Promise.reject(new TypeError(`sigprof/http: requestTimeout (${limits.requestTimeout}) must be at least headersTimeout (${limits.headersTimeout})`));
  }
  let h: PprofHandler;
  try {
    h = handler({ prefix: opts.prefix });
  } catch (e) {
    return Promise.reject(e);
  }
  // Only this server, which sigprof owns: a handler() mounted on the application's server
  // leaves that server's settings alone.
  const server = http.createServer({
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
  } as http.ServerOptions, h);
  server.headersTimeout = limits.headersTimeout;
  server.requestTimeout = limits.requestTimeout;
  server.keepAliveTimeout = limits.keepAliveTimeout;
  server.maxConnections = limits.maxConnections;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      // A later server error (EMFILE on accept, say) with no listener would take the
      // profiled program down; a profiling aid must not.
      server.on('error', (e) => process.emitWarning(`sigprof/http: ${e.message}`, { code: 'SIGPROF_HTTP_ERROR' }));
      resolve(server);
    });
  });
}
