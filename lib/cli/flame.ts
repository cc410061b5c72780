/**
 * `sigprof flame`: one HTML file that shows a profile as an interactive flame graph and
 * needs no network to view (profiles get mailed around and opened on air-gapped hosts),
 * so d3, d3-flame-graph and the profile are all inlined. Their code comes from
 * dist/flame-assets.json, bundled at build/pack time (scripts/bundle-flame.js), so the
 * installed package depends on neither.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, flagString, UsageError, CliError } from './args';
import { parseSize, loadProfileFile, sampleIndex, type LoadedProfile } from './profile';

export const FLAME_HELP = `usage: sigprof flame FILE -o OUT.html [flags]

Writes a self-contained interactive flame graph of a pprof profile: click a frame to
zoom, type in the search box to highlight matching functions, hover for values and
file:line. Every sample type of the profile can be chosen in the page.

Flags:
  -o, --output OUT.html   file to write (required)
  --sample-index X        sample type shown first, by name or index
                          (default: the profile's default_sample_type, else the last)
  --title TEXT            page title (default: the profile file's name)
  --max-size SIZE         read at most SIZE bytes once decompressed (default 256M;
                          k, M, G suffixes): a guard against gzip bombs, endless input
  -h, --help              show this help

Example:
  sigprof flame cpu.pb.gz -o flame.html
`;

/** Compact keys: a CPU profile of a large app has tens of thousands of nodes. */
export interface FlameNode {
  /** function name */
  n: string;
  /** file */
  f: string;
  /** first line of the function, else the first line seen */
  l: number;
  /** one value per sample type, including children */
  v: number[];
  c?: FlameNode[];
}

/** Merges stacks into a call tree, frames identified by function name + file. */
export function profileToTree(p: LoadedProfile, rootName = 'root'): FlameNode {
  const width = p.sampleTypes.length;
  const root: FlameNode = { n: rootName, f: '', l: 0, v: new Array(width).fill(0) };
  const index = new Map<FlameNode, Map<string, FlameNode>>();
  const child = (parent: FlameNode, name: string, file: string, line: number): FlameNode => {
    let m = index.get(parent);
    if (!m) index.set(parent, (m = new Map()));
    const key = `${name}\0${file}`;
    let c = m.get(key);
    if (!c) {
      c = { n: name, f: file, l: line, v: new Array(width).fill(0) };
      (parent.c ??= []).push(c);
      m.set(key, c);
    }
    return c;
  };
  for (const s of p.samples) {
    if (s.values.every((v) => v === 0)) continue;
    let node = root;
    add(root.v, s.values);
    for (let i = s.locations.length - 1; i >= 0; i--) {
      const loc = s.locations[i];
      if (loc.lines.length === 0) {
        const name = loc.address ? `0x${loc.address.toString(16)}` : '<unknown>';
        node = child(node, name, loc.mappingFile, 0);
        add(node.v, s.values);
        continue;
      }
      // Inlined frames are real frames to the reader; outermost (caller) last in the proto.
      for (let j = loc.lines.length - 1; j >= 0; j--) {
        const ln = loc.lines[j];
        node = child(node, ln.name || '<unknown>', ln.file, ln.startLine || ln.line);
        add(node.v, s.values);
      }
    }
  }
  return root;
}

function add(into: number[], values: number[]): void {
  for (let i = 0; i < into.length; i++) into[i] += values[i];
}

interface FlameAssets {
  d3: { version: string; js: string; license: string };
  flameGraph: { version: string; js: string; css: string; license: string };
}

let assets: FlameAssets | undefined;
function flameAssets(): FlameAssets {
  if (assets) return assets;
  const file = path.join(__dirname, '..', 'flame-assets.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`sigprof flame: ${file} is missing; in a clone of the repository, \`npm run build:js\` creates it`);
  }
  return (assets = JSON.parse(text) as FlameAssets);
}

