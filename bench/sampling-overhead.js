'use strict';
/**
 * What sampling itself costs, measured where run-to-run noise cannot hide it: one
 * process, JIT warmed up once, then blocks of the same fixed work run alternately
 * unprofiled and profiled (the order rotates every repetition). Each block is timed by
 * the main thread's own CPU time (schedstat, ns) and by wall time; the ratio is
 * block(variant) ÷ block(unprofiled) of the same repetition, summarised as the median
 * with the interquartile range. sigprof is loaded in every block, so the cost of loading
 * it (the code listener, the heap sampler) is not in these ratios: see
 * bench/cpu-overhead.js (separate processes) and bench/startstop.js for that.
 *
 *   node bench/sampling-overhead.js [--reps 30] [--block-iters 25] [--rates 100,1000] [--workload mixed|math]
 *                                   [--datadog 1000,10000]   (@datadog/pprof time profiler, intervalMicros)
 *                                   [--clocks auto,timer]    (each rate once per clock, SIGPROF_CLOCK set per
 *                                                             block; sigprof reads it at every start)
 *
 * @datadog/pprof's time profiler runs V8's CpuProfiler, which installs its own SIGPROF
 * handler while it runs and restores the previous one when it stops; sigprof reinstalls
 * its handler at every StartCPUProfile. So the two alternate in one process without
 * running at the same time.
 *
 * `mixed` is bench/cpu-workload.js (allocation-heavy: GC makes blocks vary by ~±10%);
 * `math` is an allocation-free loop whose blocks vary by well under 1%, which is what it
 * takes to see a cost of a few tenths of a percent.
 */
const sp = require('..'); // before the workload is compiled, as a user would
const { Writable } = require('node:stream');
const lib = require('./lib');
const mixed = require('./cpu-workload');

const REPS = lib.numOpt('reps', 30);
const BLOCK = lib.numOpt('block-iters', 25);
const RATES = String(lib.opt('rates', '100,1000')).split(',').map(Number);
const WORKLOAD = String(lib.opt('workload', 'mixed'));
const DATADOG = String(lib.opt('datadog', '')).split(',').filter(Boolean).map(Number);
const CLOCKS = String(lib.opt('clocks', 'auto')).split(',').filter(Boolean);
const dd = DATADOG.length ? require('@datadog/pprof') : null;

function mathIteration() {
  let x = 0;
  for (let i = 1; i < 400000; i++) x += Math.sqrt(i) / (i & 7 | 1);
  return x;
}
const iteration = WORKLOAD === 'math' ? mathIteration : mixed.iteration;
const resetSeed = WORKLOAD === 'math' ? () => {} : mixed.resetSeed;

function block() {
  resetSeed();
  const th0 = lib.threadCpuNs();
  const p0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let check = 0;
  for (let i = 0; i < BLOCK; i++) check += iteration();
  const p1 = process.cpuUsage(p0);
  return { cpu: lib.threadCpuNs() - th0, proc: (p1.user + p1.system) * 1000, wall: Number(process.hrtime.bigint() - t0), check };
}

