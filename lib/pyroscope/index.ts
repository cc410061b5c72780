/**
 * `sigprof/pyroscope`: continuous profiling pushed to Grafana Pyroscope, with the API and
 * configuration of `@pyroscope/nodejs` (init/start/stop, wrapWithLabels, the PYROSCOPE_*
 * environment variables), over sigprof's profilers: every interval, the CPU profile of
 * that interval (consecutive slices of one shared sampler, so no sample is lost or sent
 * twice) and the heap profile, each POSTed to /ingest as gzipped pprof.
 *
 * What differs from @pyroscope/nodejs, and why, is in docs/pyroscope.md.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { ContinuousCPUProfile, type CPUSlice } from '../cpu';
import { heapPushProfile, heapPushBuilder, runtime } from '../heap';
import { handler } from '../http';
import { Uploader, type UploaderStats, type UploaderOptions, type UploadItem } from './uploader';
import { SigprofError } from '../errors';

export type TagValue = string | number;
export type LabelSet = Record<string, TagValue>;

export interface PyroscopeWallConfig {
  /** Sampling period in µs; sigprof samples CPU time at 1e6 / this Hz. Default 10000 (100 Hz). */
  samplingIntervalMicros?: number;
  /** Accepted for compatibility, unused: sigprof's CPU profile has no separate sampling window. */
  samplingDurationMs?: number;
  /** Accepted for compatibility, unused: sigprof always samples CPU time. */
  collectCpuTime?: boolean;
}

export interface PyroscopeHeapConfig {
  /** Mean bytes between heap samples; sets runtime.MemProfileRate (process-wide). Default 524288. */
  samplingIntervalBytes?: number;
  /** Accepted for compatibility, unused: sigprof keeps 64 frames per heap sample. */
  stackDepth?: number;
}

export interface PyroscopeConfig {
  appName?: string;
  serverAddress?: string;
  authToken?: string;
  basicAuthUser?: string;
  basicAuthPassword?: string;
  tenantID?: string;
  tags?: LabelSet;
  /** Default 60000. */
  flushIntervalMs?: number;
  wall?: PyroscopeWallConfig;
  heap?: PyroscopeHeapConfig;
  /** Accepted for compatibility, unused (see docs/pyroscope.md). */
  sourceMapper?: unknown;
  /** Accepted for compatibility, unused (see docs/pyroscope.md). */
  stripFilenames?: 'all' | 'dependencies';
  /** Accepted for compatibility, unused (see docs/pyroscope.md). */
  shortenPaths?: boolean;

  // ---- sigprof's own ----
  /** Send the heap profile each interval. Default true (false: CPU only). */
  heapEnabled?: boolean;
  /** Add hostname and pid to the tags (on by default; off keeps series per service, not per process). */
  identityTags?: boolean;
  /** Per request: connect, send, answer. Default 10000 ms. */
  uploadTimeoutMs?: number;
  /** Profiles waiting to be sent before the oldest is dropped. Default 8 (4 intervals of CPU + heap). */
  maxPendingUploads?: number;
  /** Retries of a failed upload (network error, timeout, 5xx, 429). Default 3. */
  maxRetries?: number;
  /** First retry delay; doubles each retry, jittered, capped at 60 s. Default 1000 ms. */
  retryBaseMs?: number;
  /** How long stop() may take to send the last profiles. Default 5000 ms. */
  stopTimeoutMs?: number;
  /** Where the once-per-problem messages go. Default process.emitWarning. */
  warn?: (message: string, code: string) => void;
}

const INVALID_NAME_CHARS = /[{},=]/;
const DEFAULT_SERVER = 'http://localhost:4040';
const DEFAULT_FLUSH_MS = 60_000;
const MIN_FLUSH_MS = 10;
const SPY_NAME = 'nodespy';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const VERSION: string = require('../../package.json').version;

function num(v: string | undefined): number | undefined {
  return v === undefined || v === '' ? undefined : Number(v);
}

