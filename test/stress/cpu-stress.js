'use strict';
// CPU profiler stress: profiles a hostile workload at a high rate for a while, in several
// start/stop cycles, and checks that nothing crashes and every profile is sound.
//
//   node [--stress-compaction | --gc-interval=100 | ...] test/stress/cpu-stress.js
//        [--seconds 20] [--hz 5000] [--cycles 5] [--no-worker] [--worker-profile] [--min-resolved 0.99]
//        [--labels]
//
// Workload on the profiled (main) thread, in ~40 ms synchronous slices:
//   - code generation: `new Function` with a unique source every call (fresh bytecode,
//     JIT code events, code moves under --stress-compaction), some called hot enough to tier up;
//   - deep recursion: 60–90 JS frames, then work at the bottom;
//   - native callbacks: crypto hashing, pbkdf2, zlib (samples in EXTERNAL state);
//   - garbage: short-lived objects so GC runs (and moves code with --stress-compaction);
// With --labels every slice runs in pprof.Do(Labels('slice', k)) (k = 0, 1, 2 in turn)
// and every sample inside a slice must carry a slice label.
// plus a Worker thread running its own codegen/recursion loop (with --worker-profile it
// also profiles itself at the same rate, so two targets take SIGPROF at once).
//
// Per cycle it asserts: the profile gunzips and decodes with pprof-format; every sample has
// a location; sum(samples/count) == CPUProfileStats().samples; the CPU weight is within
// reason of the thread's own CPU time (schedstat); >= 99% of frames resolved
// (1 - unresolvedFrames/frames); deep stacks (>= 60 `rec` frames) were captured.
// Prints one `STRESS_RESULT {json}` line; exit status 0 = all cycles passed, 1 = an
// assertion failed; a crash shows as a signal / V8 fatal error to the caller (scripts/stress.sh).
//
// The package is loaded from $SIGPROF_PKG (a package root) or the repo this file is in;
// $SIGPROF_ADDON picks the addon (lib/native.ts).
const path = require('node:path');
const { isMainThread, Worker, parentPort, workerData, threadId } = require('node:worker_threads');

const PKG = process.env.SIGPROF_PKG ? path.resolve(process.env.SIGPROF_PKG) : path.join(__dirname, '..', '..');
// Load sigprof before any workload code is compiled (line tables need the listener first).
const sp = require(PKG);

const fs = require('node:fs');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { Writable } = require('node:stream');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  if (typeof def === 'boolean') return true;
  const v = process.argv[i + 1];
  return typeof def === 'number' ? Number(v) : v;
}

function threadCpuNs() {
  return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
}

// User-mode CPU of this thread (utime, field 14 of /proc/thread-self/stat, in USER_HZ = 100
// ticks: 10 ms resolution). The perf-event clock counts only user-mode time, so its profile
// is judged against this; under ASan and GC stress the kernel share (page faults, mmap,
// madvise) is 20-40% of the thread's time and would read as missing samples.
function threadUserNs() {
  const stat = fs.readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) * 1e7;
}

// ---- workload ------------------------------------------------------------------------

let genCounter = 0;
const OPS = ['+', '-', '*', '^', '|', '&'];
/** Compiles a fresh function (unique source) and calls it `calls` times. */
function codegen(calls) {
  const id = genCounter++;
  const op = OPS[id % OPS.length];
  const body = [
    `let s = ${id};`,
    `for (let i = 0; i < n; i++) { s = (s ${op} (i * ${1 + (id % 13)})) | 0; if ((i & 63) === 0) s ^= o.k${id % 5} | 0; }`,
    `const inner = (x) => x ${op} ${id % 97};`,
    'return inner(s);',
  ].join('\n');
  // The name shows in the profile: gen_<id>.
  const make = new Function('o', `return function gen_${id}(n) {\n${body}\n};`);
  const fn = make({ k0: 1, k1: 2, k2: 3, k3: 4, k4: 5 });
  let r = 0;
  for (let c = 0; c < calls; c++) r ^= fn(200 + (c & 7));
  return r;
}

function leafWork(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.sqrt(i ^ (s & 1023));
  return s;
}

function rec(depth, n) {
  if (depth === 0) return leafWork(n) + JSON.stringify({ depth, n }).length;
  return rec(depth - 1, n) + 1;
}

