'use strict';
/**
 * CPU-bound overhead: a fixed amount of mixed work (JSON stringify/parse, regex,
 * Math-heavy loop, array sort, object allocation, string building), timed inside a fresh
 * child process per variant run; variants alternate within each repetition.
 *
 *   node bench/cpu-overhead.js                      # defaults (~2.5 min)
 *   node bench/cpu-overhead.js --reps 30 --iters 400   # longer / steadier
 *   BENCH_REPS=30 node bench/cpu-overhead.js          # same via env
 *   node bench/cpu-overhead.js --variant sigprof-100hz  # one child run, prints JSON
 *
 * Ratio = time(variant) / time(unprofiled) of the same repetition (≥ 1 means slower).
 * wall: process.hrtime around the measured iterations (after warm-up iterations that run
 * with the profiler already on). main-thread CPU: /proc/thread-self/schedstat over the
 * same span (steadier on a shared machine; includes in-thread signal handlers). process
 * CPU: process.cpuUsage (all threads of the child: GC helpers, a profiler's own threads).
 */
const lib = require('./lib');

const VARIANTS = ['unprofiled', 'sigprof-100hz', 'sigprof-1000hz', 'datadog-1000us', 'datadog-10000us'];
const ITERS = lib.numOpt('iters', 160); // measured iterations (~1.5 s on the dev box)
const WARMUP = lib.numOpt('warmup', 20);

const { iteration, resetSeed } = require('./cpu-workload');

// ---------------------------------------------------------------- child

async function child(variant) {
  const prof = lib.loadProfiler(variant); // before any workload function is compiled
  resetSeed();
  lib.startProfiler(prof);
  let check = 0;
  for (let i = 0; i < WARMUP; i++) check += iteration();
  const cpu0 = process.cpuUsage();
  const th0 = lib.threadCpuNs();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ITERS; i++) check += iteration();
  const t1 = process.hrtime.bigint();
  const th1 = lib.threadCpuNs();
  const cpu = process.cpuUsage(cpu0);
  const extra = await lib.stopProfiler(prof);
  return {
    metrics: { wallMs: Number(t1 - t0) / 1e6, threadCpuMs: (th1 - th0) / 1e6, cpuMs: (cpu.user + cpu.system) / 1000 },
    extra: { ...extra, check },
  };
}

// ---------------------------------------------------------------- parent

async function main() {
  const reps = lib.numOpt('reps', 12);
  const variants = String(lib.opt('variants', VARIANTS.join(','))).split(',');
  await lib.runComparison({
    title: `cpu-overhead: mixed CPU-bound workload, ${WARMUP} warm-up + ${ITERS} measured iterations per run`,
    script: __filename,
    variants,
    baseline: 'unprofiled',
    reps,
    extraArgs: ['--iters', String(ITERS), '--warmup', String(WARMUP)],
    metrics: [
      { key: 'wallMs', label: 'wall time', unit: 'ms', better: 'lower' },
      { key: 'threadCpuMs', label: 'main-thread CPU time', unit: 'ms', better: 'lower' },
      { key: 'cpuMs', label: 'process CPU time', unit: 'ms', better: 'lower' },
    ],
    extraColumns: [{ title: 'profiler figures', keys: ['samples', 'dropped', 'deliveredHz', 'handlerNsMean', 'handlerNsMax'] }],
  });
}

if (lib.isChild()) lib.childMain(child);
else main().catch((e) => { console.error(e); process.exit(1); });