/** The PYROSCOPE_* variables @pyroscope/nodejs reads, with the same precedence. */
function fromEnv(config: PyroscopeConfig, env: NodeJS.ProcessEnv): PyroscopeConfig {
  return {
    ...config,
    appName: config.appName ?? env.PYROSCOPE_APPLICATION_NAME,
    authToken: config.authToken ?? env.PYROSCOPE_AUTH_TOKEN,
    flushIntervalMs: config.flushIntervalMs ?? num(env.PYROSCOPE_FLUSH_INTERVAL_MS),
    // The ad hoc address wins over the config, as in @pyroscope/nodejs.
    serverAddress: env.PYROSCOPE_ADHOC_SERVER_ADDRESS || config.serverAddress || env.PYROSCOPE_SERVER_ADDRESS,
    heap: {
      ...config.heap,
      samplingIntervalBytes: config.heap?.samplingIntervalBytes ?? num(env.PYROSCOPE_HEAP_SAMPLING_INTERVAL_BYTES),
      stackDepth: config.heap?.stackDepth ?? num(env.PYROSCOPE_HEAP_STACK_DEPTH),
    },
    wall: {
      ...config.wall,
      samplingIntervalMicros: config.wall?.samplingIntervalMicros ?? num(env.PYROSCOPE_WALL_SAMPLING_INTERVAL_MICROS),
      samplingDurationMs: config.wall?.samplingDurationMs ?? num(env.PYROSCOPE_WALL_SAMPLING_DURATION_MS),
    },
    basicAuthUser: config.basicAuthUser ?? env.PYROSCOPE_BASIC_AUTH_USER,
    basicAuthPassword: config.basicAuthPassword ?? env.PYROSCOPE_BASIC_AUTH_PASSWORD,
    tenantID: config.tenantID ?? env.PYROSCOPE_TENANT_ID,
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';

function positiveInt(errors: string[], name: string, v: unknown, min = 1): void {
  if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min)) errors.push(`${name} must be an integer >= ${min} (got ${JSON.stringify(v)})`);
}

/** Every problem at once, before anything starts: bad input changes nothing. */
function validate(c: PyroscopeConfig): void {
  const errors: string[] = [];
  const str = (name: string, v: unknown) => { if (v !== undefined && typeof v !== 'string') errors.push(`${name} must be a string (got ${typeof v})`); };
  str('appName', c.appName);
  str('serverAddress', c.serverAddress);
  str('authToken', c.authToken);
  str('basicAuthUser', c.basicAuthUser);
  str('basicAuthPassword', c.basicAuthPassword);
  str('tenantID', c.tenantID);
  if (typeof c.appName === 'string' && INVALID_NAME_CHARS.test(c.appName)) errors.push(`appName must not contain '{', '}', ',' or '=' (got ${JSON.stringify(c.appName)})`);
  if (typeof c.serverAddress === 'string') {
    try {
      const u = new URL(c.serverAddress);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') errors.push(`serverAddress must be an http: or https: URL (got ${JSON.stringify(c.serverAddress)})`);
    } catch {
      errors.push(`serverAddress is not a URL (got ${JSON.stringify(c.serverAddress)})`);
    }
  }
  if (c.tags !== undefined) {
    if (!isObj(c.tags)) errors.push('tags must be an object of string or number values');
    else for (const [k, v] of Object.entries(c.tags)) {
      if (INVALID_NAME_CHARS.test(k)) errors.push(`tag key ${JSON.stringify(k)} must not contain '{', '}', ',' or '='`);
      if (typeof v === 'string' ? INVALID_NAME_CHARS.test(v) : typeof v !== 'number') errors.push(`tag ${JSON.stringify(k)}: the value must be a string without '{', '}', ',' or '=', or a number (got ${JSON.stringify(v)})`);
    }
  }
  positiveInt(errors, 'flushIntervalMs', c.flushIntervalMs, MIN_FLUSH_MS);
  if (c.wall !== undefined && !isObj(c.wall)) errors.push('wall must be an object');
  positiveInt(errors, 'wall.samplingIntervalMicros', c.wall?.samplingIntervalMicros);
  if (c.heap !== undefined && !isObj(c.heap)) errors.push('heap must be an object');
  const bytes = c.heap?.samplingIntervalBytes;
  if (bytes !== undefined && !(typeof bytes === 'number' && Number.isInteger(bytes) && bytes >= 0)) errors.push(`heap.samplingIntervalBytes must be an integer >= 0 (got ${JSON.stringify(bytes)})`);
  if (c.stripFilenames !== undefined && c.stripFilenames !== 'all' && c.stripFilenames !== 'dependencies') errors.push("stripFilenames must be 'all' or 'dependencies'");
  positiveInt(errors, 'uploadTimeoutMs', c.uploadTimeoutMs);
  positiveInt(errors, 'maxPendingUploads', c.maxPendingUploads);
  positiveInt(errors, 'maxRetries', c.maxRetries, 0);
  positiveInt(errors, 'retryBaseMs', c.retryBaseMs);
  positiveInt(errors, 'stopTimeoutMs', c.stopTimeoutMs, 0);
  if (c.warn !== undefined && typeof c.warn !== 'function') errors.push('warn must be a function');
  if (errors.length) throw new TypeError(`sigprof/pyroscope: invalid config:\n  ${errors.join('\n  ')}`);
}

