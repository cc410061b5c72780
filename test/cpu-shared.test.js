'use strict';
// One sampler, several readers: the continuous profile (sigprof/pyroscope's) in slices
// with no gap, and StartCPUProfile alongside it.
const test = require('node:test');
const assert = require('node:assert');
const sp = require('..');
const { ContinuousCPUProfile } = require('../dist/cpu');
const { threadCpuNs, MemoryWritable, decode } = require('./helpers');

function burn(ms) {
  const t0 = threadCpuNs();
  let x = 0;
  while (threadCpuNs() - t0 < ms * 1e6) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i);
  return x;
}

const countOf = (p) => p.sample.reduce((n, s) => n + Number(s.value[0]), 0);

test('continuous slices hold every sample exactly once, with a StartCPUProfile running across some of them', async () => {
  const cont = new ContinuousCPUProfile(100);
  const slices = [];
  const user = new MemoryWritable();
  for (let k = 0; k < 6; k++) {
    if (k === 1) sp.StartCPUProfile(user);
    burn(150);
    if (k === 3) await sp.StopCPUProfile();
    slices.push(cont.cut());
  }
  slices.push(cont.stop());
  assert.strictEqual(sp.CPUProfileStats().running, false);
  let decoded = 0;
  let recorded = 0;
  let dropped = 0;
  for (const s of slices) {
    const p = decode(await s.builder.encodeGzip());
    assert.deepStrictEqual(p.sampleType.map((t) => p.stringTable.strings[Number(t.type)]), ['samples', 'cpu']);
    assert.ok(s.endMs >= s.startMs);
    decoded += countOf(p);
    recorded += s.stats.samples;
    dropped += s.stats.dropped;
  }
  // Each slice's counters start where the previous one's end, so their sum is every sample
  // the sampler recorded; the decoded profiles must hold exactly that many (a sample
  // counted twice or lost between slices breaks the equality).
  assert.strictEqual(dropped, 0);
  assert.strictEqual(decoded, recorded);
  // 900 ms of thread CPU at 100 Hz is ~90 samples; the timer is a CPU clock, so far fewer
  // means samples went missing (a binomial-ish count this large is not below 45 by chance).
  assert.ok(recorded >= 45, `recorded ${recorded}`);
  // The user's profile covered ~450 ms of burning: it saw its own samples.
  const up = decode(user.buffer());
  const userCount = countOf(up);
  assert.ok(userCount >= 20 && userCount <= decoded, `user profile had ${userCount} of ${decoded}`);
  // Slices follow each other: each starts no earlier than the previous one ended.
  for (let k = 1; k < slices.length; k++) assert.ok(slices[k].startMs >= slices[k - 1].startMs);
});

test('StartCPUProfile at another rate than the running continuous profile is refused and changes nothing', async () => {
  const cont = new ContinuousCPUProfile(100);
  try {
    sp.SetCPUProfileRate(250);
    assert.throws(() => sp.StartCPUProfile(new MemoryWritable()), (e) => e.code === 'ERR_PROFILE_IN_USE' && /already sampling at 100 Hz/.test(e.message) && /SetCPUProfileRate\(100\)/.test(e.message));
    assert.strictEqual(sp.CPUProfileRate(), 250);
    sp.SetCPUProfileRate(100);
    const w = new MemoryWritable();
    sp.StartCPUProfile(w);
    burn(50);
    await sp.StopCPUProfile();
    assert.ok(decode(w.buffer()).sample.length >= 0);
    // The continuous profile was not disturbed by the user's stop.
    burn(100);
    const last = cont.stop();
    assert.ok(last.stats.samples > 0);
  } finally {
    if (cont.running) cont.stop();
    sp.SetCPUProfileRate(100);
  }
});

test('a continuous profile started while StartCPUProfile runs joins it at its rate; stopping either leaves the other running', async () => {
  sp.SetCPUProfileRate(200);
  const w = new MemoryWritable();
  sp.StartCPUProfile(w);
  const cont = new ContinuousCPUProfile(100);
  try {
    burn(100);
    await sp.StopCPUProfile();
    burn(100);
    const s = cont.stop();
    assert.strictEqual(s.hz, 200);
    assert.ok(s.stats.samples > 0);
    const p = decode(await s.builder.encodeGzip());
    assert.strictEqual(Number(p.period), 5e6);
    assert.strictEqual(countOf(p) > 0, true);
  } finally {
    if (cont.running) cont.stop();
    await sp.StopCPUProfile();
    sp.SetCPUProfileRate(100);
  }
});