const HASH_INPUT = Buffer.alloc(256 << 10, 0x5a);
const ZLIB_INPUT = Buffer.from('sigprof '.repeat(8192));
function nativeWork() {
  crypto.createHash('sha256').update(HASH_INPUT).digest();
  crypto.pbkdf2Sync('password', 'salt', 200, 32, 'sha256');
  zlib.deflateSync(ZLIB_INPUT);
}

let keep = [];
function garbage() {
  const a = [];
  for (let i = 0; i < 2000; i++) a.push({ i, s: 'x' + i, arr: [i, i + 1, i + 2] });
  keep.push(a);
  if (keep.length > 20) keep = keep.slice(10);
}

// Thread CPU spent inside rec() since the cycle began: on a loaded machine (or under ASan,
// where the compiler and GC take most of the time) a cycle may give rec too little CPU to
// expect any sample in it, and then its depth says nothing.
let recCpuNs = 0;

/** One synchronous slice of mixed work, about `ms` of wall time. */
function slice(ms) {
  const end = Date.now() + ms;
  let r = 0;
  while (Date.now() < end) {
    r ^= codegen(genCounter % 4 === 0 ? 300 : 3); // every 4th compiled function gets hot
    const recStart = threadCpuNs();
    r ^= rec(60 + (genCounter % 31), 2000) | 0;
    recCpuNs += threadCpuNs() - recStart;
    nativeWork();
    garbage();
  }
  return r;
}

const tick = () => new Promise((res) => setImmediate(res));
const LABELS = process.argv.includes('--labels');

class Sink extends Writable {
  constructor() { super(); this.chunks = []; }
  _write(c, _e, cb) { this.chunks.push(c); cb(); }
  buffer() { return Buffer.concat(this.chunks); }
}

