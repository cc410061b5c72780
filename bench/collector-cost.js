'use strict';
/**
 * What sigprof's own threads (the collector; the timer thread under the `thread` clock)
 * cost in a fresh process, where the first profile pays one-time work: reading the node
 * binary's symbol table, prefaulting the ring, first resolutions. Each child profiles a
 * fixed amount of work from its first iteration on and reports
 * CPUProfileStats().helperThreadsCostFraction and its process CPU; an unprofiled child
 * runs in every repetition, and the order of the variants rotates per repetition.
 *
 *   node bench/collector-cost.js [--reps 5] [--rates 100,1000] [--workload mixed|math]
 *                                [--iters 300] [--addons old.node,new.node]
 *
 * --addons: compare builds (each is passed as SIGPROF_ADDON); default: this checkout's.
 * Process CPU ratio = the child's process.cpuUsage() from just before StartCPUProfile to
 * after StopCPUProfile ÷ the unprofiled child's over the same work: it includes stopping
 * and encoding the profile, once per process. For steady state (JIT warm, no one-time
 * work) see bench/sampling-overhead.js, whose table has the same own-threads column.
 */
const { spawnSync } = require('node:child_process');
const lib = require('./lib');

const WORKLOAD = String(lib.opt('workload', 'mixed'));
const ITERS = lib.numOpt('iters', WORKLOAD === 'math' ? 1000 : 300);

function mathIteration() {
  let x = 0;
  for (let i = 1; i < 400000; i++) x += Math.sqrt(i) / (i & 7 | 1);
  return x;
}

async function child(hz) {
  const sp = require('..');
  const { Writable } = require('node:stream');
  const iteration = WORKLOAD === 'math' ? mathIteration : require('./cpu-workload').iteration;
  const p0 = process.cpuUsage();
  if (hz) {
    sp.SetCPUProfileRate(hz);
    sp.StartCPUProfile(new Writable({ write(_c, _e, cb) { cb(); } }));
  }
  let check = 0;
  for (let i = 0; i < ITERS; i++) check += iteration();
  if (hz) await sp.StopCPUProfile();
  const p = process.cpuUsage(p0);
  const s = hz ? sp.CPUProfileStats() : null;
  console.log(JSON.stringify({ procNs: (p.user + p.system) * 1000, samples: s ? s.samples : 0, ownNs: s ? s.helperThreadsCpuNanos : 0, own: s ? s.helperThreadsCostFraction : 0, mode: s ? s.mode : '', check: check !== 0 }));
}

function main() {
  const reps = lib.numOpt('reps', 5);
  const rates = String(lib.opt('rates', '100,1000')).split(',').map(Number);
  const addons = String(lib.opt('addons', '')).split(',').filter(Boolean);
  const builds = addons.length ? addons : [''];
  const variants = [{ name: 'off', hz: 0, addon: builds[0] }];
  for (const hz of rates) for (const addon of builds) variants.push({ name: `${addon ? `${addon} ` : ''}${hz} Hz`, hz, addon });
  const got = new Map(variants.map((v) => [v.name, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(k + rep) % variants.length];
      const env = { ...process.env };
      if (v.addon) env.SIGPROF_ADDON = v.addon;
      const r = spawnSync(process.execPath, [__filename, '--child', String(v.hz), '--workload', WORKLOAD, '--iters', String(ITERS)], { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child ${v.name} failed: ${r.stderr}`);
      got.get(v.name)[rep] = JSON.parse(r.stdout.trim().split('\n').pop());
    }
  }
  const q = lib.quantile;
  const off = got.get('off');
  console.log(`# collector cost in fresh processes (${WORKLOAD} workload, ${ITERS} iterations profiled from the first), ${reps} reps, node ${process.version}`);
  console.log('| variant | own threads ÷ profiled CPU: median (min–max) | own-thread CPU, ms | samples | µs per sample | process CPU ratio: median (min–max) | mode |');
  console.log('|---|--:|--:|--:|--:|--:|---|');
  for (const v of variants.slice(1)) {
    const xs = got.get(v.name);
    const own = xs.map((x) => x.own * 100), ms = xs.map((x) => x.ownNs / 1e6), n = xs.map((x) => x.samples);
    const ratio = xs.map((x, i) => x.procNs / off[i].procNs);
    const f = (a, d) => `${q(a, 0.5).toFixed(d)} (${Math.min(...a).toFixed(d)}–${Math.max(...a).toFixed(d)})`;
    console.log(`| ${v.name} | ${f(own, 3)}% | ${q(ms, 0.5).toFixed(1)} | ${q(n, 0.5).toFixed(0)} | ${((q(ms, 0.5) * 1000) / q(n, 0.5)).toFixed(1)} | ${f(ratio, 4)} | ${xs[0].mode} |`);
  }
}

if (process.argv.includes('--child')) {
  const hz = Number(process.argv[process.argv.indexOf('--child') + 1]);
  child(hz).catch((e) => { console.error(e); process.exit(1); });
} else {
  main();
}