async function main() {
  for (let i = 0; i < 3; i++) block(); // warm-up: tier everything up first
  // `100hz` runs the default clock; `100hz@timer` forces one (SIGPROF_CLOCK).
  const sigprofVariants = RATES.flatMap((r) => CLOCKS.map((c) => (c === 'auto' ? `${r}hz` : `${r}hz@${c}`)));
  const variants = ['off', ...sigprofVariants, ...DATADOG.map((us) => `datadog-${us}us`)];
  const cpu = new Map(variants.map((v) => [v, []]));
  const rawCpu = new Map(variants.map((v) => [v, []]));
  const wall = new Map(variants.map((v) => [v, []]));
  const proc = new Map(variants.map((v) => [v, []]));
  const stats = new Map(variants.map((v) => [v, []]));
  for (let rep = 0; rep < REPS; rep++) {
    const order = variants.map((_, k) => variants[(k + rep) % variants.length]);
    const got = {};
    for (const v of order) {
      const isDd = v.startsWith('datadog-');
      if (isDd) {
        dd.time.start({ intervalMicros: Number.parseInt(v.slice(8), 10) });
      } else if (v !== 'off') {
        const clock = v.split('@')[1];
        if (clock) process.env.SIGPROF_CLOCK = clock; else delete process.env.SIGPROF_CLOCK;
        sp.SetCPUProfileRate(Number.parseInt(v, 10));
        sp.StartCPUProfile(new Writable({ write(_c, _e, cb) { cb(); } }));
      }
      got[v] = block();
      if (isDd) {
        const prof = dd.time.stop();
        let samples = 0;
        for (const x of prof.sample) samples += Number(x.value[0]);
        stats.get(v).push({ samples, handlerNsMean: NaN, mode: 'V8 CpuProfiler' });
      } else if (v !== 'off') {
        await sp.StopCPUProfile();
        stats.get(v).push(sp.CPUProfileStats());
      }
    }
    for (const v of variants) {
      rawCpu.get(v).push(got[v].cpu);
      cpu.get(v).push(got[v].cpu / got.off.cpu);
      wall.get(v).push(got[v].wall / got.off.wall);
      proc.get(v).push(got[v].proc / got.off.proc);
    }
  }
  const fmt = (x) => x.toFixed(4);
  const q = lib.quantile;
  const ci = (xs) => lib.medianCI(xs).map(fmt).join('–');
  const label = (v) => `${v.startsWith('datadog-') ? '@datadog/pprof' : 'sigprof'} ${v.replace('datadog-', '')}`;
  console.log(`# sampling overhead (${WORKLOAD} workload), one process, ${REPS} reps × ${variants.length} blocks of ${BLOCK} iterations (node ${process.version})`);
  console.log('# ratio = block CPU time (main thread) ÷ the unprofiled block of the same repetition; per-sample cost = (ratio − 1) × unprofiled block CPU ÷ samples in the block');
  console.log('# process CPU = every thread of the process (the profilers\' own threads included: the collector and timer thread for sigprof, V8\'s sampler and processor threads for @datadog/pprof)');
  console.log('| variant | main-thread CPU ratio: median [95% CI] (IQR) | process CPU ratio: median [95% CI] | wall ratio: median (IQR) | samples per CPU-s | cost per sample (µs) | handler ns mean | self-measured cost (main / own threads) | mode |');
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|---|');
  const offCpu = q(rawCpu.get('off'), 0.5);
  for (const v of variants.slice(1)) {
    const c = cpu.get(v), w = wall.get(v), st = stats.get(v);
    const samples = q(st.map((s) => s.samples), 0.5);
    const perSecond = samples / (q(rawCpu.get(v), 0.5) / 1e9);
    const perSample = ((q(c, 0.5) - 1) * offCpu) / samples / 1000;
    const handler = q(st.map((s) => s.handlerNsMean), 0.5);
    const self = st[0].selfCostFraction === undefined ? '—' : `${(q(st.map((s) => s.selfCostFraction), 0.5) * 100).toFixed(3)}% / ${(q(st.map((s) => s.helperThreadsCostFraction), 0.5) * 100).toFixed(3)}%`;
    const pc = proc.get(v);
    console.log(`| ${label(v)} | ${fmt(q(c, 0.5))} [${ci(c)}] (${fmt(q(c, 0.25))}–${fmt(q(c, 0.75))}) | ${fmt(q(pc, 0.5))} [${ci(pc)}] | ${fmt(q(w, 0.5))} (${fmt(q(w, 0.25))}–${fmt(q(w, 0.75))}) | ${perSecond.toFixed(0)} | ${perSample.toFixed(1)} | ${Number.isFinite(handler) ? handler.toFixed(0) : '—'} | ${self} | ${st[0].mode} |`);
  }
  // Clock against clock at the same rate, paired within a repetition.
  for (const r of RATES) {
    for (const c of CLOCKS.filter((x) => x !== 'auto')) {
      if (!CLOCKS.includes('auto')) continue;
      const a = rawCpu.get(`${r}hz`), b = rawCpu.get(`${r}hz@${c}`);
      const x = a.map((y, i) => y / b[i]);
      const px = proc.get(`${r}hz`).map((y, i) => y / proc.get(`${r}hz@${c}`)[i]);
      console.log(`# sigprof ${r} Hz, default clock (${stats.get(`${r}hz`)[0].mode}) ÷ ${c}, paired per rep: main thread ${fmt(q(x, 0.5))} [95% CI ${ci(x)}]; process ${fmt(q(px, 0.5))} [95% CI ${ci(px)}]`);
    }
  }
  // Head to head: each sigprof rate against @datadog/pprof at the same nominal interval,
  // paired within a repetition (both blocks of the same rep see the same machine).
  for (const us of DATADOG) {
    const hz = 1e6 / us;
    if (!RATES.includes(hz)) continue;
    const a = rawCpu.get(`${hz}hz`), b = rawCpu.get(`datadog-${us}us`);
    const r = a.map((x, i) => x / b[i]);
    const pr = proc.get(`${hz}hz`).map((x, i) => x / proc.get(`datadog-${us}us`)[i]);
    const wins = r.filter((x) => x < 1).length;
    console.log(`# sigprof ${hz} Hz ÷ @datadog/pprof ${us} µs, paired per rep: main thread ${fmt(q(r, 0.5))} [95% CI ${ci(r)}] (sigprof cheaper in ${wins}/${r.length} reps); process ${fmt(q(pr, 0.5))} [95% CI ${ci(pr)}]`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
