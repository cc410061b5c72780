'use strict';
/**
 * What heap sampling costs at a given MemProfileRate, in one process: after a warm-up,
 * blocks of the same allocation-heavy work run alternately with sampling off
 * (MemProfileRate = 0) and at each rate (order rotated every repetition), timed by the
 * main thread's own CPU time. Ratio = block(rate) ÷ block(off) of the same repetition;
 * median and interquartile range. GC makes blocks of this workload vary, so it takes
 * many repetitions; separate-process figures are in bench/heap-overhead.js.
 *
 *   node bench/heap-sampling-overhead.js [--reps 40] [--mb 150] [--rates 524288,65536]
 */
const sp = require('..');
const lib = require('./lib');
const { workload } = require('./heap-workload');

const REPS = lib.numOpt('reps', 40);
const MB = lib.numOpt('mb', 150);
const RATES = String(lib.opt('rates', '524288,65536')).split(',').map(Number);

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  const lo = Math.floor(i), hi = Math.ceil(i);
  return s[lo] + (s[hi] - s[lo]) * (i - lo);
}

function block(rate) {
  sp.runtime.MemProfileRate = rate;
  const t0 = lib.threadCpuNs();
  workload(MB);
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
console.log(`# heap sampling overhead, one process, ${REPS} reps × ${variants.length} blocks of ${MB} MB allocated (node ${process.version})`);
console.log('| MemProfileRate | main-thread CPU ratio: median (IQR) |');
console.log('|---|--:|');
for (const r of RATES) {
  const x = ratios.get(r);
  console.log(`| ${r / 1024} KiB | ${quantile(x, 0.5).toFixed(4)} (${quantile(x, 0.25).toFixed(4)}–${quantile(x, 0.75).toFixed(4)}) |`);
}
