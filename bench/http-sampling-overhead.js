'use strict';
/**
 * What CPU profiling at 100 Hz costs a node:http JSON service, measured in one process:
 * wrk drives the server on loopback for the whole run while the server alternates
 * fixed windows with the profiler off and on (order rotated per repetition). For each
 * window the server counts the requests it answered and its main thread's CPU time;
 * the figures are the medians of paired ratios (on ÷ off of the same repetition) of
 * requests/s and of main-thread CPU per request, with the IQR. Bounded: one wrk run of
 * reps × 2 × window seconds against 127.0.0.1 only.
 *
 *   node bench/http-sampling-overhead.js [--reps 20] [--window 1.5] [--hz 100]
 */
const sp = require('..');
const { createJsonService } = require('./json-service');
const { spawn, execFileSync } = require('node:child_process');
const { Writable } = require('node:stream');
const lib = require('./lib');

const REPS = lib.numOpt('reps', 20);
const WINDOW_S = lib.numOpt('window', 1.5);
const HZ = lib.numOpt('hz', 100);
// Pinning wrk to one core and the server's main thread to the other keeps them from
// trading places on this 2-core machine, the largest source of window-to-window noise.
const PIN = lib.opt('pin', '1') !== '0';

const service = createJsonService();
const server = service.server;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function window(on) {
  if (on) {
    sp.SetCPUProfileRate(HZ);
    sp.StartCPUProfile(new Writable({ write(_c, _e, cb) { cb(); } }));
  }
  const n0 = service.served, c0 = lib.threadCpuNs(), t0 = process.hrtime.bigint();
  await sleep(WINDOW_S * 1000);
  const n = service.served - n0, cpu = lib.threadCpuNs() - c0, wall = Number(process.hrtime.bigint() - t0);
  let self = NaN;
  if (on) {
    await sp.StopCPUProfile(); // outside the window: encoding is not serving cost
    self = sp.CPUProfileStats().selfCostFraction;
  }
  return { rps: n / (wall / 1e9), cpuPerReq: cpu / Math.max(1, n), self };
}

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  const total = Math.ceil(REPS * 2 * WINDOW_S + 6);
  try { execFileSync('wrk', ['--version'], { stdio: 'ignore' }); } catch (e) { if (e.code === 'ENOENT') { console.error('wrk not found (apt-get install wrk)'); process.exit(1); } }
  const wrkArgs = ['-t1', '-c32', `-d${total}s`, `http://127.0.0.1:${port}/`];
  const wrk = PIN ? spawn('taskset', ['-c', '1', 'wrk', ...wrkArgs], { stdio: 'ignore' }) : spawn('wrk', wrkArgs, { stdio: 'ignore' });
  // The process id is the main thread's id: only the main thread is pinned.
  if (PIN) execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  wrk.on('error', (e) => { console.error(`wrk: ${e.message} (apt-get install wrk)`); process.exit(1); });
  await sleep(2000); // warm-up under load
  const rps = [], cpr = [], self = [];
  for (let r = 0; r < REPS; r++) {
    const order = r % 2 ? [true, false] : [false, true];
    const got = {};
    for (const on of order) got[on] = await window(on);
    rps.push(got.true.rps / got.false.rps);
    cpr.push(got.true.cpuPerReq / got.false.cpuPerReq);
    self.push(got.true.self);
  }
  wrk.kill();
  server.close();
  const quantile = lib.quantile;
  const f = (x) => `${quantile(x, 0.5).toFixed(4)} [${lib.medianCI(x).map((v) => v.toFixed(4)).join('–')}] (${quantile(x, 0.25).toFixed(4)}–${quantile(x, 0.75).toFixed(4)})`;
  console.log(`# node:http JSON service under wrk -t1 -c32, ${REPS} reps of ${WINDOW_S} s windows, sigprof ${HZ} Hz on vs off, one process${PIN ? ', wrk pinned to CPU 1 and the server main thread to CPU 0' : ''} (node ${process.version})`);
  console.log('| measure | on ÷ off, median [95% CI] (IQR) |');
  console.log('|---|--:|');
  console.log(`| requests/s | ${f(rps)} |`);
  console.log(`| server main-thread CPU per request | ${f(cpr)} |`);
  console.log(`| profiler's self-measured time on the main thread (handler + pulls) ÷ profiled CPU | ${(quantile(self, 0.5) * 100).toFixed(3)}% (IQR ${(quantile(self, 0.25) * 100).toFixed(3)}–${(quantile(self, 0.75) * 100).toFixed(3)}%) |`);
});
