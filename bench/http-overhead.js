'use strict';
/**
 * HTTP overhead: a node:http JSON service (127.0.0.1, random port) in a fresh child
 * process per variant run, driven by
 *   wrk -t1 -c32 -d<duration>s --latency http://127.0.0.1:PORT/
 * after a short unmeasured wrk warm-up (profiler already on). Variants alternate within
 * each repetition, order rotated each repetition.
 *
 *   node bench/http-overhead.js                        # defaults (~2.5 min)
 *   node bench/http-overhead.js --reps 10 --duration 15   # longer
 *   BENCH_REPS=10 BENCH_DURATION=15 node bench/http-overhead.js
 *
 * Reports requests/s ratio (variant ÷ unprofiled; < 1 means fewer requests) and p99 and
 * p50 latency ratios (> 1 means slower), medians of per-repetition paired ratios.
 * Also server main-thread CPU µs per request (/proc/thread-self/schedstat ÷ wrk's request
 * count), which is steadier than throughput on a shared machine.
 * Note: wrk and the server share this machine's cores.
 */
const { spawn } = require('node:child_process');
const lib = require('./lib');

const VARIANTS = ['unprofiled', 'sigprof-100hz', 'datadog-1000us', 'datadog-10000us'];
const DURATION = lib.numOpt('duration', 5); // seconds of measured wrk per variant run
const WARMUP = lib.numOpt('warmup', 1); // seconds of unmeasured wrk first
const CONNECTIONS = lib.numOpt('connections', 32);

function runWrk(port, seconds) {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`];
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk exited ${code}\n${out}`))));
  });
}

function toMs(value, unit) {
  const v = Number(value);
  switch (unit) {
    case 'us': return v / 1000;
    case 'ms': return v;
    case 's': return v * 1000;
    case 'm': return v * 60_000;
    default: throw new Error(`unknown wrk unit ${unit}`);
  }
}

function parseWrk(out) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const reqs = /(\d+) requests in/.exec(out);
  const errs = /Non-2xx or 3xx responses:\s+(\d+)|Socket errors:.*/.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`cannot parse wrk output:\n${out}`);
  return { requests: reqs ? Number(reqs[1]) : NaN, rps: Number(rps[1]), p50Ms: toMs(p50[1], p50[2]), p99Ms: toMs(p99[1], p99[2]), errors: errs ? errs[0] : '' };
}

// ---------------------------------------------------------------- child: the service

async function child(variant) {
  const prof = lib.loadProfiler(variant); // before the handler's code is compiled
  const http = require('node:http');
  const NAMES = ['ada', 'grace', 'linus', 'ken', 'dennis', 'barbara', 'edsger', 'donald'];
  let counter = 0;

  function buildBody(url) {
    counter++;
    const items = [];
    for (let i = 0; i < 20; i++) {
      items.push({ id: counter * 20 + i, name: NAMES[(counter + i) % NAMES.length], score: Math.round(Math.sqrt(counter + i) * 100) / 100, tags: ['a', 'b', String(i % 5)] });
    }
    return JSON.stringify({ ok: true, path: url, n: counter, at: counter * 7, items });
  }

  const server = http.createServer((req, res) => {
    const body = buildBody(req.url);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  lib.startProfiler(prof);
  if (WARMUP > 0) await runWrk(port, WARMUP);
  const cpu0 = process.cpuUsage();
  const th0 = lib.threadCpuNs();
  const r = await runWrk(port, DURATION);
  const th1 = lib.threadCpuNs();
  const cpu = process.cpuUsage(cpu0);
  const extra = await lib.stopProfiler(prof);
  server.close();
  return {
    metrics: { rps: r.rps, p99Ms: r.p99Ms, p50Ms: r.p50Ms, cpuUsPerReq: (th1 - th0) / 1e3 / r.requests },
    extra: { ...extra, serverCpuMs: (cpu.user + cpu.system) / 1000, wrkErrors: r.errors },
  };
}

// ---------------------------------------------------------------- parent

async function main() {
  const reps = lib.numOpt('reps', 5);
  const variants = String(lib.opt('variants', VARIANTS.join(','))).split(',');
  await lib.runComparison({
    title: `http-overhead: node:http JSON service, wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency (after ${WARMUP}s warm-up)`,
    script: __filename,
    variants,
    baseline: 'unprofiled',
    reps,
    extraArgs: ['--duration', String(DURATION), '--warmup', String(WARMUP), '--connections', String(CONNECTIONS)],
    metrics: [
      { key: 'rps', label: 'requests/s', unit: 'req/s', better: 'higher' },
      { key: 'p99Ms', label: 'p99 latency', unit: 'ms', better: 'lower' },
      { key: 'p50Ms', label: 'p50 latency', unit: 'ms', better: 'lower' },
      { key: 'cpuUsPerReq', label: 'server main-thread CPU per request', unit: 'µs', better: 'lower' },
    ],
    extraColumns: [{ title: 'profiler figures', keys: ['samples', 'dropped', 'deliveredHz', 'handlerNsMean', 'handlerNsMax', 'serverCpuMs'] }],
  });
}

if (lib.isChild()) lib.childMain(child);
else main().catch((e) => { console.error(e); process.exit(1); });