/** When none is given: the main script's name, so a fleet's services do not all land in one. */
function defaultAppName(): string {
  const main = process.argv[1];
  const base = main ? path.basename(main).replace(/\.[cm]?[jt]s$/, '') : '';
  return base.replace(/[{},=]/g, '_') || 'node';
}

/** `app{k=v,...}`: sigprof's identity tags first, then the user's (which win on a clash). */
export function ingestName(appName: string, tags: LabelSet, identity: boolean): string {
  const defaults: LabelSet = {
    service_name: appName,
    ...(identity ? { hostname: os.hostname().replace(/[{},=]/g, '_'), pid: process.pid } : {}),
    'otel.scope.name': 'sigprof',
    'otel.scope.version': VERSION,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
  };
  const parts = Object.entries(defaults).filter(([k]) => !(k in tags)).concat(Object.entries(tags)).map(([k, v]) => `${k}=${v}`);
  return `${appName}{${parts.join(',')}}`;
}

interface Resolved {
  uploaderOptions: Omit<UploaderOptions, 'warn'>;
  hz: number;
  flushIntervalMs: number;
  heap: boolean;
  heapRate: number | undefined;
  stopTimeoutMs: number;
  uploader: Uploader;
}

function resolve(config: PyroscopeConfig): Resolved {
  if (!isObj(config)) throw new TypeError('sigprof/pyroscope: init(config): config must be an object');
  const c = fromEnv(config, process.env);
  validate(c);
  const headers: Record<string, string> = {};
  if (c.authToken !== undefined) headers.Authorization = `Bearer ${c.authToken}`;
  else if (c.basicAuthUser && c.basicAuthPassword) headers.Authorization = `Basic ${Buffer.from(`${c.basicAuthUser}:${c.basicAuthPassword}`).toString('base64')}`;
  if (c.tenantID) headers['X-Scope-OrgID'] = c.tenantID;
  const appName = c.appName || defaultAppName();
  const micros = c.wall?.samplingIntervalMicros ?? 10_000;
  const uploaderOptions: Omit<UploaderOptions, 'warn'> = {
    serverAddress: c.serverAddress || DEFAULT_SERVER,
    name: ingestName(appName, (c.tags ?? {}) as LabelSet, c.identityTags !== false),
    spyName: SPY_NAME,
    headers,
    timeoutMs: c.uploadTimeoutMs ?? 10_000,
    maxPending: c.maxPendingUploads ?? 8,
    maxRetries: c.maxRetries ?? 3,
    backoffBaseMs: c.retryBaseMs ?? 1000,
    backoffMaxMs: 60_000,
  };
  return {
    uploaderOptions,
    hz: Math.max(1, Math.round(1e6 / micros)),
    flushIntervalMs: c.flushIntervalMs ?? DEFAULT_FLUSH_MS,
    heap: c.heapEnabled !== false,
    heapRate: c.heap?.samplingIntervalBytes,
    stopTimeoutMs: c.stopTimeoutMs ?? 5000,
    uploader: new Uploader({ ...uploaderOptions, warn: c.warn ?? ((message, code) => process.emitWarning(message, { code })) }),
  };
}

export interface PyroscopeStats extends UploaderStats {
  running: boolean;
  /** Intervals cut so far (each gives one CPU and, if on, one heap profile). */
  intervals: number;
  /** Profiles that could not be made (encoding failed); none are expected. */
  buildErrors: number;
  /** Longest synchronous step of an interval on the event loop (cut + heap read), ms. */
  maxStepMs: number;
}

