'use strict';
/**
 * Start/stop costs of the sigprof CPU profiler, each case in a fresh child process:
 *
 *  1. StartCPUProfile latency with ~0, ~5 MB and ~20 MB of generated JS loaded (thousands
 *     of functions compiled through vm scripts and each called once), sigprof loaded
 *     first (the recommended `--require sigprof/register` way) and, for comparison,
 *     loaded after the code. Several start/stop cycles per child; first and median.
 *  2. StopCPUProfile (final pull + symbolize + pprof encode + gzip + write) for a long
 *     profile at 100 Hz of a workload with many distinct stacks (default 60 s of CPU).
 *  3. Signal handler cost per sample (CPUProfileStats handlerNsMean / handlerNsMax) at
 *     100 Hz and 1 kHz.
 *
 *   node bench/startstop.js                                # defaults (~2.5 min)
 *   node bench/startstop.js --profile-seconds 10 --handler-seconds 3   # shorter
 *   BENCH_PROFILE_SECONDS=120 BENCH_REPS=3 node bench/startstop.js       # longer
 */
const vm = require('node:vm');
const zlib = require('node:zlib');
const lib = require('./lib');

const PROFILE_SECONDS = lib.numOpt('profile-seconds', 60);
const HANDLER_SECONDS = lib.numOpt('handler-seconds', 5);
const CYCLES = lib.numOpt('cycles', 7);

// ---------------------------------------------------------------- generated code

/** One generated function, ~500 bytes of source. */
function fnSource(i) {
  return `function gen_${i}(a, b) {
  let acc = a * ${i % 97} + b;
  for (let k = 0; k < 3; k++) {
    acc = (acc * 31 + k + ${i}) % 1000003;
    if (acc % 7 === ${i % 7}) acc += ${i % 13};
  }
  const s = 'gen_${i}:' + acc.toString(16) + ':' + String(b).padStart(4, '0');
  const o = { id: ${i}, v: acc, s, tag: 'generated-function-number-${i}-of-the-startstop-benchmark' };
  if (o.v > 500000) return o.s.length + o.id;
  return o.tag.length + (a > 1 ? acc & 1023 : acc & 511) + s.length;
}
`;
}

/** Loads ~mb megabytes of generated functions in scripts of 1000 and calls each once. */
function loadGeneratedCode(mb) {
  const target = mb * 1024 * 1024;
  let bytes = 0;
  let fns = 0;
  let script = 0;
  let check = 0;
  while (bytes < target) {
    const parts = [];
    const first = fns;
    for (let j = 0; j < 1000 && bytes < target; j++) {
      const src = fnSource(fns++);
      parts.push(src);
      bytes += src.length;
    }
    parts.push(`[${Array.from({ length: fns - first }, (_, j) => `gen_${first + j}`).join(',')}]`);
    // Top-level function declarations; the script's completion value is the list.
    const list = vm.runInThisContext(parts.join(''), { filename: `/generated/code-${script++}.js` });
    for (const f of list) check += f(2, 3);
  }
  return { bytes, fns, scripts: script, check };
}

/** A workload with many distinct stacks: random walks through a table of functions. */
function makeStackWorkload(n) {
  const parts = ['const T = [];'];
  for (let i = 0; i < n; i++) {
    parts.push(`T.push(function walk_${i}(d, r) {
  let x = r;
  for (let k = 0; k < ${20 + (i % 40)}; k++) x = (x * 1103515245 + 12345 + k) >>> 0;
  if (d <= 0) return x & 0xff;
  return (T[(x >>> 8) % T.length](d - 1, x) + ${i}) | 0;
});`);
  }
  parts.push('T;');
  const T = vm.runInThisContext(parts.join('\n'), { filename: '/generated/stacks.js' });
  let r = 12345;
  return function chunk(ms) {
    const end = performance.now() + ms;
    let acc = 0;
    while (performance.now() < end) {
      for (let j = 0; j < 50; j++) {
        r = (r * 1664525 + 1013904223) >>> 0;
        acc += T[r % T.length](8 + (r >>> 27), r);
      }
    }
    return acc;
  };
}

const nextTick = () => new Promise((resolve) => setImmediate(resolve));

