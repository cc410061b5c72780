'use strict';
/**
 * What heap sampling costs at a given MemProfileRate, in one process: after a warm-up,
 * blocks of the same allocation-heavy work run alternately with sampling off
 * (MemProfileRate = 0) and at each rate (order rotated every repetition), timed by the
 * main thread's own CPU time. Ratio = block(rate) ÷ block(off) of the same repetition;
 * median and interquartile range. GC makes blocks of this workload vary, so it takes
 * many repetitions; separate-process figures are in bench/heap-overhead.js.
 *
 * Workloads: `mixed` (bench/heap-workload.js: object graphs, strings, arrays, a rolling
 * window of ~10-20 MB kept alive, so old-space GC too) and `steady` (small objects that
 * die young: allocation and scavenges only, blocks vary by ~1%).
 *
 * A sample's cost does not depend on the rate, so the overhead is k / rate: measuring at
 * small rates, where the effect is tens of percent and well above the noise, and
 * checking that ratio − 1 scales as 1 / rate, gives the overhead at the default rate with
 * far less uncertainty than measuring it there directly. Both are printed.
 *
 *   node bench/heap-sampling-overhead.js [--reps 40] [--mb 150] [--rates 524288,65536] [--workload mixed|steady]
 *                                        [--inspector 32768]
 *
 * --inspector R adds a variant where V8's same sampler is driven through the inspector
 * protocol (HeapProfiler.startSampling, samplingInterval R) with sigprof's rate at 0,
 * and prints sigprof ÷ inspector at R, paired per repetition: what sigprof adds.
 */
const sp = require('..');
const lib = require('./lib');
const { workload } = require('./heap-workload');

const REPS = lib.numOpt('reps', 40);
const MB = lib.numOpt('mb', 150);
const RATES = String(lib.opt('rates', '524288,65536')).split(',').map(Number);
const WORKLOAD = String(lib.opt('workload', 'mixed'));

// Small objects that die young: what a request handler allocates. One iteration
// allocates 136 bytes on Node 20 (measured from new-space usage), so a block allocates
// --mb MB.
const STEADY_BYTES_PER_ITERATION = 136;
function steady(totalMB) {
  const recent = new Array(1024);
  let acc = 0;
  const n = Math.floor((totalMB * 1024 * 1024) / STEADY_BYTES_PER_ITERATION);
  for (let i = 0; i < n; i++) {
    const o = { id: i, next: i + 1, parts: [i, i + 1, i + 2, i + 3], tag: null };
    recent[i & 1023] = o;
    acc += o.parts.length;
  }
  return acc + recent.length;
}
const run = WORKLOAD === 'steady' ? steady : workload;

const INSPECTOR = lib.numOpt('inspector', 0);
let session = null;
if (INSPECTOR) {
  session = new (require('node:inspector').Session)();
  session.connect();
}

const offCpu = [];
function block(variant) {
  const viaInspector = variant === 'inspector';
  const rate = viaInspector ? 0 : variant;
  sp.runtime.MemProfileRate = rate;
  if (viaInspector) session.post('HeapProfiler.startSampling', { samplingInterval: INSPECTOR });
  const t0 = lib.threadCpuNs();
  run(MB);
  const ns = lib.threadCpuNs() - t0;
  if (viaInspector) session.post('HeapProfiler.stopSampling');
  if (rate === 0 && !viaInspector) offCpu.push(ns);
  return ns;
}

sp.runtime.MemProfileRate = 0;
for (let i = 0; i < 3; i++) block(0);
const variants = [0, ...RATES, ...(INSPECTOR ? ['inspector'] : [])];
const ratios = new Map(RATES.map((r) => [r, []]));
const vsInspector = [];
for (let rep = 0; rep < REPS; rep++) {
  const got = new Map();
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + rep) % variants.length];
    got.set(v, block(v));
  }
  for (const r of RATES) ratios.get(r).push(got.get(r) / got.get(0));
  if (INSPECTOR && RATES.includes(INSPECTOR)) vsInspector.push((got.get(INSPECTOR) - got.get(0)) / (got.get('inspector') - got.get(0)));
}
const q = lib.quantile;
const fmt = (x) => x.toFixed(4);
console.log(`# heap sampling overhead (${WORKLOAD} workload), one process, ${REPS} reps × ${variants.length} blocks of ${MB} MB allocated (node ${process.version})`);
console.log('| MemProfileRate | main-thread CPU ratio: median [95% CI] (IQR) | k = (ratio − 1) × rate, bytes |');
console.log('|---|--:|--:|');
for (const r of RATES) {
  const x = ratios.get(r);
  console.log(`| ${r / 1024} KiB | ${fmt(q(x, 0.5))} [${lib.medianCI(x).map(fmt).join('–')}] (${fmt(q(x, 0.25))}–${fmt(q(x, 0.75))}) | ${((q(x, 0.5) - 1) * r).toFixed(0)} |`);
}
if (vsInspector.length) {
  console.log(`# sigprof's added CPU ÷ the inspector's added CPU, same V8 sampler at ${INSPECTOR / 1024} KiB, paired per rep: median ${fmt(q(vsInspector, 0.5))} [95% CI ${lib.medianCI(vsInspector).map(fmt).join('–')}]`);
}
// Overhead at the default rate from the smallest rate measured (the largest, best
// resolved effect), with its CI carried through k = (ratio - 1) × rate.
const smallest = Math.min(...RATES);
if (smallest < 524288) {
  const x = ratios.get(smallest);
  const [lo, hi] = lib.medianCI(x);
  const at = (v) => 1 + ((v - 1) * smallest) / 524288;
  console.log(`# extrapolated from ${smallest / 1024} KiB to the default 512 KiB (overhead ∝ 1/rate): ${fmt(at(q(x, 0.5)))} [95% CI ${fmt(at(lo))}–${fmt(at(hi))}]`);
  if (WORKLOAD === 'steady') {
    // Bytes are known for this workload: cost per sample and the allocation rate at
    // which the default rate costs 1%.
    const blockNs = q(offCpu, 0.5);
    const bytes = MB * 1024 * 1024;
    const perSampleNs = ((q(x, 0.5) - 1) * blockNs) / (bytes / smallest);
    const allocPerCpuSecond = bytes / (blockNs / 1e9);
    console.log(`# this workload allocates ${(allocPerCpuSecond / 1e9).toFixed(2)} GB per CPU-second; V8's sampler costs ${(perSampleNs / 1000).toFixed(2)} µs per sample, so at 512 KiB the overhead is 1% for a program allocating ${((0.01 * 524288) / (perSampleNs / 1e9) / 1e9).toFixed(2)} GB per CPU-second (and proportionally more or less)`);
  }
}
