'use strict';
// Issue 9 items 2 and 4: a user's stream failing around StopCPUProfile never becomes an
// unhandled 'error' (it is the returned promise's rejection), and WriteTo's timeoutMs is
// checked. The stream cases run in a child: an unhandled 'error' kills the process, which
// would take the test runner with it.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const sigprof = require('..');
const { MemoryWritable } = require('./helpers');

const ROOT = path.join(__dirname, '..');

function runChild(src) {
  return spawnSync(process.execPath, ['--no-warnings', '-e', src], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

const CASES = {
  // Stop before the open has failed: the failure arrives while the profile is compressed.
  'stopped at once': 'sp.StopCPUProfile().then(() => console.log("resolved"), (e) => console.log("rejected", e.code));',
  // Stop after the failure: it was held while profiling and is reported at stop.
  'stopped after the open failed': 'setTimeout(() => sp.StopCPUProfile().then(() => console.log("resolved"), (e) => console.log("rejected", e.code)), 50);',
  // The program only swallows the rejection, as in the issue.
  'rejection swallowed': 'sp.StopCPUProfile().catch(() => {}); setTimeout(() => console.log("rejected ENOENT"), 100);',
};

for (const [name, stop] of Object.entries(CASES)) {
  test(`StopCPUProfile on a stream that cannot open: ${name}; the error goes to the promise`, () => {
    const r = runChild(`const sp = require('.'), fs = require('fs');
      sp.StartCPUProfile(fs.createWriteStream('/nonexistent/sigprof-dir/x.pb.gz'));
      ${stop}`);
    assert.equal(r.status, 0, `child died: ${r.stderr}`);
    assert.equal(r.stdout.trim(), 'rejected ENOENT', r.stderr);
  });
}

test('a stream that fails asynchronously during the write rejects StopCPUProfile, no crash', () => {
  const r = runChild(`const sp = require('.'); const { Writable } = require('stream');
    const w = new Writable({ write(c, e, cb) { setImmediate(() => cb(Object.assign(new Error('disk gone'), { code: 'EIO' }))); } });
    sp.StartCPUProfile(w);
    sp.StopCPUProfile().then(() => console.log('resolved'), (e) => console.log('rejected', e.code));`);
  assert.equal(r.status, 0, `child died: ${r.stderr}`);
  assert.equal(r.stdout.trim(), 'rejected EIO', r.stderr);
});

test('WriteTo timeoutMs: -1, 0, NaN, Infinity, 1e12, 1.5 and non-numbers are refused with the valid range', async () => {
  const p = sigprof.Lookup('goroutine');
  for (const bad of [-1, 0, NaN, Infinity, 1e12, 2 ** 31, 1.5, '100', null]) {
    const w = new MemoryWritable();
    await assert.rejects(p.WriteTo(w, 0, { timeoutMs: bad }), (e) => {
      assert.equal(e.code, 'ERR_OUT_OF_RANGE', String(bad));
      assert.match(e.message, /timeoutMs must be an integer number of milliseconds from 1 to 2147483647/);
      return true;
    });
    assert.equal(w.buffer().length, 0, `nothing written for ${bad}`);
  }
  const ok = new MemoryWritable();
  await p.WriteTo(ok, 1, { timeoutMs: 2 ** 31 - 1 });
  assert.ok(ok.buffer().length > 0);
  await p.WriteTo(new MemoryWritable(), 1, { timeoutMs: undefined });
});
