/**
 * Turns the addon's (function id, source position) pairs into Frames. Function metadata
 * is fetched from the addon for the ids samples name, in batches (a large application
 * has tens of thousands of compiled functions; fetching them all at the first pull would
 * stall the event loop); positions become lines in per-script batches (the addon needs
 * the JS thread for that). Both are cached for the life of the process. Every frame
 * leaves through mapFrame (sourcemaps.ts): the one place generated positions become
 * original ones.
 */
import { native } from './native';
import type { Frame, MappingSpec } from './pprof-builder';
import { lookupOriginal, type OriginalPosition } from './sourcemaps';

export const enum FunctionKind { Unknown = 0, Js = 1, Builtin = 2, Native = 3, RegExp = 4, Other = 5 }

export interface FunctionMeta {
  name: string;
  file: string;
  /** The script's name as V8 reports it (a path, or a file:// URL for ESM). */
  url: string;
  scriptId: number;
  line: number;
  column: number;
  kind: FunctionKind;
  /** Native code: the symbol's address (the sampled address when unnamed), and its object. */
  address: number;
  mapping: number;
}

const UNKNOWN: FunctionMeta = { name: '(unknown)', file: '', url: '', scriptId: -1, line: 0, column: 0, kind: FunctionKind.Unknown, address: 0, mapping: 0 };
/** What the addon calls native code no symbol of its object covers. */
const UNNAMED_NATIVE = '(native code)';

function displayFile(url: string, kind: FunctionKind): string {
  if (kind === FunctionKind.Builtin) return '(v8 builtin)';
  // pprof's source listing wants paths; ESM reports file:// URLs.
  if (url.startsWith('file://')) {
    try { return decodeURIComponent(new URL(url).pathname); } catch { return url; }
  }
  return url;
}

/** Flat [name, url, scriptId, line, column, kind, address, mapping] per id, as the addon's functionsById. */
export type FunctionSource = (ids: Uint32Array) => Array<string | number>;

export class Symbolizer {
  private readonly fns = new Map<number, FunctionMeta>([[0, UNKNOWN]]);
  /** Per script: position → line * 2^32 + column (both 1-based, 0 unknown). */
  private readonly lines = new Map<number, Map<number, number>>();

  /**
   * `source`: where function metadata comes from; this thread's code map by default. A
   * Worker's samples come with their own (lib/workers.ts), already carrying their lines.
   */
  constructor(private readonly source: FunctionSource = (ids) => native().functionsById(ids)) {}

  private fetch(ids: number[]): void {
    const flat = this.source(Uint32Array.from(ids));
    for (let k = 0, i = 0; k < ids.length; k++, i += 8) {
      const kind = flat[i + 5] as FunctionKind;
      this.fns.set(ids[k], {
        name: flat[i] as string,
        file: displayFile(flat[i + 1] as string, kind),
        url: kind === FunctionKind.Js ? flat[i + 1] as string : '',
        scriptId: flat[i + 2] as number,
        line: flat[i + 3] as number,
        column: flat[i + 4] as number,
        kind,
        address: flat[i + 6] as number,
        mapping: flat[i + 7] as number,
      });
    }
  }

  private readonly mappings = new Map<number, MappingSpec>();

  private mappingOf(id: number): MappingSpec | undefined {
    if (id === 0) return undefined;
    if (!this.mappings.has(id)) {
      const flat = native().nativeMappings();
      for (let i = 0; i < flat.length; i += 6) {
        this.mappings.set(flat[i] as number, {
          id: flat[i] as number, file: flat[i + 1] as string, buildId: flat[i + 2] as string,
          start: flat[i + 3] as number, limit: flat[i + 4] as number, offset: flat[i + 5] as number,
        });
      }
    }
    return this.mappings.get(id);
  }

  fn(id: number): FunctionMeta {
    let f = this.fns.get(id);
    if (!f) {
      this.fetch([id]);
      f = this.fns.get(id) ?? UNKNOWN;
    }
    return f;
  }

