'use strict';
// API contract and error handling of the CPU profiler.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Writable } = require('node:stream');
const sp = require('..');
const { MemoryWritable, decode, samples } = require('./helpers');

function spin(ms) {
  const end = process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
  let x = 0;
  while (process.hrtime.bigint() < end) x += Math.sqrt(x + 1);
  return x;
}

/**
 * spin() for `ms` of this thread's CPU time rather than wall time: on a loaded machine a
 * 300 ms wall spin got 50 ms of CPU here, 2-5 samples at 100 Hz, too few to rely on.
 */
function spinCpu(ms) {
  const { native } = require('../dist/native');
  const end = native().threadCpuNs() + ms * 1e6;
  let x = 0;
  while (native().threadCpuNs() < end) x += spin(1);
  return x;
}

test('camelCase aliases are the same functions', () => {
  assert.strictEqual(sp.startCPUProfile, sp.StartCPUProfile);
  assert.strictEqual(sp.stopCPUProfile, sp.StopCPUProfile);
  assert.strictEqual(sp.setCPUProfileRate, sp.SetCPUProfileRate);
  assert.strictEqual(sp.cpuProfileStats, sp.CPUProfileStats);
});

test('StartCPUProfile refuses things that are not writable', () => {
  for (const bad of [undefined, null, 42, 'file.pb.gz', {}, { write() {} }]) {
    assert.throws(() => sp.StartCPUProfile(bad), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE');
  }
  assert.strictEqual(sp.CPUProfileStats()?.running ?? false, false);
});

test('SetCPUProfileRate validates and caps; bad values change nothing', () => {
  sp.SetCPUProfileRate(250);
  for (const bad of [NaN, -1, 0, Infinity, -Infinity, '100', null, undefined, {}]) {
    assert.throws(() => sp.SetCPUProfileRate(bad), (e) => e.code === 'ERR_INVALID_RATE');
    assert.strictEqual(sp.CPUProfileRate(), 250);
  }
  sp.SetCPUProfileRate(5e6);
  assert.strictEqual(sp.CPUProfileRate(), 1_000_000);
  sp.SetCPUProfileRate(100);
  assert.strictEqual(sp.CPUProfileRate(), 100);
});

test('StopCPUProfile when idle resolves and does nothing', async () => {
  await sp.StopCPUProfile();
  await sp.StopCPUProfile();
});

test('a second StartCPUProfile throws and leaves the first undisturbed', async () => {
  const first = new MemoryWritable();
  sp.StartCPUProfile(first);
  try {
    const second = new MemoryWritable();
    assert.throws(() => sp.StartCPUProfile(second), (e) => e.code === 'ERR_PROFILE_IN_USE');
    assert.throws(() => sp.SetCPUProfileRate(500), (e) => e.code === 'ERR_PROFILE_IN_USE');
    assert.strictEqual(sp.CPUProfileRate(), 100);
    spinCpu(300); // ~30 timer expirations at 100 Hz of this thread's CPU, whatever the load
  } finally {
    await sp.StopCPUProfile();
  }
  const p = decode(first.buffer());
  assert.ok(p.sample.length > 0, 'the first profile has samples');
  assert.ok(first.writableFinished, 'the stream was ended');
});

test('the profile has Go-compatible types, period, duration and time', async () => {
  const w = new MemoryWritable();
  const before = Date.now();
  sp.StartCPUProfile(w);
  spin(200);
  await sp.StopCPUProfile();
  const p = decode(w.buffer());
  const st = p.stringTable.strings;
  assert.deepStrictEqual(p.sampleType.map((t) => `${st[t.type]}/${st[t.unit]}`), ['samples/count', 'cpu/nanoseconds']);
  assert.strictEqual(`${st[p.periodType.type]}/${st[p.periodType.unit]}`, 'cpu/nanoseconds');
  assert.strictEqual(Number(p.period), 1e7);
  const dur = Number(p.durationNanos);
  assert.ok(dur >= 150e6 && dur < 5e9, `duration ${dur}`);
  const t = Number(BigInt(p.timeNanos) / 1_000_000n);
  assert.ok(t >= before - 5 && t <= Date.now(), 'time is the start time');
  for (const s of samples(p)) assert.strictEqual(s.values[1] % 1e7, 0, 'cpu value is weight × period');
});

test('symbolizing fetches the functions samples name, not every function compiled', async () => {
  // 5,000 compiled functions that never run while profiling: a large application's
  // worth of code the first pull must not fetch (it would stall the event loop).
  const fns = [];
  for (let i = 0; i < 5000; i++) fns.push(new Function('x', `return x + ${i};`));
  let acc = 0;
  for (const f of fns) acc += f(1);
  assert.ok(acc > 0);
  const w = new MemoryWritable();
  sp.StartCPUProfile(w);
  // 300 ms of CPU at 100 Hz is 30 samples. A sample misses spin only when it lands where
  // V8 shows no JS frames (a GC: spin allocates BigInts); even if that were half the time,
  // P(no sample names spin) = 0.5^30 ≈ 1e-9. With a 300 ms wall-clock spin this failed in
  // a suite run on the loaded machine (it got 2-5 samples).
  spinCpu(300);
  await sp.StopCPUProfile();
  const p = decode(w.buffer());
  assert.ok(samples(p).length > 0);
  const known = require('../dist/native').native().cpuStats().functions;
  const fetched = require('../dist/symbolize').symbolizer().fns.size;
  assert.ok(known > 5000, `code map knows ${known} functions`);
  assert.ok(fetched < 1000, `fetched ${fetched} of ${known} functions`);
  assert.ok(p.function.some((f) => p.stringTable.strings[f.name] === 'spin'), 'spin is named');
});

test('a writer that fails makes StopCPUProfile reject with its error; the next profile works', async () => {
  const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  const failing = new Writable({ write(_c, _e, cb) { cb(epipe); } });
  sp.StartCPUProfile(failing);
  spin(50);
  const started = Date.now();
  await assert.rejects(sp.StopCPUProfile(), (e) => e.code === 'EPIPE');
  assert.ok(Date.now() - started < 5000);
  assert.strictEqual(sp.CPUProfileStats().running, false);

  const ok = new MemoryWritable();
  sp.StartCPUProfile(ok);
  spin(50);
  await sp.StopCPUProfile();
  assert.ok(decode(ok.buffer()).sampleType.length === 2);
});

test('an error the stream emits while profiling is reported at stop, not thrown at the process', async () => {
  const w = new MemoryWritable();
  sp.StartCPUProfile(w);
  w.emit('error', Object.assign(new Error('no space'), { code: 'ENOSPC' }));
  spin(20);
  await assert.rejects(sp.StopCPUProfile(), (e) => e.code === 'ENOSPC');
  const again = new MemoryWritable();
  sp.StartCPUProfile(again);
  await sp.StopCPUProfile();
  assert.ok(again.buffer().length > 0);
});

test('a closed file stream rejects instead of hanging', async () => {
  const file = path.join(os.tmpdir(), `sigprof-closed-${process.pid}.pb.gz`);
  const w = fs.createWriteStream(file);
  await new Promise((r) => w.once('open', r));
  sp.StartCPUProfile(w);
  w.destroy();
  await assert.rejects(sp.StopCPUProfile());
  fs.rmSync(file, { force: true });
  assert.strictEqual(sp.CPUProfileStats().running, false);
});

test('writes to a real file that go tool pprof can open', async () => {
  const file = path.join(os.tmpdir(), `sigprof-api-${process.pid}.pb.gz`);
  sp.StartCPUProfile(fs.createWriteStream(file));
  // Thread CPU, not wall time: the timer runs on this thread's CPU clock, so 100 ms of CPU
  // is ~10 expirations at 100 Hz whatever the load. A 100 ms wall spin got under 10 ms of
  // CPU in a suite run on the loaded machine, and no sample.
  spinCpu(100);
  await sp.StopCPUProfile();
  const p = decode(fs.readFileSync(file));
  assert.ok(p.sample.length > 0);
  fs.rmSync(file);
});

test('SIGPROF_CODE_EVENTS=lazy defers the code listener to the first profile and still names functions', () => {
  const { spawnSync } = require('node:child_process');
  const child = `
    const sp = require(${JSON.stringify(path.join(__dirname, '..'))});
    const native = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))}).native();
    const before = native.cpuStats().codeEvents;
    function lazyHot() { let x = 0; for (let i = 0; i < 3e7; i++) x += i % 3; return x; }
    const { Writable } = require('node:stream');
    const chunks = [];
    sp.SetCPUProfileRate(1000);
    sp.StartCPUProfile(new Writable({ write(c, e, cb) { chunks.push(c); cb(); } }));
    const after = native.cpuStats().codeEvents;
    const end = Date.now() + 300; while (Date.now() < end) lazyHot();
    sp.StopCPUProfile().then(() => {
      const text = JSON.stringify(require('pprof-format').Profile.decode(require('node:zlib').gunzipSync(Buffer.concat(chunks))).stringTable.strings);
      console.log(JSON.stringify({ before, after, named: text.includes('lazyHot') }));
    });`;
  const r = spawnSync(process.execPath, ['-e', child], { env: { ...process.env, SIGPROF_CODE_EVENTS: 'lazy' }, encoding: 'utf8', cwd: path.join(__dirname, '..') });
  assert.strictEqual(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.strictEqual(out.before, 0, 'no code events before the first profile');
  assert.ok(out.after > 100, `existing code enumerated at start (${out.after})`);
  assert.ok(out.named, 'the hot function is named');
});
