/**
 * `sigprof top`: the flat/cum table of `go tool pprof -top`, computed the way pprof
 * computes it (same node identity, same cum de-duplication for recursion, same 0.5%
 * node cutoff and ordering), so numbers agree with pprof's on any profile.
 */
import * as path from 'node:path';
import type { LoadedProfile, LocationInfo, LineInfo } from './profile';
import { sampleIndex } from './profile';
import { scaledLabel, percentage, reportUnit, scale } from './units';

export type Granularity = 'functions' | 'lines';

export interface TopOptions {
  sampleIndex?: string;
  /** Rows to show; 0 = all. */
  nodeCount: number;
  granularity: Granularity;
  /** Order by cum instead of flat (pprof's -cum). */
  cum: boolean;
}

export interface TopRow {
  name: string;
  flat: number;
  cum: number;
  inline: '' | '(inline)' | '(partial-inline)';
}

export interface TopReport {
  labels: string[];
  rows: TopRow[];
  total: number;
  format: (v: number) => string;
}

/** pprof's defaults for text reports: nodes under 0.5% cum and edges under 0.1% are dropped. */
const NODE_FRACTION = 0.005;
const EDGE_FRACTION = 0.001;

interface GNode {
  key: string;
  name: string;
  flat: number;
  cum: number;
  /** Incoming edges by caller key → [weight, allInline]. */
  in: Map<string, { weight: number; inline: boolean }>;
}

