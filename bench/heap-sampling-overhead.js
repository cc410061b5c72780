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
 */
const sp = require('..');
const lib = require('./lib');
const { workload } = require('./heap-workload');

const REPS = lib.numOpt('reps', 40);
const MB = lib.numOpt('mb', 150);
const RATES = String(lib.opt('rates', '524288,65536')).split(',').map(Number);
const WORKLOAD = String(lib.opt('workload', 'mixed'));

// Small objects that die young: what a request handler allocates. ~128 bytes each.
function steady(totalMB) {
  const recent = new Array(1024);
  let acc = 0;
  const n = Math.floor((totalMB * 1024 * 1024) / 128);
  for (let i = 0; i < n; i++) {
    const o = { id: i, next: i + 1, parts: [i, i + 1, i + 2, i + 3], tag: null };
    recent[i & 1023] = o;
    acc += o.parts.length;
  }
  return acc + recent.length;
}
const run = WORKLOAD === 'steady' ? steady : workload;

function block(rate) {
  sp.runtime.MemProfileRate = rate;
  const t0 = lib.threadCpuNs();
  run(MB);
  return lib.threadCpuNs() - t0;
}

sp.runtime.MemProfileRate = 0;
for (let i = 0; i < 3; i++) block(0);
const variants = [0, ...RATES];
const ratios = new Map(RATES.map((r) => [r, []]));
for (let rep = 0; rep < REPS; rep++) {
  const got = new Map();
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + rep) % variants.length];
    got.set(v, block(v));
  }
  for (const r of RATES) ratios.get(r).push(got.get(r) / got.get(0));
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
// Overhead at the default rate from the smallest rate measured (the largest, best
// resolved effect), with its CI carried through k = (ratio - 1) × rate.
const smallest = Math.min(...RATES);
if (smallest < 524288) {
  const x = ratios.get(smallest);
  const [lo, hi] = lib.medianCI(x);
  const at = (v) => 1 + ((v - 1) * smallest) / 524288;
  console.log(`# extrapolated from ${smallest / 1024} KiB to the default 512 KiB (overhead ∝ 1/rate): ${fmt(at(q(x, 0.5)))} [95% CI ${fmt(at(lo))}–${fmt(at(hi))}]`);
}
