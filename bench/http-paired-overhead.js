'use strict';
/**
 * What CPU profiling costs a node:http JSON service, measured with the machine's noise
 * cancelled: two identical server processes run side by side, both pinned to CPU 0 (so
 * the scheduler gives each half of that core), each driven by its own wrk pinned to
 * CPU 1. In every window one server profiles at --hz and the other does not; the roles
 * swap every repetition. Both servers see the same moment of the machine (the same
 * steal, the same cache pressure from the host), so the per-window ratios
 *
 *   requests/s (profiled) ÷ requests/s (unprofiled)
 *   main-thread CPU per request (profiled) ÷ (unprofiled)
 *
 * vary far less than ratios of windows taken one after the other (bench/http-sampling-
 * overhead.js, where the host alone moves CPU per request by ±20% between windows).
 * The two servers are not exactly alike (one is often ~1% faster, whichever it is), so
 * the unit is a pair of consecutive windows with the roles swapped: the geometric mean
 * of its two ratios cancels any fixed difference between the servers. Reported: median
 * over pairs with a distribution-free 95% confidence interval.
 *
 *   node bench/http-paired-overhead.js [--pairs 30] [--window 2] [--hz 100]
 *   node bench/http-paired-overhead.js --a sigprof:1000 --b datadog:1000    (head to head)
 *   node bench/http-paired-overhead.js --service promise --a sigprof:100+labels --b sigprof:100
 *
 * --a / --b name what the two roles run: `off`, `sigprof:<Hz>` or `datadog:<µs>`
 * (`off+labels`: labels with no profile running, where they install no hook)
 * (@datadog/pprof's time profiler at that interval); by default a = sigprof at --hz,
 * b = off. `+labels` adds profile labels: every request runs in Do(Labels(...)), and the
 * labels' hook is removed again when the window ends, so the roles can swap; `+als` runs
 * every request in an AsyncLocalStorage of the bench's own instead (the request context
 * many services already have), to tell the store's cost from the labels' own. Ratios are
 * a ÷ b. `+ph` / `+ah` install bare hooks with empty bodies (v8.promiseHooks before/after;
 * an async hook with before/after and trackPromises: false), to tell the hook machinery's
 * cost from the labels' own (docs/labels.md). --service json (default) or promise
 * (bench/json-service.js).
 */
const { fork, spawn, execFileSync } = require('node:child_process');
const lib = require('./lib');

if (process.argv[2] === '--server') {
  server();
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}

function server() {
  const sp = require('..');
  const { Writable } = require('node:stream');
  let labelsOn = false, als = null, bare = [];
  const services = require('./json-service');
  const service = lib.opt('service', 'json') === 'promise' ? services.createPromiseService(() => labelsOn, () => als) : services.createJsonService();
  const srv = service.server;
  const counters = () => ({ served: service.served, cpu: lib.threadCpuNs() });
  let dd = null;
  process.on('message', async (m) => {
    if (m.op === 'start') {
      const [base, extra] = m.variant.split('+');
      const [kind, value] = base.split(':');
      labelsOn = extra === 'labels';
      if (extra === 'als') als = new (require('node:async_hooks').AsyncLocalStorage)();
      // Bare hooks with empty bodies, to tell the hook machinery's cost from the labels'.
      if (extra === 'ph') bare = [require('node:v8').promiseHooks.onBefore(() => {}), require('node:v8').promiseHooks.onAfter(() => {})];
      if (extra === 'ah') { const h = require('node:async_hooks').createHook({ before() {}, after() {}, trackPromises: false }).enable(); bare = [() => h.disable()]; }
      if (kind === 'sigprof') {
        sp.SetCPUProfileRate(Number(value));
        sp.StartCPUProfile(new Writable({ write(_c, _e, cb) { cb(); } }));
      } else if (kind === 'datadog') {
        dd ??= require('@datadog/pprof');
        dd.time.start({ intervalMicros: Number(value) });
      }
      process.send({ op: 'started' });
    } else if (m.op === 'counters') {
      process.send({ op: 'counters', ...counters() });
    } else if (m.op === 'stop') {
      const kind = m.variant.split('+')[0].split(':')[0];
      if (kind === 'sigprof') await sp.StopCPUProfile();
      if (kind === 'datadog') dd.time.stop();
      if (labelsOn) {
        labelsOn = false;
        require('../dist/labels.js').resetLabels();
      }
      if (als) {
        als.disable();
        als = null;
      }
      for (const stop of bare) stop();
      bare = [];
      process.send({ op: 'stopped', stats: kind === 'sigprof' ? sp.CPUProfileStats() : null });
    } else if (m.op === 'exit') {
      srv.close();
      process.exit(0);
    }
  });
  srv.listen(0, '127.0.0.1', () => process.send({ op: 'listening', port: srv.address().port }));
}

const request = lib.childRequest;

