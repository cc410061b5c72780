'use strict';
// A server that fails in every way must not hurt the service: over 100 short intervals
// memory stays bounded, the uploader never holds the event loop for more than a few ms of
// this thread's CPU, and the counters say what was dropped and why.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const { execFile } = require('node:child_process');
const Pyroscope = require('../pyroscope.js');
const { startRecorder } = require('./pyroscope-recorder');

const DRIVER = path.join(__dirname, 'fixtures', 'pyroscope-failure-driver.js');
const MAX_PENDING = 8;

/** A port nothing listens on: bound, then closed. */
async function deadPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Runs the driver (100 intervals of 20 ms) against `url` in its own process. */
function drive(url, maxPending = MAX_PENDING) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [DRIVER, url, String(maxPending)], { timeout: 60_000 }, (err, out, stderr) => {
      if (err) return reject(new Error(`driver failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(out));
    });
  });
}

function common(r, label) {
  // Bounded: never more profiles waiting than configured, whatever the server does.
  assert.ok(r.maxPending <= r.maxPendingAllowed, `${label}: ${r.maxPending} pending`);
  // 90 intervals of profiles (~2-4 KB each, two per interval) kept by a leak would be far
  // more than this; what remains is the bounded queue and V8's own noise after a GC.
  assert.ok(r.heapGrowth < 3 * 1024 * 1024, `${label}: heap grew ${(r.heapGrowth / 1024).toFixed(0)} KiB`);
  // This thread's own CPU between two 1 ms ticks (~1,800 ticks over the 90 measured
  // intervals). What the uploader could do wrong — wait for a server, retry in a loop,
  // encode a queue synchronously — would recur every interval, in 90+ ticks (5%), so the
  // 99th percentile catches it (the longest gaps seen on a quiet machine were 3-7 ms).
  // The single longest gap also holds V8's own
  // pauses (a mark-compact, an optimizing compile on this thread): 37 ms seen once in a
  // fresh clone, so it only has to stay far below a blocking send (hundreds of ms).
  assert.ok(r.p99GapMs < 10, `${label}: 99th percentile of loop holds ${r.p99GapMs.toFixed(2)} ms of CPU over ${r.ticks} ticks`);
  assert.ok(r.maxGapMs < 150, `${label}: the loop was held for ${r.maxGapMs.toFixed(2)} ms of CPU`);
  // stop() is bounded by stopTimeoutMs (300 ms) plus the request timeout it may abort.
  assert.ok(r.stopMs < 1500, `${label}: stop took ${r.stopMs} ms`);
  assert.strictEqual(r.stats.running, false);
  assert.strictEqual(r.stats.pending, 0);
  assert.strictEqual(r.stats.buildErrors, 0);
  // Every profile made is accounted for: sent or dropped for a stated reason.
  const made = 2 * (r.stats.intervals);
  const accounted = r.stats.sent + r.stats.droppedQueueFull + r.stats.droppedFailed + r.stats.droppedRejected + r.stats.droppedAtStop;
  assert.strictEqual(accounted, made, `${label}: ${JSON.stringify(r.stats)}`);
  // Each kind of trouble is reported once, never per interval.
  const codes = r.warnings.map((w) => w.code);
  assert.strictEqual(new Set(codes).size, codes.length, `${label}: ${codes}`);
}

test('a healthy server gets every profile, and the loop is not held', async () => {
  const rec = await startRecorder('ok', { light: true });
  try {
    // A queue of 64 (32 intervals, 640 ms): with 8, a stall of this shared machine longer
    // than 80 ms would drop profiles a healthy server could have taken, which is the
    // queue doing its job, not what this test is about.
    const r = await drive(rec.url, 64);
    common(r, 'ok');
    assert.strictEqual(r.stats.sent, 2 * r.stats.intervals, JSON.stringify(r.stats));
    assert.strictEqual(r.warnings.length, 0);
    assert.strictEqual(rec.requests.length, r.stats.sent);
  } finally {
    await rec.close();
  }
});

test('500: retried with backoff, then dropped and counted; one warning', async () => {
  const rec = await startRecorder('500', { light: true });
  try {
    const r = await drive(rec.url);
    common(r, '500');
    assert.strictEqual(r.stats.sent, 0);
    assert.ok(r.stats.retries > 0);
    assert.ok(r.stats.droppedFailed + r.stats.droppedQueueFull > 0);
    assert.match(r.stats.lastError, /^HTTP 500: internal error/);
    // Backoff: far fewer requests than 2 per interval with 3 retries each.
    assert.ok(rec.requests.length < 2 * r.stats.intervals, `${rec.requests.length} requests`);
  } finally {
    await rec.close();
  }
});

test('429 with Retry-After: the next attempt waits at least that long', async () => {
  const rec = await startRecorder('429', { retryAfter: 1, light: true });
  try {
    const r = await drive(rec.url);
    common(r, '429');
    assert.strictEqual(r.stats.sent, 0);
    assert.ok(r.stats.droppedQueueFull > 0, 'the queue filled while waiting, oldest dropped');
    const at = rec.requests.map((q) => q.at);
    // Timer slop is late, never early: each retry came >= 1 s after the 429 (10 ms for clock granularity).
    for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] >= 990, `gap ${at[i] - at[i - 1]} ms`);
    assert.ok(r.stats.retries >= 1);
  } finally {
    await rec.close();
  }
});

test('401: not retried, logged once with the server\'s message', async () => {
  const rec = await startRecorder('401', { light: true });
  try {
    const r = await drive(rec.url);
    common(r, '401');
    // A 401 is never retried. The driver's 200 ms request timeout can still expire on a
    // loaded machine before the answer is read, and a timeout is retried: so every retry
    // must be owed to a timeout, and every request beyond one per rejected profile too.
    assert.ok(r.stats.retries <= r.stats.timeouts, `${r.stats.retries} retries, ${r.stats.timeouts} timeouts`);
    assert.ok(r.stats.droppedRejected > 0);
    assert.ok(rec.requests.length >= r.stats.droppedRejected, `${rec.requests.length} requests`);
    assert.ok(rec.requests.length <= r.stats.droppedRejected + r.stats.timeouts, `${rec.requests.length} requests, ${r.stats.droppedRejected} rejected, ${r.stats.timeouts} timeouts`);
    const rej = r.warnings.filter((w) => w.code === 'SIGPROF_PYROSCOPE_REJECTED');
    assert.strictEqual(rej.length, 1);
    assert.match(rej[0].message, /HTTP 401: invalid token: tenant "acme" unknown/);
  } finally {
    await rec.close();
  }
});

test('a server that never answers: requests time out, memory and the loop stay fine', async () => {
  const rec = await startRecorder('hang', { light: true });
  try {
    const r = await drive(rec.url);
    common(r, 'hang');
    assert.strictEqual(r.stats.sent, 0);
    assert.ok(r.stats.timeouts > 0);
    assert.strictEqual(r.stats.lastError, 'timeout');
  } finally {
    await rec.close();
  }
});

test('a server that closes the connection: retried, dropped, counted', async () => {
  const rec = await startRecorder('close', { light: true });
  try {
    const r = await drive(rec.url);
    common(r, 'close');
    assert.strictEqual(r.stats.sent, 0);
    assert.ok(r.stats.retries > 0);
    assert.match(r.stats.lastError, /ECONNRESET|socket hang up/);
  } finally {
    await rec.close();
  }
});

test('nothing listening: ECONNREFUSED, retried, dropped, counted', async () => {
  const port = await deadPort();
  const r = await drive(`http://127.0.0.1:${port}`);
  common(r, 'refused');
  assert.strictEqual(r.stats.sent, 0);
  assert.strictEqual(r.stats.lastError, 'ECONNREFUSED');
  assert.ok(r.warnings.some((w) => w.code === 'SIGPROF_PYROSCOPE_FAILED' || w.code === 'SIGPROF_PYROSCOPE_DROPPED'));
});

test('bad config is refused with every reason at once and starts nothing', () => {
  assert.throws(() => Pyroscope.init({ appName: 'a{b', flushIntervalMs: 1.5, tags: { 'x=y': 1, ok: {} }, serverAddress: 'ftp://x' }), (e) => {
    for (const part of ['appName must not contain', 'flushIntervalMs must be an integer', 'tag key "x=y"', 'tag "ok"', 'http: or https:']) assert.ok(e.message.includes(part), `${part} in ${e.message}`);
    return e instanceof TypeError;
  });
  assert.strictEqual(Pyroscope.stats(), null, 'nothing was configured');
});

for (const [how, code] of [
  ['without stop(): the push does not keep it alive', ''],
  ['with await stop(): bounded by stopTimeoutMs', 'await P.stop();'],
]) {
  test(`a program whose server hangs still exits on time, ${how}`, async () => {
    const rec = await startRecorder('hang', { light: true });
    try {
      // Requests would wait 60 s for an answer: only the unref'd sockets and stop()'s
      // 500 ms deadline let the program go sooner.
      const src = `(async () => {
        const P = require(${JSON.stringify(path.join(__dirname, '..', 'pyroscope.js'))});
        P.start({ serverAddress: ${JSON.stringify(rec.url)}, appName: 'exit', flushIntervalMs: 100, uploadTimeoutMs: 60000, stopTimeoutMs: 500, warn() {} });
        await new Promise((r) => setTimeout(r, 400));
        const t = Date.now();
        ${code}
        process.stdout.write(String(Date.now() - t));
      })();`;
      const t0 = Date.now();
      const out = await new Promise((resolve, reject) => execFile(process.execPath, ['-e', src], { timeout: 30_000 }, (e, o, se) => (e ? reject(new Error(`${e.message} ${se}`)) : resolve(o))));
      const total = Date.now() - t0;
      assert.ok(rec.requests.length >= 1, 'an upload was in flight');
      if (code) assert.ok(Number(out) >= 450 && Number(out) < 2000, `stop() took ${out} ms`);
      // Node's start-up on a loaded machine is most of this; a hanging upload would be 60 s.
      assert.ok(total < 10_000, `the program took ${total} ms`);
    } finally {
      await rec.close();
    }
  });
}
