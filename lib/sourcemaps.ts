/**
 * Source maps: generated (file, line, column) → original (file, line, column, name), for
 * every profile sigprof writes. The symbolizer (symbolize.ts) calls mapFrame() where
 * frames become Frames, on the JS thread while a profile is built; nothing here runs in
 * the signal handler or the collector thread.
 *
 * Where a script's map comes from, first hit wins:
 *  1. Node's own source-map cache (`--enable-source-maps`, process.setSourceMapsEnabled),
 *     through node:module's findSourceMap. Node owns those maps; we only look them up.
 *  2. The script's `//# sourceMappingURL=` comment: an external .map file next to it or
 *     an inline `data:` URL. The script is read once, the first time one of its frames is
 *     written.
 *  3. The search directories (SetSourceMaps({ searchDirs })): a `<script>.map` whose path
 *     shares the longest tail with the script's, for code deployed without the comment.
 * Maps from 2 and 3 are parsed by node:module's SourceMap class (Node 20–26 all have it,
 * `name` included), so no third-party parser is needed. It ignores `sourceRoot`, so sources
 * are resolved here (sourceRoot + source, against the map's own location) before parsing.
 *
 * Memory: parsed maps are kept in an LRU bounded by an estimate of their bytes (Node's
 * parser keeps one small array per mapping segment); an evicted map is read again when
 * next needed. A map that is missing, unreadable, malformed, huge, or maps past its
 * sources gives one warning and its script's frames stay generated.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as nodeModule from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface SourceMapOptions {
  /** Unchanged when omitted; initially true, false with SIGPROF_SOURCE_MAPS=0 in the environment. */
  enabled?: boolean;
  /** Directories searched (recursively) for `<script>.map` when a script has no sourceMappingURL. */
  searchDirs?: string[];
  /** Budget for parsed maps, estimated bytes. Default 64 MiB. */
  cacheBytes?: number;
  /** A map file (or inline map) larger than this is skipped with a warning. Default 64 MiB. */
  maxMapBytes?: number;
}

export interface OriginalPosition {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  name?: string;
}

interface NodeSourceMap {
  findEntry(line: number, column: number): {
    generatedLine?: number; generatedColumn?: number; originalSource?: string;
    originalLine?: number; originalColumn?: number; name?: string;
  };
}

type SourceMapCtor = new (payload: unknown) => NodeSourceMap;
const mod = nodeModule as unknown as {
  findSourceMap?: (url: string) => NodeSourceMap | undefined;
  SourceMap?: SourceMapCtor;
};

const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_MAP_BYTES = 64 * 1024 * 1024;
/** A generated script read to find its comment; larger ones are not read. */
const MAX_SCRIPT_BYTES = 256 * 1024 * 1024;
/**
 * V8 heap Node's parser keeps per mapping segment (a small array each): measured ~100
 * bytes on Node 20 and 26 (1,000 esbuild maps, 192,000 segments: 21.5 MB of heap for
 * 2.3 MB of JSON), bench/sourcemaps.js.
 */
const BYTES_PER_SEGMENT = 100;
/** Files listed per search directory tree at most. */
const MAX_INDEXED_MAPS = 100_000;
/** Script records kept (most have no map; they are tiny). */
const MAX_SCRIPTS = 200_000;

/** A script's map as far as we know it. */
interface ScriptRecord {
  /** null: no map, or a bad one (warned); frames stay generated. */
  map: NodeSourceMap | null;
  /** The map is ours (counted in the LRU); false for Node's own maps. */
  owned: boolean;
  bytes: number;
  /** Original sources' line counts, for the "past the source" check; -1 when unknown. */
  sourceLines: Map<string, number>;
  /** Where the map came from, for warnings. */
  origin: string;
}

let config = initialConfig();

function initialConfig(): Required<SourceMapOptions> {
  const env = process.env.SIGPROF_SOURCE_MAPS;
  const dirs = process.env.SIGPROF_SOURCE_MAP_DIRS;
  return {
    enabled: !(env !== undefined && /^(0|false|off|no)$/i.test(env.trim())),
    searchDirs: dirs ? dirs.split(path.delimiter).filter(Boolean).map((d) => path.resolve(d)) : [],
    cacheBytes: DEFAULT_CACHE_BYTES,
    maxMapBytes: DEFAULT_MAX_MAP_BYTES,
  };
}

