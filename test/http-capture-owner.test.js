'use strict';
// /debug/pprof/profile is a reader of the shared CPU sampler (issue 14, pull): it answers
// 200 with the samples of its own window while the program's StartCPUProfile runs, and
// nothing the program does to its own profile ends the capture (issue 9 item 7: the
// capture only ever stops what it started, which is now its own reader).
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const sigprof = require('..');
const { handler } = require('../dist/http.js');
const { samplerReaders } = require('../dist/cpu.js');
const { MemoryWritable, decode, threadCpuNs } = require('./helpers');

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

async function withServer(fn) {
  const server = http.createServer(handler());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`, server);
  } finally {
    server.close();
  }
}

/** Samples (value[0]) whose stack names `fn` anywhere. */
function samplesIn(p, fn) {
  const st = p.stringTable.strings;
  const fnIds = new Set(p.function.filter((f) => st[Number(f.name)] === fn).map((f) => Number(f.id)));
  const locIds = new Set(p.location.filter((l) => l.line.some((ln) => fnIds.has(Number(ln.functionId)))).map((l) => Number(l.id)));
  return p.sample.filter((s) => s.locationId.some((id) => locIds.has(Number(id)))).reduce((n, s) => n + Number(s.value[0]), 0);
}

// Three functions with their own loops (not one shared helper, which could be inlined
// away): which of them a profile holds says which part of the run it covered.
function beforeWindow(ms) {
  const t0 = threadCpuNs();
  let x = 0;
  while (threadCpuNs() - t0 < ms * 1e6) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i);
  return x;
}
function duringWindow(ms) {
  const t0 = threadCpuNs();
  let x = 0;
  while (threadCpuNs() - t0 < ms * 1e6) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i);
  return x;
}
function afterWindow(ms) {
  const t0 = threadCpuNs();
  let x = 0;
  while (threadCpuNs() - t0 < ms * 1e6) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i);
  return x;
}

test('profile: a capture while the program\'s StartCPUProfile runs answers 200 with its window\'s samples; the program\'s profile keeps all of its own', async () => {
  await withServer(async (base, server) => {
    const mine = new MemoryWritable();
    sigprof.StartCPUProfile(mine);
    try {
      beforeWindow(150);
      // Listeners run in order: once this one fired, the handler's reader has joined.
      const started = new Promise((resolve) => server.once('request', resolve));
      // 3 s: on a loaded machine (or under ASan) the thread gets a fraction of a core.
      const capture = get(`${base}/debug/pprof/profile?seconds=3`);
      await started;
      assert.equal(samplerReaders(), 2);
      // Burn only while the capture's reader is there (it leaves on the server's timer,
      // between two of these slices), so every duringWindow sample is inside its window.
      let burnt = 0;
      while (samplerReaders() === 2) {
        const t = threadCpuNs();
        duringWindow(20);
        burnt += threadCpuNs() - t;
        await new Promise((r) => setImmediate(r));
      }
      const r = await capture;
      assert.equal(r.status, 200, r.body.toString());
      afterWindow(150);
      const cp = decode(r.body);
      assert.equal(sigprof.CPUProfileStats().running, true, 'the capture left the program\'s profile running');
      await sigprof.StopCPUProfile();
      const up = decode(mine.buffer());

      // The capture holds its window only: joining and leaving take every sample up to
      // that moment (the ring is flushed), so the functions run before and after it have
      // none, exactly.
      assert.equal(samplesIn(cp, 'beforeWindow'), 0);
      assert.equal(samplesIn(cp, 'afterWindow'), 0);
      const inCapture = samplesIn(cp, 'duringWindow');
      // At 100 Hz of thread CPU, `burnt` ns is burnt/1e7 samples expected; below half of
      // it (with at least 20 expected) would mean the capture lost samples to the program's
      // reader (a Poisson count is below half its mean with p < 0.02 at 20, far less above).
      const expected = burnt / 1e7;
      assert.ok(expected >= 20, `only ${(burnt / 1e6).toFixed(0)} ms burnt in the window`);
      assert.ok(inCapture >= expected / 2, `capture: ${inCapture} samples of duringWindow, ${expected.toFixed(0)} expected`);
      // The program's profile has every sample of its own span, the capture's included (a
      // sample belongs to every reader there when it was taken).
      assert.equal(samplesIn(up, 'duringWindow'), inCapture);
      assert.ok(samplesIn(up, 'beforeWindow') > 0, 'the program\'s profile lost what came before the capture');
      assert.ok(samplesIn(up, 'afterWindow') > 0, 'the program\'s profile lost what came after the capture');
      assert.equal(samplerReaders(), 0);
    } finally {
      await sigprof.StopCPUProfile();
    }
  });
});

test('profile: the program stopping and restarting its own profile mid-capture leaves the capture alone', async () => {
  await withServer(async (base, server) => {
    const started = new Promise((resolve) => server.once('request', resolve));
    const capture = get(`${base}/debug/pprof/profile?seconds=2`);
    await started;
    // The capture is not the program's profile: there is none to stop.
    assert.equal(sigprof.CPUProfileStats()?.running ?? false, false);
    await sigprof.StopCPUProfile();
    assert.equal(samplerReaders(), 1);
    const first = new MemoryWritable();
    sigprof.StartCPUProfile(first);
    await sigprof.StopCPUProfile();
    decode(first.buffer());
    const mine = new MemoryWritable();
    sigprof.StartCPUProfile(mine);
    const r = await capture;
    assert.equal(r.status, 200, r.body.toString());
    decode(r.body);
    // The program's second profile was not touched: still running, nothing written yet.
    assert.equal(sigprof.CPUProfileStats().running, true);
    assert.equal(mine.buffer().length, 0);
    await sigprof.StopCPUProfile();
    decode(mine.buffer());
    assert.equal(samplerReaders(), 0);
  });
});

test('profile: the capture samples at the rate the sampler runs at, and a program profile at another rate is refused while it runs', async () => {
  await withServer(async (base, server) => {
    // The program profiles at 250 Hz: a capture joins at 250 Hz and its period says so.
    sigprof.SetCPUProfileRate(250);
    const mine = new MemoryWritable();
    sigprof.StartCPUProfile(mine);
    try {
      const r = await get(`${base}/debug/pprof/profile?seconds=1`);
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(Number(decode(r.body).period), 4_000_000);
    } finally {
      await sigprof.StopCPUProfile();
    }
    assert.equal(Number(decode(mine.buffer()).period), 4_000_000);
    // A capture alone starts the sampler at SetCPUProfileRate's rate (here 250 Hz, then
    // 100); a program profile asking for another rate meanwhile is refused, naming it.
    sigprof.SetCPUProfileRate(100);
    const started = new Promise((resolve) => server.once('request', resolve));
    const capture = get(`${base}/debug/pprof/profile?seconds=1`);
    await started;
    try {
      sigprof.SetCPUProfileRate(250);
      assert.throws(() => sigprof.StartCPUProfile(new MemoryWritable()), (e) => e.code === 'ERR_PROFILE_IN_USE' && /already sampling at 100 Hz/.test(e.message) && /\/debug\/pprof\/profile capture/.test(e.message));
    } finally {
      sigprof.SetCPUProfileRate(100);
    }
    const r = await capture;
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(Number(decode(r.body).period), 10_000_000);
  });
});