const unixSeconds = (ms: number) => Math.floor(ms / 1000);

class PushProfiler {
  readonly r: Resolved;
  private cpu: ContinuousCPUProfile | null = null;
  private timer: NodeJS.Timeout | null = null;
  private heapFrom = 0;
  private nextAt = 0;
  private building = new Set<Promise<void>>();
  intervals = 0;
  buildErrors = 0;
  maxStepMs = 0;
  stopping: Promise<void> | null = null;

  constructor(r: Resolved) {
    this.r = r;
  }

  get running(): boolean {
    return this.cpu !== null;
  }

  start(): void {
    if (this.cpu || this.stopping) return;
    if (this.r.heapRate !== undefined && runtime.MemProfileRate !== this.r.heapRate) runtime.MemProfileRate = this.r.heapRate;
    this.cpu = new ContinuousCPUProfile(this.r.hz);
    this.heapFrom = Date.now();
    this.nextAt = this.heapFrom + this.r.flushIntervalMs;
    this.schedule();
  }

  private schedule(): void {
    // Due times on a fixed grid, so a slow interval does not shift every later one.
    const wait = Math.max(0, this.nextAt - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.nextAt += this.r.flushIntervalMs;
      if (this.nextAt < Date.now()) this.nextAt = Date.now() + this.r.flushIntervalMs;
      this.round(false);
      if (this.cpu) this.schedule();
    }, wait);
    this.timer.unref();
  }

  /** Cuts the interval and queues its profiles; the encoding and sending happen later. */
  private round(final: boolean): void {
    const cpu = this.cpu;
    if (!cpu) return;
    const t0 = process.hrtime.bigint();
    let slice: CPUSlice | null = null;
    try {
      slice = final ? cpu.stop() : cpu.cut();
    } catch {
      this.buildErrors++;
    }
    if (final) this.cpu = null;
    const heapFrom = this.heapFrom;
    const now = Date.now();
    this.heapFrom = now;
    let heap: Promise<Buffer | null> | null = null;
    if (this.r.heap) heap = heapPushProfile();
    this.intervals++;
    this.maxStepMs = Math.max(this.maxStepMs, Number(process.hrtime.bigint() - t0) / 1e6);
    const up = this.r.uploader;
    const p = (async () => {
      if (slice) {
        try {
          const body = await slice.builder.encodeGzip();
          up.enqueue({ kind: 'cpu', from: unixSeconds(slice.startMs), until: unixSeconds(slice.endMs), body, sampleRate: slice.hz, attempts: 0 });
        } catch {
          this.buildErrors++;
        }
      }
      if (heap) {
        try {
          const body = await heap;
          if (body) up.enqueue({ kind: 'heap', from: unixSeconds(heapFrom), until: unixSeconds(now), body, attempts: 0 });
        } catch {
          this.buildErrors++;
        }
      }
    })();
    this.building.add(p);
    void p.finally(() => this.building.delete(p));
  }

  /** Cuts the last interval, sends what is pending within stopTimeoutMs, and resolves. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (!this.cpu) return Promise.resolve();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.round(true);
    const deadline = Date.now() + this.r.stopTimeoutMs;
    this.stopping = (async () => {
      await Promise.all(this.building);
      await this.r.uploader.flush(Math.max(0, deadline - Date.now()));
    })();
    return this.stopping;
  }

  /**
   * stop() for where nothing asynchronous can run (an 'exit' handler): cuts the last
   * interval, encodes it synchronously, and sends it with what was pending from a short-
   * lived child process, waiting for it at most stopTimeoutMs. Returns how many profiles
   * the server accepted.
   */
  stopSync(): number {
    if (this.stopping || !this.cpu) return 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const cpu = this.cpu;
    this.cpu = null;
    this.stopping = Promise.resolve();
    const items: UploadItem[] = this.r.uploader.drain();
    const gz = (raw: Uint8Array) => zlib.gzipSync(raw, { level: zlib.constants.Z_BEST_SPEED });
    const now = Date.now();
    try {
      const slice = cpu.stop();
      items.push({ kind: 'cpu', from: unixSeconds(slice.startMs), until: unixSeconds(slice.endMs), body: gz(slice.builder.encode()), sampleRate: slice.hz, attempts: 0 });
    } catch {
      this.buildErrors++;
    }
    if (this.r.heap) {
      try {
        const b = heapPushBuilder();
        if (b) items.push({ kind: 'heap', from: unixSeconds(this.heapFrom), until: unixSeconds(now), body: gz(b.encode()), attempts: 0 });
      } catch {
        this.buildErrors++;
      }
    }
    this.intervals++;
    const up = this.r.uploader.counters;
    if (items.length === 0) return 0;
    const input = JSON.stringify({ options: this.r.uploaderOptions, deadlineMs: this.r.stopTimeoutMs, items: items.map((i) => ({ ...i, body: i.body.toString('base64'), attempts: 0 })) });
    // The child must not load this program's preloads (NODE_OPTIONS) or profile itself.
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const res = spawnSync(process.execPath, [path.join(__dirname, 'upload-child.js')], { input, env, timeout: this.r.stopTimeoutMs + 2000, stdio: ['pipe', 'pipe', 'ignore'], encoding: 'utf8' });
    let sent = 0;
    try {
      const out = JSON.parse(res.stdout) as UploaderStats;
      sent = out.sent;
      up.sent += out.sent;
      up.bytesSent += out.bytesSent;
      up.retries += out.retries;
      up.timeouts += out.timeouts;
      up.droppedRejected += out.droppedRejected;
      up.droppedFailed += out.droppedFailed;
      up.droppedAtStop += items.length - out.sent - out.droppedRejected - out.droppedFailed;
      if (out.lastError) up.lastError = out.lastError;
    } catch {
      up.droppedAtStop += items.length;
      up.lastError = res.error ? res.error.message : 'the upload process failed';
    }
    return sent;
  }

  stats(): PyroscopeStats {
    return { ...this.r.uploader.stats(), running: this.running, intervals: this.intervals, buildErrors: this.buildErrors, maxStepMs: this.maxStepMs };
  }
}

