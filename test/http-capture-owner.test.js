'use strict';
// Issue 9 item 7: /debug/pprof/profile only ever stops the profile it started.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const sigprof = require('..');
const { handler } = require('../dist/http.js');
const { MemoryWritable, decode } = require('./helpers');

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

test('profile: the app stops and restarts its own profile mid-capture; the capture leaves it running and answers 500', async () => {
  await withServer(async (base, server) => {
    const started = new Promise((resolve) => server.once('request', resolve));
    const capture = get(`${base}/debug/pprof/profile?seconds=2`);
    await started;
    assert.equal(sigprof.CPUProfileStats().running, true);
    // The application takes the profiler over: stops the capture's profile, starts its own.
    await sigprof.StopCPUProfile();
    const mine = new MemoryWritable();
    sigprof.StartCPUProfile(mine);
    const r = await capture;
    assert.equal(r.status, 500, r.body.toString());
    assert.match(r.body.toString(), /stopped by the application .* during the 2 s capture/);
    // The application's profile was not touched: still running, nothing written to it yet.
    assert.equal(sigprof.CPUProfileStats().running, true);
    assert.equal(mine.buffer().length, 0);
    await sigprof.StopCPUProfile();
    decode(mine.buffer());
  });
});

test('profile: the app stops the capture\'s profile and starts none; the answer is a 500, not a short 200', async () => {
  await withServer(async (base, server) => {
    const started = new Promise((resolve) => server.once('request', resolve));
    const capture = get(`${base}/debug/pprof/profile?seconds=1`);
    await started;
    await sigprof.StopCPUProfile();
    const r = await capture;
    assert.equal(r.status, 500, r.body.toString());
    assert.equal(sigprof.CPUProfileStats().running, false);
    // And the next capture works.
    const ok = await get(`${base}/debug/pprof/profile?seconds=1`);
    assert.equal(ok.status, 200);
    decode(ok.body);
  });
});