/** Runs the workload in ~20 ms chunks (yielding to the event loop) until `cond()` is true. */
async function runUntil(chunk, cond) {
  let acc = 0;
  while (!cond()) {
    acc += chunk(20);
    await nextTick();
  }
  return acc;
}

// ---------------------------------------------------------------- child cases

async function startLatency(mb, late) {
  let sp;
  if (!late) sp = require(lib.ROOT);
  const t0 = performance.now();
  const code = mb > 0 ? loadGeneratedCode(mb) : { bytes: 0, fns: 0, scripts: 0, check: 0 };
  const loadMs = performance.now() - t0;
  if (late) sp = require(lib.ROOT);
  process.removeAllListeners('warning'); // SIGPROF_LATE_LOAD is expected in the late case
  sp.SetCPUProfileRate(100);
  const times = [];
  const stops = [];
  const chunk = makeStackWorkload(50);
  for (let c = 0; c < CYCLES; c++) {
    const out = lib.sink();
    const a = process.hrtime.bigint();
    sp.StartCPUProfile(out);
    const b = process.hrtime.bigint();
    times.push(Number(b - a) / 1e6);
    chunk(30);
    const s0 = performance.now();
    await sp.StopCPUProfile();
    stops.push(performance.now() - s0);
    await nextTick();
  }
  return {
    metrics: { firstMs: times[0], medianMs: lib.median(times), maxMs: Math.max(...times), medianAfterFirstMs: lib.median(times.slice(1)) },
    extra: { codeBytes: code.bytes, functions: code.fns, scripts: code.scripts, loadMs, stopMedianMs: lib.median(stops), rssMB: process.memoryUsage().rss / 1048576, times },
  };
}

async function stopLongProfile(seconds) {
  const sp = require(lib.ROOT);
  const { Profile } = require('pprof-format');
  const chunk = makeStackWorkload(3000);
  chunk(500); // warm up (compile) before the profile
  sp.SetCPUProfileRate(100);
  const chunks = [];
  const out = new (require('node:stream').Writable)({ write(c, _e, cb) { chunks.push(c); cb(); } });
  const w0 = performance.now();
  sp.StartCPUProfile(out);
  const target = seconds * 1e9;
  let n = 0;
  await runUntil(chunk, () => (++n % 10 === 0 ? sp.CPUProfileStats().cpuNanos >= target || performance.now() - w0 > seconds * 3000 : false));
  const wallS = (performance.now() - w0) / 1000;
  const a = process.hrtime.bigint();
  await sp.StopCPUProfile();
  const b = process.hrtime.bigint();
  const stats = sp.CPUProfileStats();
  const gz = Buffer.concat(chunks);
  const prof = Profile.decode(zlib.gunzipSync(gz));
  return {
    metrics: { stopMs: Number(b - a) / 1e6 },
    extra: {
      samples: stats.samples, dropped: stats.dropped, cpuSeconds: stats.cpuNanos / 1e9, wallSeconds: wallS,
      distinctStacks: prof.sample.length, locations: prof.location.length, functions: prof.function.length,
      gzBytes: gz.length, handlerNsMean: stats.handlerNsMean, handlerNsMax: stats.handlerNsMax, deliveredHz: stats.deliveredHz, mode: stats.mode,
    },
  };
}

async function handlerCost(hz, seconds) {
  const sp = require(lib.ROOT);
  const chunk = makeStackWorkload(500);
  chunk(300);
  sp.SetCPUProfileRate(hz);
  const out = lib.sink();
  const w0 = performance.now();
  sp.StartCPUProfile(out);
  await runUntil(chunk, () => performance.now() - w0 >= seconds * 1000);
  await sp.StopCPUProfile();
  const s = sp.CPUProfileStats();
  return {
    metrics: { handlerNsMean: s.handlerNsMean, handlerNsMax: s.handlerNsMax },
    extra: { samples: s.samples, dropped: s.dropped, deliveredHz: s.deliveredHz, mode: s.mode, cpuSeconds: s.cpuNanos / 1e9 },
  };
}

