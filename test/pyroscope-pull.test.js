'use strict';
// Grafana Alloy's pull alongside the push: pyroscope.scrape's default targets answer 200
// application/octet-stream with a pprof body while sigprof/pyroscope pushes, and the CPU
// scrape and the push interval share the one sampler (both see the same burn).
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const zlib = require('node:zlib');
const { Profile } = require('pprof-format');
const sigprofHttp = require('../dist/http');
const Pyroscope = require('../pyroscope.js');
const { startRecorder } = require('./pyroscope-recorder');
const { threadCpuNs } = require('./helpers');

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

function decode(body) {
  const raw = body[0] === 0x1f && body[1] === 0x8b ? zlib.gunzipSync(body) : body;
  return Profile.decode(raw);
}

/** Total samples of `fn` (by name, anywhere in the stack) in a CPU profile. */
function samplesIn(p, fn) {
  const st = p.stringTable.strings;
  const fnIds = new Set(p.function.filter((f) => st[Number(f.name)] === fn).map((f) => Number(f.id)));
  const locIds = new Set(p.location.filter((l) => l.line.some((ln) => fnIds.has(Number(ln.functionId)))).map((l) => Number(l.id)));
  return p.sample.filter((s) => s.locationId.some((id) => locIds.has(Number(id)))).reduce((n, s) => n + Number(s.value[0]), 0);
}

function burnForScrape(ms) {
  const t0 = threadCpuNs();
  let x = 0;
  while (threadCpuNs() - t0 < ms * 1e6) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i);
  return x;
}

test('Alloy\'s scrape targets answer 200 application/octet-stream while push is on, sharing the CPU profiler', async () => {
  const rec = await startRecorder('ok');
  const server = await sigprofHttp.listen({ port: 0 });
  const base = `http://127.0.0.1:${server.address().port}/debug/pprof`;
  Pyroscope.init({ serverAddress: rec.url, appName: 'pull', flushIntervalMs: 1000 });
  Pyroscope.start();
  try {
    // The CPU target (Alloy asks seconds=14; 3 keeps the test short) while the process burns
    // CPU in slices, so timers (the push interval, the capture's end) still run.
    const scrape = get(`${base}/profile?seconds=3`);
    // Burning starts once the capture has (the request reached the server).
    await new Promise((r) => setTimeout(r, 200));
    const until = Date.now() + 2300;
    let burntMs = 0;
    while (Date.now() < until) {
      const t = threadCpuNs();
      burnForScrape(30);
      burntMs += (threadCpuNs() - t) / 1e6;
      await new Promise((r) => setImmediate(r));
    }
    const cpu = await scrape;
    assert.strictEqual(cpu.status, 200, cpu.body.toString());
    assert.strictEqual(cpu.type, 'application/octet-stream');
    const cp = decode(cpu.body);
    const scraped = samplesIn(cp, 'burnForScrape');
    // At 100 Hz of CPU time, burntMs of burning is burntMs/10 samples expected (at least
    // ~50 even on a loaded machine); under half of that would mean the scrape lost its
    // share to the push (a Poisson count this size is below half its mean with p < 1e-4).
    const expected = burntMs / 10;
    assert.ok(expected >= 30, `only ${burntMs.toFixed(0)} ms burnt`);
    assert.ok(scraped > expected / 2, `scrape saw ${scraped} samples of burnForScrape, ${expected.toFixed(0)} expected`);
    for (const name of ['allocs', 'block', 'goroutine', 'mutex', 'heap']) {
      const r = await get(`${base}/${name}`);
      assert.strictEqual(r.status, 200, `${name}: ${r.body}`);
      assert.strictEqual(r.type, 'application/octet-stream', name);
      assert.ok(decode(r.body).sampleType.length > 0, `${name} decodes as pprof`);
    }
    await Pyroscope.stop();
    const st = Pyroscope.stats();
    assert.strictEqual(st.droppedQueueFull + st.droppedFailed + st.droppedRejected + st.droppedAtStop, 0, JSON.stringify(st));
    // The push saw the same burn: every CPU sample of it went to the push too.
    let pushed = 0;
    for (const r of rec.requests) {
      const p = decode(r.body);
      if (p.sampleType.some((t) => p.stringTable.strings[Number(t.type)] === 'cpu')) pushed += samplesIn(p, 'burnForScrape');
    }
    assert.ok(pushed >= scraped, `push ${pushed} < scrape ${scraped}: the push missed samples the scrape had`);
  } finally {
    await Pyroscope.stop();
    server.close();
    await rec.close();
  }
});