/** Profiles `ms` of slices; returns a per-cycle report (and failures) for this thread. */
async function profiledCycle(hz, ms, minResolved, label) {
  const { Profile } = require(require.resolve('pprof-format', { paths: [PKG] }));
  sp.SetCPUProfileRate(hz);
  const w = new Sink();
  const t0 = Date.now();
  sp.StartCPUProfile(w);
  const cpu0 = threadCpuNs();
  const user0 = threadUserNs();
  recCpuNs = 0;
  let k = 0;
  while (Date.now() - t0 < ms) {
    if (LABELS) {
      await sp.Do(sp.Labels('slice', String(k++ % 3)), async () => { slice(40); await tick(); });
    } else {
      slice(40);
      await tick();
    }
  }
  // Profiled CPU time: start to stop, without StopCPUProfile's own encoding work.
  const cpuNs = threadCpuNs() - cpu0;
  const userNs = threadUserNs() - user0;
  await sp.StopCPUProfile();
  const stats = sp.CPUProfileStats();
  // What the clock could see: user + kernel time for the timers, user time for perf-event.
  const seenNs = stats.mode === 'perf-event' ? userNs : cpuNs;
  const seenWhat = stats.mode === 'perf-event' ? 'user-mode CPU' : 'CPU';
  const failures = [];
  const fail = (m) => failures.push(`${label}: ${m}`);

  let profile;
  try {
    profile = Profile.decode(zlib.gunzipSync(w.buffer()));
  } catch (e) {
    fail(`profile does not decode: ${e.message}`);
  }
  let countSum = 0, cpuSum = 0, maxRec = 0, maxDepth = 0, genSamples = 0, unknownSamples = 0;
  let sliceSamples = 0, unlabelledSlice = 0, otherThreadSamples = 0;
  const topNames = new Map();
  const unknownCtx = new Map(); // where (unknown) frames sit: leaf|mid|root:callee>?>caller
  if (profile) {
    const st = profile.stringTable.strings;
    const fns = new Map(profile.function.map((f) => [Number(f.id), st[Number(f.name)]]));
    const locs = new Map(profile.location.map((l) => [Number(l.id), l]));
    // A profile started in the main thread also holds the Workers' samples (thread label
    // worker-N, docs/workers.md): the checks against this thread's counters and CPU time
    // take this thread's samples; the others must only be sound.
    const ownThread = isMainThread ? 'main' : `worker-${threadId}`;
    for (const s of profile.sample) {
      const thr = s.label.find((l) => st[Number(l.key)] === 'thread');
      if (!thr) fail('a sample without a thread label');
      if (thr && st[Number(thr.str)] !== ownThread) {
        otherThreadSamples += Number(s.value[0]);
        if (s.locationId.length === 0) fail('another thread\'s sample without locations');
        continue;
      }
      countSum += Number(s.value[0]);
      cpuSum += Number(s.value[1]);
      if (s.locationId.length === 0) fail('a sample without locations');
      const names = s.locationId.map((id) => {
        const loc = locs.get(Number(id));
        if (!loc || loc.line.length === 0) return '(no line)';
        return fns.get(Number(loc.line[0].functionId)) ?? '(no function)';
      });
      maxDepth = Math.max(maxDepth, names.length);
      maxRec = Math.max(maxRec, names.filter((n) => n === 'rec').length);
      if (names.some((n) => n.startsWith('gen_'))) genSamples += Number(s.value[0]);
      if (names.includes('(unknown)')) unknownSamples += Number(s.value[0]);
      if (LABELS && names.includes('slice')) {
        sliceSamples += Number(s.value[0]);
        const lab = s.label.find((l) => st[Number(l.key)] === 'slice');
        if (!lab || !['0', '1', '2'].includes(st[Number(lab.str)])) unlabelledSlice += Number(s.value[0]);
      }
      names.forEach((n, i) => {
        if (n !== '(unknown)') return;
        const where = i === 0 ? 'leaf' : i === names.length - 1 ? 'root' : 'mid';
        const k = `${where}:${names[i - 1] ?? '-'}>?>${names[i + 1] ?? '-'}`;
        unknownCtx.set(k, (unknownCtx.get(k) ?? 0) + 1);
      });
      topNames.set(names[0], (topNames.get(names[0]) ?? 0) + Number(s.value[0]));
    }
  }
  const resolved = stats.frames > 0 ? 1 - stats.unresolvedFrames / stats.frames : 0;
  const period = Math.round(1e9 / hz);
  if (profile) {
    if (countSum !== stats.samples) fail(`sum of samples/count ${countSum} != CPUProfileStats().samples ${stats.samples}`);
    if (stats.samples < 50) fail(`only ${stats.samples} samples`);
    // Weight covers the profiled thread's CPU time (minus what ran before start/after stop).
    const weightNs = cpuSum;
    if (weightNs > cpuNs * 1.1 + 20e6) fail(`profile claims ${(weightNs / 1e6).toFixed(0)} ms CPU, thread used ${(cpuNs / 1e6).toFixed(0)} ms`);
    // 20 ms: utime's tick resolution, twice.
    if (weightNs < seenNs * 0.8 - 20e6) fail(`profile covers ${(weightNs / 1e6).toFixed(0)} ms CPU of the thread's ${(seenNs / 1e6).toFixed(0)} ms ${seenWhat} (${stats.mode} clock)`);
    if (stats.samples < 0.1 * hz * (cpuNs / 1e9) && hz <= 10000) fail(`${stats.samples} samples for ${(cpuNs / 1e9).toFixed(2)} CPU-s at ${hz} Hz`);
    // Judged only when rec ran long enough to expect >= 20 samples in it (P(none) < 1e-8).
    const recExpected = recCpuNs / period;
    if (recExpected >= 20 && maxRec < 60) fail(`deepest stack had ${maxRec} rec frames (want >= 60; rec ran ${(recCpuNs / 1e6).toFixed(1)} ms, ~${recExpected.toFixed(0)} samples expected)`);
    if (genSamples === 0) fail('no sample in a generated gen_* function');
    if (LABELS && (sliceSamples === 0 || unlabelledSlice > 0)) fail(`labels: ${unlabelledSlice} of ${sliceSamples} samples in slice() without a slice label`);
  }
  if (resolved < minResolved) fail(`resolved ${(resolved * 100).toFixed(2)}% of frames (${stats.unresolvedFrames} of ${stats.frames} unresolved), want >= ${minResolved * 100}%`);
  const top = [...topNames].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([n, c]) => `${n}:${c}`);
  return {
    label, ok: failures.length === 0, failures,
    cpuMs: Math.round(cpuNs / 1e6), samples: stats.samples, dropped: stats.dropped, deliveredHz: Math.round(stats.deliveredHz),
    mode: stats.mode, frames: stats.frames, unresolvedFrames: stats.unresolvedFrames, resolvedPct: +(resolved * 100).toFixed(3),
    unknownSamples, maxDepth, maxRec, genSamples, handlerNsMean: Math.round(stats.handlerNsMean), handlerNsMax: stats.handlerNsMax,
    period, bytes: w.buffer().length, top, otherThreadSamples,
    unknownWhere: [...unknownCtx].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, c]) => `${k}:${c}`),
  };
}

