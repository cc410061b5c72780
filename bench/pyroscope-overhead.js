'use strict';
/**
 * What always-on continuous profiling costs a node:http JSON service: sigprof/pyroscope
 * pushing (100 Hz CPU, 512 KiB heap sampling, the default 60 s interval) against the same
 * service with sigprof's profilers off. Same method as bench/http-paired-overhead.js: two
 * identical servers side by side on CPU 0, each driven by its own wrk on CPU 1, roles
 * swapped every window, ratios per pair of windows (geometric mean of the two), median
 * with a distribution-free 95% CI.
 *
 * In its "on" role a server has heap sampling at 512 KiB and the push running, started at
 * the window's start; at the window's end the push is stopped, which cuts, encodes and
 * uploads its interval. So every window carries one full interval's work (CPU profile,
 * heap profile, two uploads to a local server) although it is far shorter than the
 * 60 s default: an upper bound on the per-interval cost. In its "off" role heap sampling
 * is off (runtime.MemProfileRate = 0) and nothing samples; sigprof stays loaded (its code
 * listener costs only when code is compiled, which a warmed-up service does not do).
 *
 *   node bench/pyroscope-overhead.js [--pairs 15] [--window 4] [--heap-rate 524288]
 *                                    [--push 0] [--heap-via dd]
 *
 * --heap-rate 0 measures the push with heap sampling off in both roles (CPU profile
 * only), which tells the push's own cost from V8's heap sampler's. --push 0 runs heap
 * sampling alone in the "on" role (no CPU profile, no uploads); with --heap-via dd that
 * sampler is started by @datadog/pprof (what @pyroscope/nodejs uses: V8's sampler with
 * no GC hook of sigprof's), to tell V8's share from sigprof's. A longer --window spreads
 * the one interval per window over more time (--window 16: 4x the 60 s default's rate).
 */
const { fork, spawn, execFileSync } = require('node:child_process');
const http = require('node:http');
const lib = require('./lib');

if (process.argv[2] === '--server') {
  server(process.argv[3], Number(process.argv[4]), process.argv[5] === '1');
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}

function server(ingest, heapRate, push) {
  // --heap-via dd: the reference client's heap sampler (V8's, started by @datadog/pprof,
  // no GC hook) instead of sigprof's, to tell V8's share from sigprof's.
  const dd = process.env.BENCH_HEAP_VIA === 'dd' ? require('@datadog/pprof') : null;
  const sp = require('..');
  const Pyroscope = require('../pyroscope.js');
  const service = require('./json-service').createJsonService();
  const srv = service.server;
  sp.runtime.MemProfileRate = 0;
  Pyroscope.init({ serverAddress: ingest, appName: 'bench', heapEnabled: heapRate > 0, warn: () => {} });
  process.on('message', async (m) => {
    if (m.op === 'start') {
      if (m.on) {
        if (dd) dd.heap.start(heapRate, 64);
        else sp.runtime.MemProfileRate = heapRate;
        if (push) Pyroscope.start();
      }
      process.send({ op: 'started' });
    } else if (m.op === 'counters') {
      process.send({ op: 'counters', served: service.served, cpu: lib.threadCpuNs() });
    } else if (m.op === 'stop') {
      if (m.on) {
        if (push) await Pyroscope.stop();
        if (dd) dd.heap.stop();
        else sp.runtime.MemProfileRate = 0;
      }
      process.send({ op: 'stopped', stats: m.on && push ? Pyroscope.stats() : null });
    } else if (m.op === 'exit') {
      srv.close();
      process.exit(0);
    }
  });
  srv.listen(0, '127.0.0.1', () => process.send({ op: 'listening', port: srv.address().port }));
}

const request = lib.childRequest;

async function main() {
  const REPS = 2 * lib.numOpt('pairs', 15);
  const WINDOW_S = lib.numOpt('window', 4);
  const HEAP_RATE = lib.numOpt('heap-rate', 512 * 1024);
  const PUSH = lib.numOpt('push', 1);
  if (lib.opt('heap-via', 'sigprof') === 'dd') process.env.BENCH_HEAP_VIA = 'dd';
  let uploads = 0;
  const ingest = http.createServer((req, res) => { req.resume(); req.on('end', () => { uploads++; res.end(); }); });
  await new Promise((r) => ingest.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${ingest.address().port}`;
  const servers = [];
  for (let k = 0; k < 2; k++) {
    const child = fork(__filename, ['--server', url, String(HEAP_RATE), String(PUSH)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const { port } = await new Promise((r) => child.once('message', r));
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(child.pid)], { stdio: 'ignore' });
    servers.push({ child, port });
  }
  const total = Math.ceil(REPS * (WINDOW_S + 1) + 10);
  const wrks = servers.map((s) => spawn('taskset', ['-c', '1', 'wrk', '-t1', '-c16', `-d${total}s`, `http://127.0.0.1:${s.port}/`], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 3000));
  const rps = [], cpr = [], stats = [];
  for (let rep = 0; rep < REPS; rep++) {
    const on = servers[rep % 2], off = servers[1 - (rep % 2)];
    await request(on.child, { op: 'start', on: true }, 'started');
    await request(off.child, { op: 'start', on: false }, 'started');
    const [a0, b0] = await Promise.all([request(on.child, { op: 'counters' }, 'counters'), request(off.child, { op: 'counters' }, 'counters')]);
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const stopped = request(on.child, { op: 'stop', on: true }, 'stopped');
    // The stop (cut, encode, upload) is inside the window: its cost counts.
    const st = await stopped;
    const [a1, b1] = await Promise.all([request(on.child, { op: 'counters' }, 'counters'), request(off.child, { op: 'counters' }, 'counters')]);
    await request(off.child, { op: 'stop', on: false }, 'stopped');
    const nOn = a1.served - a0.served, nOff = b1.served - b0.served;
    rps.push(nOn / nOff);
    cpr.push(((a1.cpu - a0.cpu) / nOn) / ((b1.cpu - b0.cpu) / nOff));
    if (st.stats) stats.push(st.stats);
  }
  for (const w of wrks) w.kill();
  for (const s of servers) s.child.send({ op: 'exit' });
  ingest.close();
  const q = lib.quantile;
  const pair = (xs) => xs.filter((_, i) => i % 2 === 0 && i + 1 < xs.length).map((x, k) => Math.sqrt(x * xs[2 * k + 1]));
  const f = (raw) => { const x = pair(raw); return `${q(x, 0.5).toFixed(4)} [${lib.medianCI(x).map((v) => v.toFixed(4)).join('–')}] (IQR ${q(x, 0.25).toFixed(4)}–${q(x, 0.75).toFixed(4)})`; };
  console.log(`# node:http JSON service, sigprof/pyroscope push on (100 Hz CPU, heap sampling ${HEAP_RATE > 0 ? `every ${HEAP_RATE} bytes` : 'off'}, one interval per window) vs off; two servers side by side on CPU 0, one wrk -t1 -c16 each on CPU 1, ${REPS / 2} pairs of ${WINDOW_S} s windows (node ${process.version})`);
  console.log('| measure | push on ÷ off, per pair of windows: median [95% CI] |');
  console.log('|---|--:|');
  console.log(`| requests/s | ${f(rps)} |`);
  console.log(`| main-thread CPU per request | ${f(cpr)} |`);
  const sent = stats.reduce((n, s) => n + s.sent, 0);
  console.log(`# uploads received ${uploads}, profiles the push reported sent ${sent}; longest synchronous interval step (median over windows) ${q(stats.map((s) => s.maxStepMs), 0.5).toFixed(2)} ms`);
}
