'use strict';
/**
 * Heap sampling overhead: an allocation-heavy workload unprofiled vs sigprof's heap sampler
 * (MemProfileRate 512 KiB = the default, and 64 KiB) vs @datadog/pprof's heap profiler at
 * the same intervals; then the time to write a heap profile of a ~500 MB heap.
 *
 *   node bench/heap-overhead.js [--reps 15] [--mb 1500] [--heap-mb 500]
 *
 * Every variant runs in a fresh child process (bench/lib.js), order rotated each
 * repetition, and the figure is the median of paired ratios (variant ÷ unprofiled of the
 * same repetition). Fresh processes are not optional here: V8 has ONE sampling heap
 * profiler per isolate, so sigprof (which starts it when loaded) and @datadog/pprof cannot
 * both run in one process, and a process that had sampling on carries its JIT and heap
 * state into the next variant.
 *
 * Variants:
 *   unprofiled       neither profiler loaded
 *   sigprof-off      sigprof loaded (the whole package, as users load it), MemProfileRate = 0
 *   sigprof-512k     sigprof at the default rate (sampling starts at load, like Go)
 *   sigprof-64k      MemProfileRate = 64 KiB
 *   datadog-512k/64k @datadog/pprof heap.start(interval, 64)
 */
const path = require('node:path');
const { runComparison, childMain, isChild, numOpt, opt, threadCpuNs, sink, ROOT, fmt } = require('./lib');

const VARIANTS = ['unprofiled', 'sigprof-off', 'sigprof-512k', 'sigprof-64k', 'datadog-512k', 'datadog-64k'];

function setup(variant) {
  if (variant === 'unprofiled') return {};
  const m = /^(sigprof|datadog)-(off|\d+)k?$/.exec(variant);
  if (!m) throw new Error(`unknown variant ${variant}`);
  const rate = m[2] === 'off' ? 0 : Number(m[2]) * 1024;
  if (m[1] === 'sigprof') {
    const sigprof = require(ROOT);
    sigprof.runtime.MemProfileRate = rate;
    return { sigprof };
  }
  const dd = require('@datadog/pprof');
  dd.heap.start(rate, 64);
  return { dd };
}

const { workload } = require('./heap-workload');

async function child(variant) {
  const totalMB = numOpt('mb', 1500);
  const ctx = setup(variant);
  workload(50); // warm up the JIT before timing
  const cpu0 = threadCpuNs();
  const t0 = process.hrtime.bigint();
  const acc = workload(totalMB);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpuMs = (threadCpuNs() - cpu0) / 1e6;
  const extra = { acc };
  if (ctx.sigprof) {
    const w = sink();
    const t1 = process.hrtime.bigint();
    await ctx.sigprof.WriteHeapProfile(w);
    extra.writeMs = Number(process.hrtime.bigint() - t1) / 1e6;
    extra.profileBytes = w.bytes;
  }
  if (ctx.dd) ctx.dd.heap.stop();
  return { metrics: { wallMs, cpuMs }, extra };
}

// ---- writing a profile of a ~500 MB heap ----------------------------------------------
// Many distinct stacks (depth × leaf function) so the profile is not a handful of records.
function leaf0(n, out) { for (let i = 0; i < n; i++) out.push(new Array(120).fill(i)); }
function leaf1(n, out) { for (let i = 0; i < n; i++) out.push({ a: i, b: `s${i}`, c: [i, i + 1] }); }
function leaf2(n, out) { for (let i = 0; i < n; i++) out.push(`payload-${i}-`.repeat(8)); }
const LEAVES = [leaf0, leaf1, leaf2];
function descend(depth, k, n, out) { return depth === 0 ? LEAVES[k % 3](n, out) : descend(depth - 1, k, n, out); }

async function heapWriteChild() {
  const targetMB = numOpt('heap-mb', 500);
  const rate = Number(opt('rate', String(512 * 1024)));
  const sigprof = require(ROOT);
  sigprof.runtime.MemProfileRate = rate;
  const keep = [];
  const v8 = require('node:v8');
  let k = 0;
  while (v8.getHeapStatistics().used_heap_size < targetMB * 1024 * 1024) descend(k % 40, k++, 2000, keep);
  const used = v8.getHeapStatistics().used_heap_size;
  const time = async (fn) => { const t = process.hrtime.bigint(); const r = await fn(); return [Number(process.hrtime.bigint() - t) / 1e6, r]; };
  const w = sink();
  const [pbMs] = await time(() => sigprof.WriteHeapProfile(w));
  const [txtMs, txt] = await time(() => sigprof.Lookup('heap').WriteTo(sink(), 1).then(() => null));
  void txt;
  const heapLib = require(path.join(ROOT, 'dist', 'heap'));
  const snap = heapLib.takeHeapSnapshot();
  const [gcPbMs] = await time(() => heapLib.heapProfileSource.render(0, { gc: true }));
  return { usedMB: used / 1048576, rate, records: snap.records.length, samples: snap.records.reduce((t, r) => t + r.liveSamples, 0), pbMs, pbBytes: w.bytes, txtMs, gcPbMs, keep: keep.length };
}

async function main() {
  const reps = numOpt('reps', 15);
  const mb = numOpt('mb', 1500);
  const { ratios } = await runComparison({
    title: `heap sampling overhead: ${mb} MB allocated per run (node bench/heap-overhead.js --reps ${reps} --mb ${mb})`,
    script: __filename,
    variants: VARIANTS,
    baseline: 'unprofiled',
    reps,
    extraArgs: ['--mb', String(mb)],
    metrics: [
      { key: 'cpuMs', label: 'main-thread CPU', unit: 'ms', better: 'lower' },
      { key: 'wallMs', label: 'wall time', unit: 'ms', better: 'lower' },
    ],
    extraColumns: [{ title: 'sigprof: WriteHeapProfile after the run', keys: ['writeMs', 'profileBytes'] }],
  });
  const r = ratios['sigprof-512k'].cpuMs.median;
  console.log(`default rate (512 KiB): median paired CPU ratio ${fmt(r, 4)} (target <= 1.01): ${r <= 1.01 ? 'OK' : 'OVER'}`);

  console.log('\n# writing a heap profile of a ~500 MB heap (one child per rate)');
  const { spawnSync } = require('node:child_process');
  for (const rate of [512 * 1024, 64 * 1024]) {
    const res = spawnSync(process.execPath, ['--max-old-space-size=4096', __filename, '--heap-write', '--rate', String(rate), '--heap-mb', String(numOpt('heap-mb', 500))], { encoding: 'utf8', cwd: ROOT });
    const line = res.stdout.split('\n').find((l) => l.startsWith('{'));
    if (!line) { console.log(`rate ${rate}: failed\n${res.stderr.slice(-2000)}`); continue; }
    const o = JSON.parse(line);
    console.log(`rate ${rate / 1024} KiB: heap ${o.usedMB.toFixed(0)} MB, ${o.samples} live samples in ${o.records} records; WriteHeapProfile (debug 0) ${o.pbMs.toFixed(1)} ms, ${o.pbBytes} bytes; debug=1 text ${o.txtMs.toFixed(1)} ms; debug 0 with gc ${o.gcPbMs.toFixed(1)} ms`);
  }
}

if (process.argv.includes('--heap-write')) {
  heapWriteChild().then((o) => console.log(JSON.stringify(o)), (e) => { console.error(e && e.stack || e); process.exitCode = 1; });
} else if (isChild()) {
  childMain(child);
} else {
  main().catch((e) => { console.error(e && e.stack || e); process.exitCode = 1; });
}
