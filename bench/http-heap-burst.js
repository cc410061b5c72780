'use strict';
/**
 * Issue 9 item 6: how long the event loop of a process holding a ~40 MB heap is blocked
 * when many clients ask for its heap profile at once, and what that costs in memory.
 *
 *   node bench/http-heap-burst.js [--reps 3] [--n 200] [--dist DIR,DIR2] [--scenarios one,gc1,plain,pipe]
 *
 * Each repetition runs every build given with --dist (default: this checkout's dist/) in
 * a fresh server process, in rotated order. The server measures itself with
 * perf_hooks.monitorEventLoopDelay (1 ms resolution): `maxBlockMs` is the longest time
 * the loop could not run a timer during the scenario. Scenarios:
 *   gc1   N concurrent GET /debug/pprof/heap?gc=1 (one connection each)
 *   plain N concurrent GET /debug/pprof/heap
 *   pipe  1000 pipelined GET /debug/pprof/heap on 100 sockets that never read; RSS after 3 s
 * Prints one JSON line per run and the per-build medians.
 */
const { fork } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

function opt(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}

if (process.argv[2] === '--server') {
  // ---------------------------------------------------------------- server child
  const dist = process.argv[3];
  const { monitorEventLoopDelay } = require('node:perf_hooks');
  const sigprof = require(path.join(dist, 'index.js'));
  const { handler } = require(path.join(dist, 'http.js'));
  // Computations actually made (each WriteTo of the heap profile is one snapshot).
  let computations = 0;
  const heapProfile = sigprof.Lookup('heap');
  const writeTo = heapProfile.WriteTo;
  heapProfile.WriteTo = function (...args) { computations++; return writeTo.apply(this, args); };
  const retained = [];
  // ~40 MB of small objects and strings, allocated from one function.
  (function retain() {
    for (let i = 0; i < 200_000; i++) retained.push({ id: i, name: `object number ${i}`, tags: [i, i + 1] });
  })();
  const h = monitorEventLoopDelay({ resolution: 1 });
  const server = http.createServer(handler());
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port, heapMB: process.memoryUsage().heapUsed / 2 ** 20 }));
  process.on('message', (m) => {
    if (m === 'start') { h.reset(); h.enable(); computations = 0; process.send('started'); }
    if (m === 'stop') {
      h.disable();
      process.send({ computations, maxBlockMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, rssMB: process.memoryUsage().rss / 2 ** 20, maxRssMB: process.resourceUsage().maxRSS / 1024 });
    }
  });
  return;
}

function ask(child, msg) {
  return new Promise((resolve) => { child.once('message', resolve); child.send(msg); });
}

function burst(port, pathName, n) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  return Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: pathName, agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject);
  }))).finally(() => agent.destroy());
}

async function pipe(port) {
  const sockets = [];
  for (let i = 0; i < 100; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    sockets.push(s);
    s.pause(); // never reads
    s.write('GET /debug/pprof/heap HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(10));
  }
  await new Promise((r) => setTimeout(r, 3000));
  return sockets;
}

async function runOnce(dist, scenario, n) {
  const child = fork(__filename, ['--server', dist], { env: { ...process.env, SIGPROF_ADDON: path.join(ROOT, 'build', 'Release', 'sigprof.node') }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port, heapMB } = await new Promise((resolve) => child.once('message', resolve));
  await ask(child, 'start');
  const t0 = Date.now();
  let sockets = [];
  if (scenario === 'one') await burst(port, '/debug/pprof/heap?gc=1', 1);
  else if (scenario === 'gc1') await burst(port, '/debug/pprof/heap?gc=1', n);
  else if (scenario === 'plain') await burst(port, '/debug/pprof/heap', n);
  else sockets = await pipe(port);
  const wallMs = Date.now() - t0;
  const stats = await ask(child, 'stop');
  for (const s of sockets) s.destroy();
  child.kill();
  return { dist: path.relative(ROOT, dist) || dist, scenario, n, heapMB: Math.round(heapMB), wallMs, ...stats };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

(async () => {
  const reps = Number(opt('reps', 3));
  const n = Number(opt('n', 200));
  const dists = opt('dist', path.join(ROOT, 'dist')).split(',').map((d) => path.resolve(d));
  const scenarios = opt('scenarios', 'one,gc1,plain,pipe').split(',');
  const all = [];
  for (let r = 0; r < reps; r++) {
    for (const scenario of scenarios) {
      const order = dists.map((_, i) => dists[(i + r) % dists.length]);
      for (const d of order) {
        const res = await runOnce(d, scenario, n);
        console.log(JSON.stringify(res));
        all.push(res);
      }
    }
  }
  console.log('\nmedians over', reps, 'repetitions:');
  for (const scenario of scenarios) {
    for (const d of dists) {
      const rs = all.filter((x) => x.scenario === scenario && x.dist === (path.relative(ROOT, d) || d));
      const f = (k) => median(rs.map((x) => x[k])).toFixed(0);
      console.log(`${scenario.padEnd(6)} ${(path.relative(ROOT, d) || d).padEnd(30)} computations ${f('computations')}  maxBlockMs ${f('maxBlockMs')}  wallMs ${f('wallMs')}  rssMB ${f('rssMB')}  maxRssMB ${f('maxRssMB')}`);
    }
  }
})();
