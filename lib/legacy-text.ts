/**
 * Go's legacy text profile formats (WriteTo debug=1), shared by every profile that has
 * stacks: count profiles (custom, handles, threadcreate), contention profiles (eventloop,
 * block, mutex) and the heap profile (which writes its own header and record prefixes and
 * reuses `LegacyText.record`).
 *
 * JS frames have no program counters, so each output invents addresses: one synthetic
 * "entry" per function and one address per (function, line, column) inside it. They are
 * stable within one output (equal frames, equal addresses), which is all the `@ 0x...`
 * lines promise a reader: that two records share a frame.
 */
import type { Frame } from './pprof-builder';

/** Go renders a PC with %#x. */
export function hex(n: number): string {
  return '0x' + n.toString(16);
}

function runeLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Aligns tab-separated cells the way Go's text/tabwriter does with
 * NewWriter(w, 1, 8, 1, '\t', 0), which is how runtime/pprof writes debug=1 output: a
 * "column block" is a run of consecutive lines that all have a tab-terminated cell in that
 * column; each block is padded with tabs to its widest cell plus one. Matching it keeps
 * our text diffable against Go's and readable in the same terminals.
 */
export function tabAlign(lines: string[]): string {
  const MIN_WIDTH = 1, TAB_WIDTH = 8, PADDING = 1;
  const cells = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  let out = '';

  const emit = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const row = cells[i];
      for (let j = 0; j < row.length; j++) {
        out += row[j];
        if (j < widths.length) {
          const textw = runeLength(row[j]);
          const cellw = Math.ceil(widths[j] / TAB_WIDTH) * TAB_WIDTH;
          out += '\t'.repeat(Math.ceil((cellw - textw) / TAB_WIDTH));
        }
      }
      out += '\n';
    }
  };

  const format = (line0: number, line1: number) => {
    const column = widths.length;
    let t = line0;
    while (t < line1) {
      if (column >= cells[t].length - 1) { t++; continue; }
      emit(line0, t);
      line0 = t;
      let width = MIN_WIDTH;
      while (t < line1 && column < cells[t].length - 1) {
        width = Math.max(width, runeLength(cells[t][column]) + PADDING);
        t++;
      }
      widths.push(width);
      format(line0, t);
      widths.pop();
      line0 = t;
    }
    emit(line0, line1);
  };

  format(0, cells.length);
  return out;
}

/** Synthetic addresses for one output. */
export class SyntheticAddresses {
  private readonly entries = new Map<string, { entry: number; next: number }>();
  private readonly addrs = new Map<string, number>();

  private static fnKey(f: Frame): string {
    return `${f.name}\0${f.file}\0${f.startLine ?? 0}`;
  }

  /** The invented entry address of the frame's function. */
  entry(f: Frame): number {
    const key = SyntheticAddresses.fnKey(f);
    let e = this.entries.get(key);
    if (!e) {
      // 64 KiB per function leaves room for 4095 distinct locations before two functions
      // could overlap; beyond that the offsets keep growing, still unique per output.
      e = { entry: 0x400000 + this.entries.size * 0x10000, next: 1 };
      this.entries.set(key, e);
    }
    return e.entry;
  }

  address(f: Frame): number {
    const key = `${SyntheticAddresses.fnKey(f)}\0${f.line}\0${f.column ?? 0}`;
    let a = this.addrs.get(key);
    if (a === undefined) {
      this.entry(f);
      const e = this.entries.get(SyntheticAddresses.fnKey(f))!;
      a = e.entry + e.next * 0x10;
      e.next++;
      this.addrs.set(key, a);
    }
    return a;
  }
}

/** Go's labelMap.String(): sorted `"key":"value"` pairs in braces. */
export function formatLabels(labels: Record<string, string>): string {
  const kv = Object.keys(labels).map((k) => `${JSON.stringify(k)}:${JSON.stringify(labels[k])}`).sort();
  return '{' + kv.join(', ') + '}';
}

/**
 * Accumulates one legacy text output. Header lines go in with `line`; each stack with
 * `record(prefix, frames)`, which writes `PREFIX @ 0x... 0x...`, optional `# labels:`,
 * one `#\t0xaddr\tfunction+0xoff\tfile:line` line per frame and the blank separator line
 * (runtime/pprof's printStackRecord).
 */
export class LegacyText {
  readonly addrs = new SyntheticAddresses();
  private readonly lines: string[] = [];

  line(text: string): void {
    this.lines.push(text);
  }

  /** The ` @ 0x... 0x...` list for `frames` (leaf first), as Go puts after a record's values. */
  addressList(frames: Frame[]): string {
    let s = ' @';
    for (const f of frames) s += ' ' + hex(this.addrs.address(f));
    return s;
  }

  /** The `#\t...` lines for `frames`, leaf first, without the trailing blank line. */
  frameLines(frames: Frame[]): string[] {
    return frames.map((f) => {
      const addr = this.addrs.address(f);
      const off = addr - this.addrs.entry(f);
      return `#\t${hex(addr)}\t${f.name || '(anonymous)'}+${hex(off)}\t${f.file}:${f.line}`;
    });
  }

  record(prefix: string, frames: Frame[], labels?: Record<string, string>): void {
    this.lines.push(prefix + this.addressList(frames));
    if (labels && Object.keys(labels).length > 0) this.lines.push('# labels: ' + formatLabels(labels));
    for (const l of this.frameLines(frames)) this.lines.push(l);
    this.lines.push('');
  }

  toString(): string {
    return tabAlign(this.lines);
  }
}

export interface CountRecord {
  frames: Frame[];
  count: number;
  labels?: Record<string, string>;
}

/**
 * Orders count records like Go's keysByCount (most first), breaking ties on the symbolic
 * stack so equal inputs give byte-equal outputs.
 */
export function sortCountRecords<T extends CountRecord>(records: T[]): T[] {
  const keyOf = (r: CountRecord) => r.frames.map((f) => `${f.name} ${f.file}:${f.line}:${f.column ?? 0}`).join('\n') +
    (r.labels ? '\n#' + formatLabels(r.labels) : '');
  const keyed = records.map((r) => ({ r, k: keyOf(r) }));
  keyed.sort((a, b) => (b.r.count - a.r.count) || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.r);
}

/** `NAME profile: total N` then `COUNT @ addrs` + frames per record (Go's printCountProfile, debug>0). */
export function formatCountProfile(name: string, records: CountRecord[]): string {
  const t = new LegacyText();
  const total = records.reduce((s, r) => s + r.count, 0);
  t.line(`${name} profile: total ${total}`);
  for (const r of sortCountRecords(records)) t.record(String(r.count), r.frames, r.labels);
  return t.toString();
}

export interface ContentionRecord {
  frames: Frame[];
  count: number;
  /** Total delay in nanoseconds. */
  delayNs: number;
}

/**
 * Go's block/mutex text (writeProfileInternal, debug>0): `--- HEADER:`, attributes, then
 * `CYCLES COUNT @ addrs` per record, most delay first. sigprof measures nanoseconds, so it
 * states cycles/second=1000000000 and the cycle column is exact nanoseconds.
 */
export function formatContentionProfile(header: string, records: ContentionRecord[], attributes: string[] = []): string {
  const t = new LegacyText();
  t.line(`--- ${header}:`);
  t.line('cycles/second=1000000000');
  for (const a of attributes) t.line(a);
  const sorted = [...records].sort((a, b) => b.delayNs - a.delayNs);
  for (const r of sorted) t.record(`${Math.round(r.delayNs)} ${r.count}`, r.frames);
  return t.toString();
}
