'use strict';
// `sigprof run --push URL -- node app.js`: an unmodified program pushes to Pyroscope, and
// the last interval is sent however it ends.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const zlib = require('node:zlib');
const { execFile } = require('node:child_process');
const { Profile } = require('pprof-format');
const { startRecorder } = require('./pyroscope-recorder');

const BIN = path.join(__dirname, '..', 'bin', 'sigprof.js');

function run(args, env = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'run', ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

const APP = `
function spin() { let x = 0; for (let i = 0; i < 1e6; i++) x += i; return x; }
const t = Date.now();
(function f() { spin(); if (Date.now() - t < 700) setImmediate(f); else if (process.env.EXIT_CODE) process.exit(Number(process.env.EXIT_CODE)); })();
`;

for (const [how, env] of [['its event loop drains', {}], ['it calls process.exit(3)', { EXIT_CODE: '3' }]]) {
  test(`sigprof run --push sends every interval and the last one when ${how}`, async () => {
    const rec = await startRecorder('ok');
    try {
      const r = await run(['--push', rec.url, '--', 'node', '-e', APP], { ...env, PYROSCOPE_APPLICATION_NAME: 'runapp', PYROSCOPE_FLUSH_INTERVAL_MS: '250' });
      assert.strictEqual(r.code, env.EXIT_CODE ? 3 : 0, r.stderr);
      const cpu = rec.requests.filter((q) => q.query.sampleRate !== undefined);
      const heap = rec.requests.filter((q) => q.query.sampleRate === undefined);
      assert.ok(cpu.length >= 2 && heap.length >= 2, `${cpu.length} cpu, ${heap.length} heap`);
      for (const q of rec.requests) assert.match(q.query.name, /^runapp\{/);
      // spin() ran for ~0.7 s: it is in the pushed CPU profiles, the last interval included.
      const names = cpu.map((q) => { const p = Profile.decode(zlib.gunzipSync(q.body)); return p.stringTable.strings; });
      assert.ok(names.some((st) => st.includes('spin')));
    } finally {
      await rec.close();
    }
  });
}

test('sigprof run --push refuses what is not an http(s) URL', async () => {
  const r = await run(['--push', 'pyroscope:4040', '--', 'node', '-e', '1']);
  assert.strictEqual(r.code, 2, r.stderr);
  assert.match(r.stderr, /--push must be an http:\/\/ or https:\/\/ URL/);
});

test('stopSync() in an exit handler sends the last interval (and what was pending) from a child process, bounded', async () => {
  const rec = await startRecorder('ok');
  try {
    const src = `
      const P = require(${JSON.stringify(path.join(__dirname, '..', 'pyroscope.js'))});
      P.start({ serverAddress: ${JSON.stringify(rec.url)}, appName: 'sync', flushIntervalMs: 60000, stopTimeoutMs: 3000 });
      process.on('exit', () => { const n = P.stopSync(); process.stdout.write(JSON.stringify({ n, stats: P.stats() })); });
      function spinUntilExit() { let x = 0; for (let i = 0; i < 1e6; i++) x += i; return x; }
      const t = Date.now(); while (Date.now() - t < 400) spinUntilExit();
      process.exit(3);`;
    const out = await new Promise((resolve) => execFile(process.execPath, ['-e', src], { timeout: 30_000 }, (e, o) => resolve({ code: e ? e.code : 0, o })));
    assert.strictEqual(out.code, 3);
    const { n, stats } = JSON.parse(out.o);
    // One interval, cut at exit: its CPU and heap profiles, both accepted.
    assert.strictEqual(n, 2);
    assert.strictEqual(stats.sent, 2);
    assert.strictEqual(rec.requests.length, 2);
    const cpu = rec.requests.find((q) => q.query.sampleRate !== undefined);
    assert.ok(Profile.decode(zlib.gunzipSync(cpu.body)).stringTable.strings.includes('spinUntilExit'));
    assert.match(cpu.query.name, /^sync\{/);
  } finally {
    await rec.close();
  }
});