async function child(variant) {
  let m;
  if ((m = /^start-(\d+)mb(-late)?$/.exec(variant))) return startLatency(Number(m[1]), Boolean(m[2]));
  if ((m = /^stop-(\d+)s$/.exec(variant))) return stopLongProfile(Number(m[1]));
  if ((m = /^handler-(\d+)hz-(\d+)s$/.exec(variant))) return handlerCost(Number(m[1]), Number(m[2]));
  throw new Error(`unknown case ${variant}`);
}

// ---------------------------------------------------------------- parent

async function runCase(name) {
  const { spawn } = require('node:child_process');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [__filename, '--variant', name, '--cycles', String(CYCLES)], { cwd: lib.ROOT, env: { ...process.env, BENCH_CHILD: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('@@BENCH_RESULT '));
      if (code !== 0 || !line) reject(new Error(`case ${name} failed (exit ${code})\n${out}`));
      else resolve(JSON.parse(line.slice('@@BENCH_RESULT '.length)));
    });
  });
}

async function main() {
  const os = require('node:os');
  const reps = lib.numOpt('reps', 1);
  const f = lib.fmtNum;
  console.log(`# startstop: node ${process.version}, ${os.cpus().length} CPUs, loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  console.log(`\n## StartCPUProfile latency (${CYCLES} start/stop cycles per child, 100 Hz; target ≤ 1 ms)`);
  const startRows = [];
  for (let r = 0; r < reps; r++) {
    for (const c of ['start-0mb', 'start-5mb', 'start-20mb', 'start-5mb-late', 'start-20mb-late']) {
      const res = await runCase(c);
      const e = res.extra;
      startRows.push([c + (reps > 1 ? ` #${r + 1}` : ''), (e.codeBytes / 1048576).toFixed(1), `${e.functions}`, f(e.loadMs), f(e.rssMB), res.metrics.firstMs.toFixed(3), res.metrics.medianAfterFirstMs.toFixed(3), res.metrics.maxMs.toFixed(3), f(e.stopMedianMs)]);
      console.log(`  ${c}: ${e.times.map((t) => t.toFixed(3)).join(' ')} ms`);
    }
  }
  console.log(lib.table(['case', 'code MB', 'functions', 'load ms', 'RSS MB', 'first start ms', 'median start ms (2nd..)', 'max start ms', 'median stop ms (30 ms profile)'], startRows));

  console.log(`\n## StopCPUProfile + encode for a ${PROFILE_SECONDS} s CPU profile at 100 Hz (3000 generated functions, random call paths; target < 50 ms)`);
  const stopRows = [];
  for (let r = 0; r < reps; r++) {
    const res = await runCase(`stop-${PROFILE_SECONDS}s`);
    const e = res.extra;
    stopRows.push([`${PROFILE_SECONDS} s @ 100 Hz`, res.metrics.stopMs.toFixed(1), `${e.samples}`, `${e.dropped}`, `${e.distinctStacks}`, `${e.locations}`, `${e.functions}`, `${(e.gzBytes / 1024).toFixed(1)}`, e.cpuSeconds.toFixed(1), e.wallSeconds.toFixed(1)]);
  }
  console.log(lib.table(['profile', 'StopCPUProfile ms', 'samples', 'dropped', 'distinct stacks', 'locations', 'functions', 'gzip KiB', 'CPU s', 'wall s'], stopRows));

  console.log(`\n## Signal handler cost per sample (CPUProfileStats, ${HANDLER_SECONDS} s of a 500-function random-stack workload)`);
  const hRows = [];
  for (let r = 0; r < reps; r++) {
    for (const hz of [100, 1000]) {
      const res = await runCase(`handler-${hz}hz-${HANDLER_SECONDS}s`);
      const e = res.extra;
      hRows.push([`${hz} Hz`, e.mode, f(res.metrics.handlerNsMean), f(res.metrics.handlerNsMax), `${e.samples}`, `${e.dropped}`, f(e.deliveredHz)]);
    }
  }
  console.log(lib.table(['rate', 'mode', 'handler ns mean', 'handler ns max', 'samples', 'dropped', 'delivered Hz'], hRows));
}

if (lib.isChild()) lib.childMain(child);
else main().catch((e) => { console.error(e); process.exit(1); });