/** A licence inside a JS comment: it must not close the comment. */
function licenseComment(name: string, text: string): string {
  return `/*! ${name}\n${text.replace(/\*\//g, '* /')}\n*/`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Text inside <script> must not close the element or open an HTML comment. */
function scriptSafe(js: string): string {
  return js.replace(/<\/script/gi, '<\\/script').replace(/<!--/g, '<\\!--');
}

export interface FlameHtmlOptions {
  title: string;
  selectedIndex: number;
}

export function flameHtml(p: LoadedProfile, opts: FlameHtmlOptions): string {
  const a = flameAssets();
  const d3 = `${licenseComment(`d3 ${a.d3.version}`, a.d3.license)}\n${a.d3.js}`;
  const fg = `${licenseComment(`d3-flame-graph ${a.flameGraph.version}`, a.flameGraph.license)}\n${a.flameGraph.js}`;
  const css = a.flameGraph.css;
  const payload = {
    title: opts.title,
    sampleTypes: p.sampleTypes,
    selected: opts.selectedIndex,
    durationNanos: p.durationNanos,
    tree: profileToTree(p),
  };
  // JSON inside <script type=application/json>: only "<" can end the element early.
  const json = JSON.stringify(payload).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="sigprof flame">
<title>${escapeHtml(opts.title)}</title>
<style>${css.replace(/<\/style/gi, '<\\/style')}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
  <h1 id="title">${escapeHtml(opts.title)}</h1>
  <div class="controls">
    <label>Sample <select id="sample-type"></select></label>
    <input id="search" type="search" placeholder="Search functions or files" autocomplete="off">
    <button id="clear" type="button">Clear</button>
    <button id="reset" type="button">Reset zoom</button>
  </div>
  <div id="details" aria-live="polite"></div>
</header>
<div id="chart"></div>
<script id="profile-data" type="application/json">${json}</script>
<script>${scriptSafe(d3)}</script>
<script>${scriptSafe(fg)}</script>
<script>${scriptSafe(PAGE_JS)}</script>
</body>
</html>
`;
}

const PAGE_CSS = `
body { font-family: Verdana, sans-serif; margin: 12px; color: #222; }
header h1 { font-size: 18px; margin: 0 0 8px; }
.controls { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
#search { width: 320px; padding: 3px 6px; }
#details { min-height: 1.4em; margin: 6px 0; font-size: 13px; color: #444; white-space: pre; }
.d3-flame-graph-tip { white-space: pre; font-size: 12px; line-height: 1.4; }
`;

/** Runs in the browser: plain ES2017, no modules, reads the inlined data. */
const PAGE_JS = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('profile-data').textContent);
  var flamegraph = window.flamegraph;
  var select = document.getElementById('sample-type');
  var search = document.getElementById('search');
  var details = document.getElementById('details');
  var chart = null;
  var current = data.selected;
  // Shown again in the details line when the pointer leaves a frame.
  var searchText = '';

  var TIME = [['ns', 1], ['us', 1e3], ['ms', 1e6], ['s', 1e9], ['hrs', 3600e9]];
  var BYTES = [['B', 1], ['kB', 1024], ['MB', 1048576], ['GB', 1073741824], ['TB', 1099511627776]];
  var TIME_UNITS = { nanosecond: 1, nanoseconds: 1, ns: 1, microsecond: 1e3, microseconds: 1e3, us: 1e3,
    millisecond: 1e6, milliseconds: 1e6, ms: 1e6, second: 1e9, seconds: 1e9, s: 1e9 };
  var BYTE_UNITS = { byte: 1, bytes: 1, b: 1, kilobyte: 1024, kilobytes: 1024, kb: 1024,
    megabyte: 1048576, megabytes: 1048576, mb: 1048576 };

  function pick(scale, base) {
    var best = scale[0];
    for (var i = 0; i < scale.length; i++) if (base / scale[i][1] >= 1) best = scale[i];
    var v = base / best[1];
    return (Math.round(v * 100) / 100) + best[0];
  }
  function fmt(v, unit) {
    var u = String(unit || '').toLowerCase();
    if (v === 0) return '0';
    if (TIME_UNITS[u]) return pick(TIME, v * TIME_UNITS[u]);
    if (BYTE_UNITS[u]) return pick(BYTES, v * BYTE_UNITS[u]);
    var s = v.toLocaleString('en-US');
    return (u === '' || u === 'count' || u === 'sample' || u === 'samples') ? s : s + ' ' + unit;
  }
  function pct(v, total) { return total ? (100 * v / total).toFixed(2) + '%' : '0%'; }

  /** d3-flame-graph's input: {name, value, children}; zero-valued frames are left out. */
  function materialize(node, idx) {
    var out = { name: node.n, value: node.v[idx], file: node.f, line: node.l, children: [] };
    if (node.c) {
      for (var i = 0; i < node.c.length; i++) {
        if (node.c[i].v[idx] !== 0) out.children.push(materialize(node.c[i], idx));
      }
    }
    return out;
  }
  function self(d) {
    var s = d.data.value;
    var c = d.data.children || [];
    for (var i = 0; i < c.length; i++) s -= c[i].value;
    return s;
  }
  function where(d) {
    if (!d.data.file) return '';
    return d.data.file + (d.data.line ? ':' + d.data.line : '');
  }

  function render() {
    var st = data.sampleTypes[current];
    var tree = materialize(data.tree, current);
    var total = tree.value;
    tree.name = 'root (' + st.type + ')';
    var container = document.getElementById('chart');
    if (chart && chart.destroy) chart.destroy();
    container.innerHTML = '';
    var tip = flamegraph.tooltip.defaultFlamegraphTooltip().text(function (d) {
      var lines = [d.data.name];
      var w = where(d);
      if (w) lines.push(w);
      lines.push(st.type + ': ' + fmt(d.data.value, st.unit) + ' (' + pct(d.data.value, total) + ')');
      lines.push('self: ' + fmt(self(d), st.unit) + ' (' + pct(self(d), total) + ')');
      return lines.join('\n');
    });
    chart = flamegraph.default()
      .width(Math.max(400, container.clientWidth || window.innerWidth - 24))
      .cellHeight(18)
      .transitionDuration(300)
      .minFrameSize(1)
      .sort(true)
      .title('')
      .tooltip(tip)
      .setDetailsElement(details)
      .setLabelHandler(function (d) {
        var w = where(d);
        return d.data.name + (w ? '  ' + w : '') + '\n' + fmt(d.data.value, st.unit) + ' (' + pct(d.data.value, total) + ')';
      })
      // Plain substring match: the library's default treats the input as a RegExp, and a
      // stray "(" from a pasted "(anonymous)" would throw.
      .setSearchMatch(function (d, term) {
        if (!term) return false;
        var t = term.toLowerCase();
        return String(d.data.name).toLowerCase().indexOf(t) >= 0 ||
          String(d.data.file || '').toLowerCase().indexOf(t) >= 0;
      })
      .setSearchHandler(function (results, sum, totalValue) {
        searchText = results.length + ' matching frame' + (results.length === 1 ? '' : 's') + ': ' +
          fmt(sum, st.unit) + ' of ' + fmt(totalValue, st.unit) + ' (' + pct(sum, totalValue) + ')';
        details.textContent = searchText;
      })
      .setDetailsHandler(function (text) { details.textContent = text || searchText; });
    d3.select('#chart').datum(tree).call(chart);
    if (search.value) chart.search(search.value);
    document.body.setAttribute('data-rendered', String(current));
  }

  data.sampleTypes.forEach(function (t, i) {
    var o = document.createElement('option');
    o.value = String(i);
    o.textContent = t.type + (t.unit ? ' (' + t.unit + ')' : '');
    select.appendChild(o);
  });
  select.value = String(current);
  select.addEventListener('change', function () { current = Number(select.value); render(); });
  function clearSearch() { searchText = ''; chart.clear(); details.textContent = ''; }
  search.addEventListener('input', function () {
    if (search.value) chart.search(search.value);
    else clearSearch();
  });
  document.getElementById('clear').addEventListener('click', function () {
    search.value = '';
    clearSearch();
  });
  document.getElementById('reset').addEventListener('click', function () { chart.resetZoom(); });
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 200);
  });
  render();
})();
`;

export async function flameCommand(argv: string[]): Promise<number> {
  const p = parseArgs('flame', argv, [
    { name: 'output', aliases: ['-o'], value: true },
    { name: 'sample-index', aliases: ['--sample_index', '-sample_index'], value: true },
    { name: 'title', value: true },
    { name: 'max-size', value: true },
    { name: 'help', aliases: ['-h'] },
  ]);
  if (p.flags.has('help')) {
    process.stdout.write(FLAME_HELP);
    return 0;
  }
  if (p.rest) throw new UsageError('sigprof flame: unexpected "--"');
  if (p.positionals.length !== 1) {
    throw new UsageError(p.positionals.length === 0 ? 'sigprof flame: missing profile FILE (see sigprof flame --help)' : `sigprof flame: expected one FILE, got ${p.positionals.length}`);
  }
  const out = flagString(p, 'output');
  if (!out) throw new UsageError('sigprof flame: missing -o OUT.html (see sigprof flame --help)');
  const file = p.positionals[0];
  const maxSizeFlag = flagString(p, 'max-size');
  const prof = await loadProfileFile(file, maxSizeFlag === undefined ? undefined : parseSize('flame', 'max-size', maxSizeFlag));
  const idx = sampleIndex(prof, flagString(p, 'sample-index'));
  const html = flameHtml(prof, { title: flagString(p, 'title') ?? `${path.basename(file)} — sigprof flame graph`, selectedIndex: idx });
  try {
    fs.writeFileSync(out, html);
  } catch (e) {
    throw new CliError(`sigprof flame: cannot write ${out}: ${(e as Error).message}`);
  }
  process.stderr.write(`sigprof flame: wrote ${out} (${prof.samples.length} samples, ${Math.round(html.length / 1024)} kB)\n`);
  return 0;
}
