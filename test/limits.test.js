'use strict';
// Issue 9 items 4 and 11: rates that cannot be honoured are refused with a code and the
// valid range; more threads than the handler's slot table get ERR_TOO_MANY_THREADS.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const sp = require('..');

test('SetCPUProfileRate refuses what cannot be honoured (Go: whole Hz >= 1), naming the range; changes nothing', () => {
  sp.SetCPUProfileRate(100);
  for (const bad of [1e-11, 0.5, 1.5, 99.9, -5, 0, NaN, Infinity, -Infinity, '100']) {
    assert.throws(() => sp.SetCPUProfileRate(bad), (e) => e.code === 'ERR_INVALID_RATE' && /whole number of Hz from 1 to 1000000/.test(e.message), String(bad));
    assert.strictEqual(sp.CPUProfileRate(), 100);
  }
  sp.SetCPUProfileRate(1);
  assert.strictEqual(sp.CPUProfileRate(), 1);
  sp.SetCPUProfileRate(1e12); // whole but above 1 MHz: capped, as Go caps it
  assert.strictEqual(sp.CPUProfileRate(), 1_000_000);
  sp.SetCPUProfileRate(100);
});

test('the native start refuses rates outside [1, 1e6] Hz itself (no UB in 1e9 / hz)', () => {
  const { native } = require('../dist/native.js');
  for (const bad of [1e-11, 0, -1, NaN, Infinity, 2e6]) {
    assert.throws(() => native().cpuStart(bad), (e) => e.code === 'ERR_INVALID_RATE', String(bad));
  }
  assert.strictEqual(sp.CPUProfileStats()?.running ?? false, false);
});

test('SetBlockProfileRate refuses Infinity, NaN, negative and huge thresholds; 0 turns it off', () => {
  for (const bad of [Infinity, -Infinity, NaN, -1, -1e9, 2 ** 60, '1000']) {
    assert.throws(() => sp.SetBlockProfileRate(bad), (e) => e.code === 'ERR_INVALID_RATE' && /from 0 \(off\)/.test(e.message), String(bad));
  }
  const { native } = require('../dist/native.js');
  for (const bad of [Infinity, NaN, -1, 1e300]) {
    assert.throws(() => native().loopStart(bad), (e) => e.code === 'ERR_INVALID_RATE', String(bad));
  }
  sp.SetBlockProfileRate(0);
});

test('68 Workers profiling at once: 64 slots; the rest get ERR_TOO_MANY_THREADS and stay alive', () => {
  // In a fresh process so that no other thread of the test runner holds a slot.
  const script = `
    const { Worker } = require('node:worker_threads');
    const N = 68;
    const code = \`
      const { parentPort } = require('node:worker_threads');
      const sp = require(${JSON.stringify(path.join(__dirname, '..'))});
      const { Writable } = require('node:stream');
      let result;
      try { sp.StartCPUProfile(new Writable({ write(c, e, cb) { cb(); } })); result = 'ok'; }
      catch (e) { result = e.code + ' ' + e.message; }
      parentPort.postMessage(result);
      parentPort.once('message', async () => { if (result === 'ok') await sp.StopCPUProfile(); parentPort.postMessage('stopped'); });
    \`;
    const workers = [], results = [];
    let n = 0;
    for (let i = 0; i < N; i++) {
      const w = new Worker(code, { eval: true });
      workers.push(w);
      w.once('message', (r) => { results.push(r); if (++n === N) done(); });
      w.on('error', (e) => { console.error(e); process.exit(2); });
    }
    function done() {
      let stopped = 0;
      for (const w of workers) {
        w.on('message', () => { if (++stopped === N) { console.log(JSON.stringify(results)); for (const x of workers) x.terminate(); } });
        w.postMessage('stop');
      }
    }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.strictEqual(r.status, 0, r.stderr);
  const results = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.strictEqual(results.length, 68);
  assert.strictEqual(results.filter((x) => x === 'ok').length, 64);
  const refused = results.filter((x) => x !== 'ok');
  assert.strictEqual(refused.length, 4);
  for (const x of refused) assert.match(x, /^ERR_TOO_MANY_THREADS .*at most 64 threads/);
});