class SourceMapper {
  /** Insertion order is the LRU order for owned maps (re-inserted on use). */
  private readonly scripts = new Map<string, ScriptRecord>();
  private ownedBytes = 0;
  private readonly warned = new Set<string>();
  private dirIndex: Map<string, string[]> | null = null;
  /** Scripts served by Node's own maps / by maps read here (reads again after eviction count again). */
  nodeMaps = 0;
  loadedMaps = 0;

  constructor(private readonly opts: Required<SourceMapOptions>) {}

  get cachedBytes(): number {
    return this.ownedBytes;
  }

  private warn(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    process.emitWarning(`sigprof: ${message}; its frames stay generated`, { code: 'SIGPROF_SOURCE_MAP' });
  }

  private record(url: string): ScriptRecord {
    let r = this.scripts.get(url);
    if (r) {
      if (r.owned) {
        // Most recently used goes last.
        this.scripts.delete(url);
        this.scripts.set(url, r);
      }
      return r;
    }
    r = this.load(url);
    if (r.map && r.owned) this.loadedMaps++;
    else if (r.map) this.nodeMaps++;
    if (this.scripts.size >= MAX_SCRIPTS) this.dropAll();
    this.scripts.set(url, r);
    if (r.owned) {
      this.ownedBytes += r.bytes;
      this.evict(url);
    }
    return r;
  }

  private evict(keep: string): void {
    for (const [url, r] of this.scripts) {
      if (this.ownedBytes <= this.opts.cacheBytes) break;
      if (!r.owned || url === keep) continue;
      this.scripts.delete(url);
      this.ownedBytes -= r.bytes;
    }
  }

  private dropAll(): void {
    this.scripts.clear();
    this.ownedBytes = 0;
  }

  private load(url: string): ScriptRecord {
    const none: ScriptRecord = { map: null, owned: false, bytes: 0, sourceLines: new Map(), origin: '' };
    const file = scriptPath(url);
    // 1. Node's own cache. findSourceMap wants what the module system keyed it by.
    if (mod.findSourceMap) {
      for (const key of file ? [url, file, pathToFileURL(file).href] : [url]) {
        let m: NodeSourceMap | undefined;
        try { m = mod.findSourceMap(key); } catch { m = undefined; }
        if (m) return { map: m, owned: false, bytes: 0, sourceLines: new Map(), origin: `Node's source map of ${url}` };
      }
    }
    if (!file || !mod.SourceMap) return none;
    // 2. The script's own comment.
    const found = this.fromComment(file);
    if (found === 'bad') return none;
    if (found) return found;
    // 3. The search directories.
    const mapFile = this.searchDirs(file);
    if (!mapFile) return none;
    return this.parseFile(mapFile, file) ?? none;
  }