let profiler: PushProfiler | null = null;
let pendingConfig: PyroscopeConfig | null = null;

/** Configures the push (as @pyroscope/nodejs does); start() begins it. A second init replaces the first. */
export function init(config: PyroscopeConfig = {}): void {
  const r = resolve(config);
  if (profiler?.running) {
    // Reconfiguring a running push: the old one finishes its interval and flushes in the background.
    void profiler.stop();
    profiler = new PushProfiler(r);
    profiler.start();
    return;
  }
  profiler = new PushProfiler(r);
  pendingConfig = config;
}

/** Starts pushing. `start(config)` is init(config) then start(). Idempotent. */
export function start(config?: PyroscopeConfig): void {
  if (config !== undefined) init(config);
  if (!profiler || profiler.stopping) init(pendingConfig ?? {});
  profiler!.start();
}

/** Sends the last interval and resolves (within stopTimeoutMs). Resolves at once when not running. */
export function stop(): Promise<void> {
  return profiler ? profiler.stop() : Promise.resolve();
}

/**
 * sigprof's own: stop() for an 'exit' handler or any place where nothing asynchronous can
 * run. Cuts the last interval, encodes it, and sends it and whatever was pending from a
 * short-lived child process, blocking for at most stopTimeoutMs (plus that process's
 * start-up). Returns the number of profiles the server accepted.
 */
export function stopSync(): number {
  return profiler ? profiler.stopSync() : 0;
}

/** sigprof's own: what was sent and what was dropped, and why. */
export function stats(): PyroscopeStats | null {
  return profiler ? profiler.stats() : null;
}

// ---- labels: on top of sigprof's Do/Labels (lib/labels.ts) ----

interface LabelsApi {
  Do<R>(labels: unknown, fn: () => R): R;
  Labels(...kv: string[]): unknown;
  ForLabels?(fn: (k: string, v: string) => boolean | void): void;
  SetGoroutineLabels?(labels: unknown): void;
}

let labelsApi: LabelsApi | null | undefined;
let warnedNoLabels = false;