  /** Resolves the lines of every (fn, pos) pair in `pairs` (flat) in one batch per script. */
  prepare(pairs: ArrayLike<number>): void {
    const missing = new Set<number>();
    for (let i = 0; i < pairs.length; i += 2) if (!this.fns.has(pairs[i])) missing.add(pairs[i]);
    if (missing.size > 0) this.fetch([...missing]);
    const want = new Map<number, Set<number>>();
    for (let i = 0; i < pairs.length; i += 2) {
      const pos = pairs[i + 1] | 0;
      if (pos < 0) continue;
      const f = this.fn(pairs[i]);
      if (f.scriptId < 0) continue;
      const cached = this.lines.get(f.scriptId);
      if (cached?.has(pos)) continue;
      let set = want.get(f.scriptId);
      if (!set) want.set(f.scriptId, (set = new Set()));
      set.add(pos);
    }
    for (const [scriptId, set] of want) {
      const positions = Int32Array.from(set);
      const lines = native().positionsToLines(scriptId, positions);
      let cache = this.lines.get(scriptId);
      if (!cache) this.lines.set(scriptId, (cache = new Map()));
      for (let i = 0; i < positions.length; i++) cache.set(positions[i], lines[2 * i] * 2 ** 32 + lines[2 * i + 1]);
    }
  }

  /**
   * `pos` is a source position (>= 0), unknown (-1), or a line and column already known,
   * packed by the addon into a word <= -2 (stacks captured through V8's StackTrace API).
   * Call prepare() first for best lines; without it the function's first line is used.
   */
  frame(fnId: number, pos: number): Frame {
    const f = this.fn(fnId);
    let line = f.line;
    let column = 0;
    if (pos <= -2) {
      const v = -pos - 2;
      const mode = v >>> 29;
      if (mode === 1) { line = (v >>> 10) & 0x7ffff; column = v & 0x3ff; }
      else if (mode === 2) { line = (v >>> 22) & 0x7f; column = v & 0x3fffff; }
      else line = v;
    } else if (pos >= 0 && f.scriptId >= 0) {
      const lc = this.lines.get(f.scriptId)?.get(pos);
      if (lc !== undefined && lc >= 2 ** 32) {
        line = Math.floor(lc / 2 ** 32);
        column = lc % 2 ** 32;
      }
    }
    if (f.kind === FunctionKind.Native) {
      // pprof's shape for native code: the address in its object's Mapping; a frame no
      // symbol names has no Line, so that `go tool pprof` symbolizes it from the file.
      const mapping = this.mappingOf(f.mapping);
      return { name: f.name, file: f.file, line: 0, address: f.address, mapping, noLine: f.name === UNNAMED_NATIVE && mapping !== undefined };
    }
    const frame: Frame = { name: f.name, file: f.file, line, startLine: f.line };
    return f.url ? mapFrame(f.url, frame, column, f.column) : frame;
  }
}

/**
 * The original of a generated frame where its script has a source map, else the frame.
 * `column`: 1-based column of `frame.line` (0 unknown); `startColumn` that of the
 * function's first line. The name comes from the map at the function's start (V8's start
 * is just after the name, so the entry found there is the name's; a call site's would be
 * the callee's), the file and line from the executing position.
 */
export function mapFrame(url: string, frame: Frame, column: number, startColumn: number): Frame {
  const at = lookupOriginal(url, frame.line, column);
  if (!at && !frame.startLine) return frame;
  const start: OriginalPosition | null = frame.startLine
    ? (frame.startLine === frame.line && startColumn === column && at ? at : lookupOriginal(url, frame.startLine, startColumn))
    : null;
  const loc = at ?? start;
  if (!loc) return frame;
  // Only a named function takes the map's name: for an anonymous one the entry before its
  // start is whatever precedes it (a callee's name in `g((x) => …)`), not its own name.
  const named = frame.name !== '' && frame.name !== '(anonymous)';
  const out: Frame = {
    name: (named && start?.name) || frame.name,
    file: loc.file,
    // Line 0 is "no line" (Sparkplug and Maglev code have no positions): mapping the
    // function's start would state its first original line, where nothing runs.
    line: frame.line === 0 ? 0 : loc.line,
    startLine: start && start.file === loc.file ? start.line : 0,
  };
  if (frame.column) out.column = loc.column;
  return out;
}

let shared: Symbolizer | undefined;
export function symbolizer(): Symbolizer {
  return (shared ??= new Symbolizer());
}