// ---- worker --------------------------------------------------------------------------

if (!isMainThread) {
  const { hz, profile, cycleMs, minResolved } = workerData;
  let stop = false;
  parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
  (async () => {
    const reports = [];
    let i = 0;
    while (!stop) {
      if (profile) {
        reports.push(await profiledCycle(hz, cycleMs, minResolved, `worker#${i++}`));
      } else {
        const end = Date.now() + 40;
        while (Date.now() < end) { codegen(genCounter % 4 === 0 ? 200 : 2); rec(70, 1000); }
        await tick();
      }
    }
    parentPort.postMessage({ reports, generated: genCounter });
  })().catch((e) => { parentPort.postMessage({ error: e.stack || String(e) }); });
  return;
}

// ---- main ----------------------------------------------------------------------------

(async () => {
  const seconds = arg('seconds', 20);
  const hz = arg('hz', 5000);
  const cycles = arg('cycles', 5);
  const minResolved = arg('min-resolved', 0.99);
  const useWorker = !arg('no-worker', false);
  const workerProfile = arg('worker-profile', false);
  const cycleMs = Math.max(200, Math.floor((seconds * 1000) / cycles));

  let worker, workerDone;
  if (useWorker) {
    worker = new Worker(__filename, { argv: LABELS ? ['--labels'] : [], workerData: { hz, profile: workerProfile, cycleMs: Math.max(200, Math.floor(cycleMs / 2)), minResolved } });
    workerDone = new Promise((res, rej) => {
      worker.once('message', res);
      worker.once('error', rej);
      worker.once('exit', (code) => res({ error: `worker exited with ${code} before reporting` }));
    });
  }

  const reports = [];
  for (let c = 0; c < cycles; c++) {
    reports.push(await profiledCycle(hz, cycleMs, minResolved, `main#${c}`));
    // A short unprofiled gap: stop/start must leave nothing behind.
    slice(20);
    await tick();
  }
  let workerResult = null;
  if (worker) {
    worker.postMessage('stop');
    workerResult = await workerDone;
    await worker.terminate();
    if (workerResult.error) reports.push({ label: 'worker', ok: false, failures: [`worker: ${workerResult.error}`] });
    for (const r of workerResult.reports ?? []) reports.push(r);
  }

  const failures = reports.flatMap((r) => r.failures);
  const sum = (k) => reports.reduce((a, r) => a + (r[k] ?? 0), 0);
  const frames = sum('frames'), unresolved = sum('unresolvedFrames');
  const result = {
    node: process.version, execArgv: process.execArgv, hz, seconds, cycles, worker: useWorker, workerProfile,
    ok: failures.length === 0, failures,
    samples: sum('samples'), dropped: sum('dropped'), frames, unresolvedFrames: unresolved,
    resolvedPct: frames ? +((1 - unresolved / frames) * 100).toFixed(3) : 0,
    minCycleResolvedPct: Math.min(...reports.filter((r) => r.frames).map((r) => r.resolvedPct)),
    generatedFunctions: genCounter + (workerResult?.generated ?? 0),
    reports,
  };
  process.stdout.write(`STRESS_RESULT ${JSON.stringify(result)}\n`);
  if (arg('verbose', false)) {
    for (const r of reports) {
      process.stderr.write(`${r.label}: ${r.ok ? 'ok' : 'FAIL'} samples=${r.samples} cpu=${r.cpuMs}ms hz=${r.deliveredHz} mode=${r.mode} resolved=${r.resolvedPct}% maxRec=${r.maxRec} gen=${r.genSamples} top=${(r.top || []).join(' ')}${r.unknownWhere?.length ? ` unknown@ ${r.unknownWhere.join(' ')}` : ''}\n`);
    }
  }
  for (const f of failures) process.stderr.write(`FAIL ${f}\n`);
  process.exitCode = failures.length === 0 ? 0 : 1;
})().catch((e) => {
  process.stderr.write(`FAIL ${e.stack || e}\n`);
  process.exitCode = 1;
});