function labels(): LabelsApi | null {
  if (labelsApi !== undefined) return labelsApi;
  // Lazily: the index requires this module's neighbours, and labels may not be built in.
  const idx = require('../index') as Partial<LabelsApi>;
  labelsApi = typeof idx.Do === 'function' && typeof idx.Labels === 'function' ? idx as LabelsApi : null;
  return labelsApi;
}

function flatten(lbls: LabelSet): string[] {
  if (!isObj(lbls)) throw new TypeError('sigprof/pyroscope: wrapWithLabels(labels, fn): labels must be an object');
  const kv: string[] = [];
  for (const [k, v] of Object.entries(lbls)) kv.push(k, String(v));
  return kv;
}

function noLabels(): void {
  if (warnedNoLabels) return;
  warnedNoLabels = true;
  process.emitWarning('sigprof/pyroscope: this sigprof build has no profile labels (Do/Labels); wrapWithLabels runs its function without labels', { code: 'SIGPROF_NO_LABELS' });
}

/**
 * Runs `fn(...args)` with `lbls` added to the current labels (sigprof's Do): its CPU
 * samples, and those of the async work it starts, carry them. Returns what fn returns
 * (@pyroscope/nodejs returns nothing; a value is a superset).
 */
export function wrapWithLabels<A extends unknown[], R>(lbls: LabelSet, fn: (...args: A) => R, ...args: A): R {
  if (typeof fn !== 'function') throw new TypeError('sigprof/pyroscope: wrapWithLabels(labels, fn): fn must be a function');
  const kv = flatten(lbls);
  const api = labels();
  if (!api) {
    noLabels();
    return fn(...args);
  }
  return api.Do(api.Labels(...kv), () => fn(...args));
}

/** The current labels as an object. */
export function getLabels(): Record<string, string> {
  const out: Record<string, string> = {};
  labels()?.ForLabels?.((k, v) => { out[k] = v; });
  return out;
}

/** Makes `lbls` the labels of the current async context (sigprof's SetGoroutineLabels). */
export function setLabels(lbls: LabelSet): void {
  const kv = flatten(lbls);
  const api = labels();
  if (!api?.SetGoroutineLabels) {
    noLabels();
    return;
  }
  api.SetGoroutineLabels(api.Labels(...kv));
}

/** Pull mode in @pyroscope/nodejs (`app.use(expressMiddleware())`): here, sigprof's /debug/pprof handler. */
export const expressMiddleware = () => handler();
export const fastifyMiddleware = (): never => {
  throw new SigprofError('ERR_NOT_SUPPORTED', 'sigprof/pyroscope: fastifyMiddleware is not provided; serve sigprof/http\'s handler() from a raw route, or use listen()');
};

// The names @pyroscope/nodejs exports for its two profilers; here both are one push.
export const startCpuProfiling = (): void => start();
export const startWallProfiling = startCpuProfiling;
export const startHeapProfiling = startCpuProfiling;
export const stopCpuProfiling = stop;
export const stopWallProfiling = stop;
export const stopHeapProfiling = stop;
export const getWallLabels = getLabels;
export const setWallLabels = setLabels;

const Pyroscope = {
  init, start, stop, stopSync, stats, wrapWithLabels, getLabels, setLabels, getWallLabels, setWallLabels,
  expressMiddleware, fastifyMiddleware,
  startCpuProfiling, startWallProfiling, startHeapProfiling, stopCpuProfiling, stopWallProfiling, stopHeapProfiling,
};
export default Pyroscope;

/**
 * `node --require sigprof/pyroscope app.js` with PYROSCOPE_SERVER_ADDRESS (or
 * PYROSCOPE_APPLICATION_NAME) set: starts pushing before the program runs, and sends the
 * last interval when the event loop empties. Loaded by an import in the program itself,
 * nothing starts until init/start.
 */
export function autostartFromEnv(): boolean {
  const env = process.env;
  if (!(env.PYROSCOPE_SERVER_ADDRESS || env.PYROSCOPE_ADHOC_SERVER_ADDRESS || env.PYROSCOPE_APPLICATION_NAME)) return false;
  try {
    start({});
  } catch (e) {
    process.emitWarning(`sigprof/pyroscope: not started: ${(e as Error).message}`, { code: 'SIGPROF_PYROSCOPE_CONFIG' });
    return false;
  }
  process.once('beforeExit', () => { void stop(); });
  return true;
}