function cleanFile(file: string): string {
  // Go cleans paths with filepath.Clean; URLs (file://, node:) are left alone because
  // cleaning would fold their "//" and make them unrecognisable.
  if (file === '' || file.includes('://') || /^[a-z]+:/.test(file)) return file;
  const n = path.posix.normalize(file);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * Node identity. pprof's default merges by name alone, which in JavaScript would fold
 * every "(anonymous)" of a program into one row; functions here are keyed like V8 keys
 * them (name, file, first line) and shown as `name file:firstLine`.
 */
function nodeIdentity(line: LineInfo, loc: LocationInfo, g: Granularity): { key: string; name: string } {
  if (!line.hasFunction) {
    const name = loc.mappingFile ? `[${path.basename(loc.mappingFile)}]` : '<unknown>';
    return { key: `\0obj\0${loc.mappingFile}`, name };
  }
  const file = cleanFile(line.file);
  const parts: string[] = [];
  if (line.name) parts.push(line.name);
  let key: string;
  if (g === 'lines') {
    key = `${line.name}\0${file}\0${line.line}`;
    if (line.line !== 0) parts.push(`${file}:${line.line}`);
    else if (file) parts.push(file);
  } else {
    key = `${line.name}\0${file}\0${line.startLine}`;
    if (file) parts.push(line.startLine ? `${file}:${line.startLine}` : file);
  }
  if (parts.length === 0) parts.push(loc.mappingFile ? `[${path.basename(loc.mappingFile)}]` : '<unknown>');
  return { key, name: parts.join(' ') };
}

function buildGraph(p: LoadedProfile, idx: number, g: Granularity, kept?: Set<string>): GNode[] {
  const nodes = new Map<string, GNode>();
  const perLocation = new Map<LocationInfo, (GNode | null)[]>();
  const nodesOf = (loc: LocationInfo): (GNode | null)[] => {
    let ns = perLocation.get(loc);
    if (ns) return ns;
    const lines = loc.lines.length ? loc.lines : [{ name: '', systemName: '', file: '', startLine: 0, line: 0, hasFunction: false }];
    ns = lines.map((line) => {
      const id = nodeIdentity(line, loc, g);
      if (kept && !kept.has(id.key)) return null;
      let n = nodes.get(id.key);
      if (!n) {
        n = { key: id.key, name: id.name, flat: 0, cum: 0, in: new Map() };
        nodes.set(id.key, n);
      }
      return n;
    });
    perLocation.set(loc, ns);
    return ns;
  };
  for (const s of p.samples) {
    const w = s.values[idx];
    if (w === 0) continue;
    const seen = new Set<GNode>();
    const seenEdge = new Set<string>();
    let parent: GNode | null = null;
    // Set when frames between two kept nodes were dropped; a dropped leaf gets no flat.
    let residual = false;
    for (let i = s.locations.length - 1; i >= 0; i--) {
      const ns = nodesOf(s.locations[i]);
      for (let j = ns.length - 1; j >= 0; j--) {
        const n = ns[j];
        if (!n) {
          residual = true;
          continue;
        }
        // Recursion must not count a function's cum twice for one sample.
        if (!seen.has(n)) {
          seen.add(n);
          n.cum += w;
        }
        if (parent && parent !== n) {
          const ek = `${parent.key}\n${n.key}`;
          if (!seenEdge.has(ek)) {
            seenEdge.add(ek);
            const inline = j !== ns.length - 1;
            const e = n.in.get(parent.key);
            if (e) {
              e.weight += w;
              if (!inline) e.inline = false;
            } else {
              n.in.set(parent.key, { weight: w, inline });
            }
          }
        }
        parent = n;
        residual = false;
      }
    }
    if (parent && !residual) parent.flat += w;
  }
  return [...nodes.values()].filter((n) => n.cum !== 0 || n.flat !== 0);
}

function sortNodes(nodes: GNode[], byCum: boolean): void {
  const cmpStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  nodes.sort((l, r) => {
    const [a1, b1] = byCum ? [Math.abs(l.cum), Math.abs(r.cum)] : [Math.abs(l.flat), Math.abs(r.flat)];
    if (a1 !== b1) return b1 - a1;
    const c = cmpStr(l.name, r.name);
    if (c) return c;
    const [a2, b2] = byCum ? [Math.abs(l.flat), Math.abs(r.flat)] : [Math.abs(l.cum), Math.abs(r.cum)];
    if (a2 !== b2) return b2 - a2;
    return cmpStr(l.key, r.key);
  });
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Go's "Jan 2, 2006 at 3:04pm (MST)" in local time. */
function formatTime(nanos: number): string {
  const d = new Date(Math.floor(nanos / 1e6));
  const h = d.getHours();
  const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '';
  return `${MONTHS[d.getMonth()]} ${d.getDate()}, ${d.getFullYear()} at ${h % 12 === 0 ? 12 : h % 12}:${String(d.getMinutes()).padStart(2, '0')}${h < 12 ? 'am' : 'pm'} (${zone})`;
}

export function topReport(p: LoadedProfile, opts: TopOptions): TopReport {
  const idx = sampleIndex(p, opts.sampleIndex);
  const st = p.sampleTypes[idx];
  const unit = st.unit;
  let total = 0;
  for (const s of p.samples) total += Math.abs(s.values[idx]);

  let nodes = buildGraph(p, idx, opts.granularity);
  const flatTotal = nodes.reduce((a, n) => a + n.flat, 0);
  const nodeCutoff = Math.abs(Math.trunc(flatTotal * NODE_FRACTION));
  const edgeCutoff = Math.abs(Math.trunc(flatTotal * EDGE_FRACTION));
  let dropped = 0;
  if (nodeCutoff > 0) {
    const kept = new Set(nodes.filter((n) => Math.abs(n.cum) >= nodeCutoff).map((n) => n.key));
    if (kept.size !== nodes.length) {
      dropped = nodes.length - kept.size;
      nodes = buildGraph(p, idx, opts.granularity, kept);
    }
  }
  const origCount = nodes.length;
  sortNodes(nodes, opts.cum);
  if (opts.nodeCount > 0 && nodes.length > opts.nodeCount) {
    const kept = new Set(nodes.slice(0, opts.nodeCount).map((n) => n.key));
    nodes = buildGraph(p, idx, opts.granularity, kept);
    sortNodes(nodes, opts.cum);
  }

  let minValue = 0;
  for (const n of nodes) {
    const v = Math.abs(n.flat) || Math.abs(n.cum);
    if (v > 0 && (minValue === 0 || v < minValue)) minValue = v;
  }
  const outUnit = nodes.length ? reportUnit(minValue, total, unit) : 'minimum';
  const format = (v: number) => scaledLabel(v, unit, outUnit);

  const labels: string[] = [];
  if (p.mainFile) labels.push(`File: ${path.basename(p.mainFile)}`);
  if (p.buildId) labels.push(`Build ID: ${p.buildId}`);
  for (const c of p.comments) if (!c.startsWith('#')) labels.push(c);
  labels.push(`Type: ${st.type}`);
  if (p.timeNanos) labels.push(`Time: ${formatTime(p.timeNanos)}`);
  if (p.durationNanos) {
    const [totalNanos, u] = scale(total, unit, 'nanoseconds');
    const ratio = u === 'ns' && totalNanos !== 0 ? `(${percentage(Math.trunc(totalNanos), p.durationNanos)})` : '';
    labels.push(`Duration: ${scaledLabel(p.durationNanos, 'nanoseconds', 'auto')}, Total samples = ${format(total)} ${ratio}`);
  }
  const shown = nodes.reduce((a, n) => a + n.flat, 0);
  labels.push(`Showing nodes accounting for ${format(shown)}, ${percentage(shown, total).trim()} of ${format(total)} total`);
  if (total !== 0) {
    if (dropped > 0) {
      labels.push(`Dropped ${dropped} node${dropped > 1 ? 's' : ''} (cum <= ${format(Math.abs(Math.trunc(total * NODE_FRACTION)))})`);
    }
    if (nodes.length > 0 && nodes.length < origCount) labels.push(`Showing top ${nodes.length} nodes out of ${origCount}`);
  }

  const rows: TopRow[] = nodes.map((n) => {
    let inl = false;
    let noinl = false;
    for (const e of n.in.values()) {
      if (Math.abs(e.weight) < edgeCutoff) continue;
      if (e.inline) inl = true; else noinl = true;
    }
    return { name: n.name, flat: n.flat, cum: n.cum, inline: inl ? (noinl ? '(partial-inline)' : '(inline)') : '' };
  });
  return { labels, rows, total, format };
}

export function renderTop(r: TopReport): string {
  const out: string[] = [...r.labels];
  out.push(`${'flat'.padStart(10)} ${'flat'.padStart(5)}% ${'sum'.padStart(5)}% ${'cum'.padStart(10)} ${'cum'.padStart(5)}%`);
  let sum = 0;
  for (const row of r.rows) {
    sum += row.flat;
    out.push(`${r.format(row.flat).padStart(10)} ${percentage(row.flat, r.total)} ${percentage(sum, r.total)} ${r.format(row.cum).padStart(10)} ${percentage(row.cum, r.total)}  ${row.name}${row.inline ? ` ${row.inline}` : ''}`);
  }
  return out.join('\n') + '\n';
}