  private fromComment(file: string): ScriptRecord | 'bad' | null {
    let text: string;
    try {
      const st = fs.statSync(file);
      if (!st.isFile() || st.size > MAX_SCRIPT_BYTES) return null;
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    const ref = sourceMappingURL(text);
    if (!ref) return null;
    if (ref.startsWith('data:')) {
      const json = decodeDataUrl(ref);
      if (json === null) {
        this.warn(file, `the inline source map of ${file} is not a JSON data: URL`);
        return 'bad';
      }
      if (json.length > this.opts.maxMapBytes) {
        this.warn(file, `the inline source map of ${file} is ${json.length} bytes, over the ${this.opts.maxMapBytes}-byte limit`);
        return 'bad';
      }
      return this.parse(json, pathToFileURL(file).href, `the inline source map of ${file}`, file) ?? 'bad';
    }
    let mapFile: string;
    try {
      mapFile = ref.startsWith('file:') ? fileURLToPath(ref) : path.resolve(path.dirname(file), decodeURIComponent(ref));
    } catch {
      this.warn(file, `the sourceMappingURL of ${file} (${ref.slice(0, 100)}) is not a file`);
      return 'bad';
    }
    if (/^[a-z][a-z0-9+.-]*:/i.test(ref) && !ref.startsWith('file:')) {
      this.warn(file, `the sourceMappingURL of ${file} (${ref.slice(0, 100)}) is not a local file`);
      return 'bad';
    }
    return this.parseFile(mapFile, file) ?? 'bad';
  }

  private parseFile(mapFile: string, script: string): ScriptRecord | null {
    let json: string;
    try {
      const st = fs.statSync(mapFile);
      if (st.size > this.opts.maxMapBytes) {
        this.warn(mapFile, `the source map ${mapFile} of ${script} is ${st.size} bytes, over the ${this.opts.maxMapBytes}-byte limit`);
        return null;
      }
      json = fs.readFileSync(mapFile, 'utf8');
    } catch (err) {
      this.warn(mapFile, `the source map ${mapFile} of ${script} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return null;
    }
    return this.parse(json, pathToFileURL(mapFile).href, `the source map ${mapFile}`, script);
  }

  /** `base`: the URL sources resolve against (the map file's, or the script's for inline maps). */
  private parse(json: string, base: string, origin: string, script: string): ScriptRecord | null {
    let payload: { version?: unknown; sources?: unknown; sourceRoot?: unknown; mappings?: unknown; sections?: unknown; sourcesContent?: unknown; names?: unknown };
    try {
      payload = JSON.parse(json);
    } catch (err) {
      this.warn(origin, `${origin} (for ${script}) is not valid JSON (${(err as Error).message.slice(0, 80)})`);
      return null;
    }
    if (!payload || typeof payload !== 'object' || payload.version !== 3 ||
        (!Array.isArray(payload.sections) && (!Array.isArray(payload.sources) || typeof payload.mappings !== 'string'))) {
      this.warn(origin, `${origin} (for ${script}) is not a version 3 source map`);
      return null;
    }
    const sourceLines = new Map<string, number>();
    let segments = 0;
    const resolveSection = (p: typeof payload, sectionBase: string): void => {
      const root = typeof p.sourceRoot === 'string' && p.sourceRoot !== '' ? p.sourceRoot.replace(/\/?$/, '/') : '';
      const sources = Array.isArray(p.sources) ? p.sources : [];
      const content = Array.isArray(p.sourcesContent) ? p.sourcesContent : [];
      p.sources = sources.map((s: unknown, i: number) => {
        const resolved = resolveSource(root + String(s ?? ''), sectionBase);
        if (typeof content[i] === 'string') sourceLines.set(resolved, countLines(content[i] as string));
        return resolved;
      });
      delete p.sourceRoot;
      // Node's parser keeps sourcesContent too; nothing here needs it.
      delete p.sourcesContent;
      if (typeof p.mappings === 'string') segments += countSegments(p.mappings);
    };
    if (Array.isArray(payload.sections)) {
      for (const s of payload.sections as Array<{ map?: typeof payload }>) if (s?.map) resolveSection(s.map, base);
    } else {
      resolveSection(payload, base);
    }
    const bytes = json.length + segments * BYTES_PER_SEGMENT;
    if (bytes > this.opts.cacheBytes) {
      this.warn(origin, `${origin} (for ${script}) would take about ${bytes} bytes parsed, over the ${this.opts.cacheBytes}-byte source map cache`);
      return null;
    }
    let map: NodeSourceMap;
    try {
      map = new mod.SourceMap!(payload);
    } catch (err) {
      this.warn(origin, `${origin} (for ${script}) cannot be parsed (${(err as Error).message.slice(0, 80)})`);
      return null;
    }
    return { map, owned: true, bytes, sourceLines, origin };
  }

  private searchDirs(file: string): string | null {
    if (this.opts.searchDirs.length === 0) return null;
    if (!this.dirIndex) this.dirIndex = indexMaps(this.opts.searchDirs);
    const candidates = this.dirIndex.get(path.basename(file) + '.map');
    if (!candidates) return null;
    // The map whose path agrees with the script's over the most trailing components.
    const want = file.split(path.sep).reverse();
    let best: string | null = null;
    let bestScore = 0;
    for (const c of candidates) {
      const have = c.slice(0, -'.map'.length).split(path.sep).reverse();
      let k = 0;
      while (k < want.length && k < have.length && want[k] === have[k]) k++;
      if (k > bestScore) { bestScore = k; best = c; }
    }
    return best;
  }

  /** Original position of a 1-based generated (line, column) in `url`; column 0 = unknown. */
  lookup(url: string, line: number, column: number): OriginalPosition | null {
    if (line <= 0 || !url) return null;
    const r = this.record(url);
    if (!r.map) return null;
    let e = r.map.findEntry(line - 1, column > 0 ? column - 1 : 0);
    // A position before its line's first segment (or an unknown column): that line's last segment.
    if (e.generatedLine !== line - 1) e = r.map.findEntry(line - 1, 1 << 30);
    if (e.generatedLine !== line - 1) return null;
    if (typeof e.originalSource !== 'string' || e.originalSource === '' || !(e.originalLine! >= 0)) {
      this.invalidate(url, r, `${r.origin} (for ${url}) maps line ${line} to a source it does not list`);
      return null;
    }
    const file = displayPath(e.originalSource);
    const lines = this.sourceLineCount(r, file);
    if (lines >= 0 && e.originalLine! >= lines) {
      this.invalidate(url, r, `${r.origin} (for ${url}) maps line ${line} past the end of ${file} (${lines} lines)`);
      return null;
    }
    return { file, line: e.originalLine! + 1, column: (e.originalColumn ?? 0) + 1, name: e.name || undefined };
  }

  /** A map caught lying is dropped for its whole script, so its frames read consistently. */
  private invalidate(url: string, r: ScriptRecord, message: string): void {
    this.warn(r.origin, message);
    if (r.owned) this.ownedBytes -= r.bytes;
    this.scripts.set(url, { map: null, owned: false, bytes: 0, sourceLines: new Map(), origin: r.origin });
  }

  private sourceLineCount(r: ScriptRecord, file: string): number {
    let n = r.sourceLines.get(file);
    if (n === undefined) {
      // Without sourcesContent, the original file itself (when it is here) bounds the lines.
      n = -1;
      try {
        const st = fs.statSync(file);
        if (st.isFile() && st.size <= MAX_SCRIPT_BYTES) n = countLines(fs.readFileSync(file, 'utf8'));
      } catch { /* not on this machine: nothing to check against */ }
      r.sourceLines.set(file, n);
    }
    return n;
  }
}

function scriptPath(url: string): string | null {
  if (url.startsWith('file://')) {
    try { return fileURLToPath(url); } catch { return null; }
  }
  return path.isAbsolute(url) ? url : null;
}

/** The last `//# sourceMappingURL=` (or the old `//@`) comment's URL. */
function sourceMappingURL(text: string): string | null {
  let at = text.length;
  for (;;) {
    const i = Math.max(text.lastIndexOf('//# sourceMappingURL=', at), text.lastIndexOf('//@ sourceMappingURL=', at));
    if (i < 0) return null;
    // It must start its line (a string literal containing it elsewhere is not the comment).
    const lineStart = text.lastIndexOf('\n', i) + 1;
    if (text.slice(lineStart, i).trim() === '') {
      let end = text.indexOf('\n', i);
      if (end < 0) end = text.length;
      const ref = text.slice(i + 21, end).trim();
      if (ref) return ref;
    }
    if (i === 0) return null;
    at = i - 1;
  }
}

function decodeDataUrl(ref: string): string | null {
  const comma = ref.indexOf(',');
  if (comma < 0) return null;
  const meta = ref.slice(5, comma);
  if (!/^application\/json/i.test(meta)) return null;
  const data = ref.slice(comma + 1);
  try {
    return /;base64$/i.test(meta) ? Buffer.from(data, 'base64').toString('utf8') : decodeURIComponent(data);
  } catch {
    return null;
  }
}

function resolveSource(source: string, base: string): string {
  try {
    return new URL(source, base).href;
  } catch {
    return source;
  }
}

/** A file: URL as a path (what `go tool pprof -list` opens); other URLs (webpack://) as they are. */
function displayPath(source: string): string {
  if (source.startsWith('file://')) {
    try { return fileURLToPath(source); } catch { return source; }
  }
  return source;
}

function countLines(text: string): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function countSegments(mappings: string): number {
  let n = 0;
  for (let i = 0; i < mappings.length; i++) {
    const c = mappings.charCodeAt(i);
    if (c === 44 /* , */ || c === 59 /* ; */) n++;
  }
  return n + 1;
}

function indexMaps(dirs: string[]): Map<string, string[]> {
  const index = new Map<string, string[]>();
  let count = 0;
  const walk = (dir: string, depth: number): void => {
    if (depth > 32 || count >= MAX_INDEXED_MAPS) return;
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.name.endsWith('.map') && count < MAX_INDEXED_MAPS) {
        count++;
        let list = index.get(e.name);
        if (!list) index.set(e.name, (list = []));
        list.push(p);
      }
    }
  };
  for (const d of dirs) walk(d, 0);
  return index;
}

let mapper: SourceMapper | null = null;

function current(): SourceMapper | null {
  if (!config.enabled) return null;
  return (mapper ??= new SourceMapper(config));
}

/**
 * Turns source mapping on or off (`SetSourceMaps(false)`), or sets some of its options
 * (the others keep their values). Applies to frames symbolized from now on; the cache
 * starts empty.
 */
export function SetSourceMaps(options: boolean | SourceMapOptions): void {
  const o: SourceMapOptions = typeof options === 'boolean' ? { enabled: options } : options;
  if (o === null || typeof o !== 'object') throw invalidOptions(`expected a boolean or an options object (got ${o === null ? 'null' : typeof o})`);
  if (o.enabled !== undefined && typeof o.enabled !== 'boolean') throw invalidOptions('enabled must be a boolean');
  if (o.searchDirs !== undefined && (!Array.isArray(o.searchDirs) || o.searchDirs.some((d) => typeof d !== 'string' || d === ''))) {
    throw invalidOptions('searchDirs must be an array of directory paths');
  }
  for (const k of ['cacheBytes', 'maxMapBytes'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)) throw invalidOptions(`${k} must be a positive integer`);
  }
  config = {
    enabled: o.enabled ?? config.enabled,
    searchDirs: o.searchDirs ? o.searchDirs.map((d) => path.resolve(d)) : config.searchDirs,
    cacheBytes: o.cacheBytes ?? config.cacheBytes,
    maxMapBytes: o.maxMapBytes ?? config.maxMapBytes,
  };
  mapper = null;
}

function invalidOptions(msg: string): TypeError {
  const e = new TypeError(`sigprof: SetSourceMaps: ${msg}`) as TypeError & { code: string };
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

/** Whether frames are being mapped, where the maps came from, and what they cost. */
export interface SourceMapStatsResult {
  enabled: boolean;
  /** Estimated bytes of the maps sigprof holds (bounded by cacheBytes). */
  cachedBytes: number;
  cacheBytes: number;
  /** Scripts mapped through Node's own source maps (--enable-source-maps). */
  nodeMaps: number;
  /** Maps sigprof read and parsed itself (a map evicted and read again counts again). */
  loadedMaps: number;
  searchDirs: string[];
}

export function SourceMapStats(): SourceMapStatsResult {
  return {
    enabled: config.enabled,
    cachedBytes: mapper?.cachedBytes ?? 0,
    cacheBytes: config.cacheBytes,
    nodeMaps: mapper?.nodeMaps ?? 0,
    loadedMaps: mapper?.loadedMaps ?? 0,
    searchDirs: [...config.searchDirs],
  };
}

/**
 * The original position of a generated one, or null (no map, a bad map, an unmapped
 * position, or mapping off). Never throws: a profile is written either way.
 */
export function lookupOriginal(url: string, line: number, column: number): OriginalPosition | null {
  const m = current();
  if (!m) return null;
  try {
    return m.lookup(url, line, column);
  } catch {
    return null;
  }
}