async function main() {
  const REPS = 2 * lib.numOpt('pairs', 30);
  const WINDOW_S = lib.numOpt('window', 2);
  const HZ = lib.numOpt('hz', 100);
  const A = String(lib.opt('a', `sigprof:${HZ}`));
  const B = String(lib.opt('b', 'off'));
  for (const v of [A, B]) {
    if (!/^((off|sigprof:\d+(\.\d+)?)(\+labels|\+als|\+ph|\+ah)?|datadog:\d+)$/.test(v)) throw new Error(`--a/--b: expected off[+labels|+als], sigprof:<Hz>[+labels|+als] or datadog:<µs>, got ${v}`);
  }
  try { execFileSync('wrk', ['--version'], { stdio: 'ignore' }); } catch (e) {
    if (e.code === 'ENOENT') { console.error('wrk not found (apt-get install wrk)'); process.exit(1); }
  }
  const servers = [];
  const wrks = [];
  // A server that dies mid-run (a crash, a signal) would leave this process awaiting its
  // reply with no handle keeping the loop alive: it then exited silently, the other
  // server and the wrk clients left running. Say which one died and how, and clean up.
  let finished = false;
  const cleanup = () => {
    for (const w of wrks) if (w.exitCode === null) w.kill();
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill();
  };
  process.on('exit', cleanup);
  for (let k = 0; k < 2; k++) {
    const child = fork(__filename, ['--server', '--service', String(lib.opt('service', 'json'))], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('exit', (code, signal) => {
      if (finished) return;
      console.error(`server ${k} (pid ${child.pid}) exited during the bench: code ${code}, signal ${signal}`);
      process.exit(1);
    });
    const { port } = await new Promise((r) => child.once('message', r));
    // Every thread of the server process on CPU 0: the profiler's helper threads, if
    // any, compete with the server they belong to, as they would in production.
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(child.pid)], { stdio: 'ignore' });
    servers.push({ child, port });
  }
  const total = Math.ceil(REPS * (WINDOW_S + 1) + 10);
  for (const s of servers) wrks.push(spawn('taskset', ['-c', '1', 'wrk', '-t1', '-c16', `-d${total}s`, `http://127.0.0.1:${s.port}/`], { stdio: 'ignore' }));
  // wrk runs for a fixed time computed from the windows; if the run takes longer (slow
  // starts and stops on a loaded machine), the windows after it would measure idle servers.
  for (const w of wrks) w.on('exit', () => { if (!finished) { console.error('wrk finished before the bench did: its duration was too short for this machine'); process.exit(1); } });
  await new Promise((r) => setTimeout(r, 3000)); // warm-up under load
  const rps = [], cpr = [], self = [];
  const ratioOfOffs = []; // unprofiled A ÷ unprofiled B, to show the two servers are alike
  for (let rep = 0; rep < REPS; rep++) {
    const on = servers[rep % 2], off = servers[1 - (rep % 2)];
    await request(on.child, { op: 'start', variant: A }, 'started');
    await request(off.child, { op: 'start', variant: B }, 'started');
    const [a0, b0] = await Promise.all([request(on.child, { op: 'counters' }, 'counters'), request(off.child, { op: 'counters' }, 'counters')]);
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const [a1, b1] = await Promise.all([request(on.child, { op: 'counters' }, 'counters'), request(off.child, { op: 'counters' }, 'counters')]);
    const { stats } = await request(on.child, { op: 'stop', variant: A }, 'stopped');
    await request(off.child, { op: 'stop', variant: B }, 'stopped');
    const nOn = a1.served - a0.served, nOff = b1.served - b0.served;
    rps.push(nOn / nOff);
    cpr.push(((a1.cpu - a0.cpu) / nOn) / ((b1.cpu - b0.cpu) / nOff));
    if (stats) self.push(stats);
  }
  // The same pairing with neither profiling: how alike the two servers are.
  for (let rep = 0; rep < Math.min(10, REPS); rep++) {
    const [a0, b0] = await Promise.all(servers.map((s) => request(s.child, { op: 'counters' }, 'counters')));
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const [a1, b1] = await Promise.all(servers.map((s) => request(s.child, { op: 'counters' }, 'counters')));
    ratioOfOffs.push((a1.served - a0.served) / (b1.served - b0.served));
  }
  finished = true;
  for (const w of wrks) w.kill();
  for (const s of servers) s.child.send({ op: 'exit' });
  const q = lib.quantile;
  const pair = (xs) => xs.filter((_, i) => i % 2 === 0 && i + 1 < xs.length).map((x, k) => Math.sqrt(x * xs[2 * k + 1]));
  const f = (raw) => { const x = pair(raw); return `${q(x, 0.5).toFixed(4)} [${lib.medianCI(x).map((v) => v.toFixed(4)).join('–')}] (IQR ${q(x, 0.25).toFixed(4)}–${q(x, 0.75).toFixed(4)})`; };
  console.log(`# node:http ${lib.opt('service', 'json')} service, two servers side by side on CPU 0 (one wrk -t1 -c16 each, on CPU 1), ${REPS / 2} pairs of windows of ${WINDOW_S} s, a = ${A}, b = ${B}, roles swapped every window (node ${process.version})`);
  console.log(`| measure | a ÷ b (${A} ÷ ${B}), per pair of windows: median [95% CI] |`);
  console.log('|---|--:|');
  console.log(`| requests/s | ${f(rps)} |`);
  console.log(`| main-thread CPU per request | ${f(cpr)} |`);
  if (self.length) console.log(`| sigprof's self-measured time on the main thread ÷ profiled CPU | ${(q(self.map((s) => s.selfCostFraction), 0.5) * 100).toFixed(3)}% (signal handler ${q(self.map((s) => s.handlerNsMean), 0.5).toFixed(0)} ns × ${q(self.map((s) => s.samples), 0.5)} samples per window) |`);
  console.log(`# control, neither profiling (server A ÷ B requests/s, ${ratioOfOffs.length} windows): ${q(ratioOfOffs, 0.5).toFixed(4)} (IQR ${q(ratioOfOffs, 0.25).toFixed(4)}–${q(ratioOfOffs, 0.75).toFixed(4)})`);
}
