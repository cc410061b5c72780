'use strict';
// wrapWithLabels, @pyroscope/nodejs's label helper, on top of sigprof's Do/Labels. Where
// this build has profile labels, the pushed CPU samples of the wrapped work carry them;
// where it has none, the function still runs (with its arguments and result) and a
// single warning says labels are missing.
const test = require('node:test');
const assert = require('node:assert');
const zlib = require('node:zlib');
const { Profile } = require('pprof-format');
const sp = require('..');
const Pyroscope = require('../pyroscope.js');
const { startRecorder } = require('./pyroscope-recorder');
const { threadCpuNs } = require('./helpers');

function labelledWork(ms) {
  const t0 = threadCpuNs();
  let x = 0;
  while (threadCpuNs() - t0 < ms * 1e6) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i);
  return x;
}

test('wrapWithLabels runs the function with its arguments, returns its value, and labels its CPU samples when sigprof has labels', async () => {
  const rec = await startRecorder('ok');
  const warnings = [];
  const onWarning = (w) => { if (w.code === 'SIGPROF_NO_LABELS') warnings.push(w); };
  process.on('warning', onWarning);
  try {
    Pyroscope.init({ serverAddress: rec.url, appName: 'labels', flushIntervalMs: 60_000 });
    Pyroscope.start();
    const results = [];
    for (let k = 0; k < 3; k++) results.push(Pyroscope.wrapWithLabels({ route: '/checkout', shard: 7 }, (a, b) => { labelledWork(100); return a + b; }, 40, 2));
    await Pyroscope.stop();
    assert.deepStrictEqual(results, [42, 42, 42]);
    assert.throws(() => Pyroscope.wrapWithLabels({ a: 'b' }, 'not a function'), TypeError);
    await new Promise((r) => setImmediate(r));
    const cpu = rec.requests.filter((q) => q.query.sampleRate !== undefined);
    assert.strictEqual(cpu.length, 1);
    const p = Profile.decode(zlib.gunzipSync(cpu[0].body));
    const st = p.stringTable.strings;
    const labelled = p.sample.filter((s) => s.label.some((l) => st[Number(l.key)] === 'route' && st[Number(l.str)] === '/checkout'));
    if (typeof sp.Do === 'function') {
      // ~300 ms of CPU in the wrapped function at 100 Hz: ~30 samples, all labelled; 10 is
      // far below what a Poisson count of mean 30 gives (p < 1e-4).
      const n = labelled.reduce((a, s) => a + Number(s.value[0]), 0);
      assert.ok(n >= 10, `${n} labelled samples`);
      assert.strictEqual(warnings.length, 0);
      // The thread label rides along with the user's (issue 14: labels and `thread` stay on the samples).
      for (const s of labelled) {
        assert.ok(s.label.some((l) => st[Number(l.key)] === 'thread' && st[Number(l.str)] === 'main'), 'thread=main on a labelled sample');
      }
      assert.ok(p.sample.every((s) => s.label.some((l) => st[Number(l.key)] === 'thread')), 'every pushed CPU sample says its thread');
    } else {
      assert.strictEqual(labelled.length, 0);
      assert.strictEqual(warnings.length, 1, 'warned once, not per call');
    }
  } finally {
    process.off('warning', onWarning);
    await Pyroscope.stop();
    await rec.close();
  }
});

test('a pushed CPU profile holds the Workers\' samples, each under its own thread label and its own Do labels', async () => {
  const { Worker } = require('node:worker_threads');
  const rec = await startRecorder('ok');
  try {
    Pyroscope.init({ serverAddress: rec.url, appName: 'workers', flushIntervalMs: 60_000 });
    Pyroscope.start();
    // 300 ms of the Worker's own thread CPU at 100 Hz: ~30 samples; 10 is far below a
    // Poisson count of mean 30 (p < 1e-4).
    const w = new Worker(`
      const fs = require('node:fs');
      const cpu = () => Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
      function pushedWorkerBurn() { const t0 = cpu(); let x = 0; while (cpu() - t0 < 300e6) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i); return x; }
      // The Worker's own Do label reaches the push too (docs/workers.md, "Labels").
      const { Do, Labels } = require(${JSON.stringify(require('node:path').join(__dirname, '..'))});
      Do(Labels('job', 'pushed-worker'), pushedWorkerBurn);
    `, { eval: true });
    const tid = w.threadId;
    await new Promise((resolve, reject) => { w.on('exit', resolve); w.on('error', reject); });
    await Pyroscope.stop();
    const cpu = rec.requests.filter((q) => q.query.sampleRate !== undefined);
    assert.strictEqual(cpu.length, 1);
    const p = Profile.decode(zlib.gunzipSync(cpu[0].body));
    const st = p.stringTable.strings;
    const fnName = new Map(p.function.map((f) => [String(f.id), st[Number(f.name)]]));
    const locFns = new Map(p.location.map((l) => [String(l.id), l.line.map((ln) => fnName.get(String(ln.functionId)))]));
    let inWorker = 0;
    for (const s of p.sample) {
      const names = s.locationId.flatMap((id) => locFns.get(String(id)) ?? []);
      if (!names.includes('pushedWorkerBurn')) continue;
      const thread = s.label.find((l) => st[Number(l.key)] === 'thread');
      assert.strictEqual(thread && st[Number(thread.str)], `worker-${tid}`, 'the Worker\'s frames carry its thread label');
      const job = s.label.find((l) => st[Number(l.key)] === 'job');
      assert.strictEqual(job && st[Number(job.str)], 'pushed-worker', 'the Worker\'s frames carry its Do label');
      inWorker += Number(s.value[0]);
    }
    assert.ok(inWorker >= 10, `${inWorker} samples of the Worker's burn in the push`);
  } finally {
    await Pyroscope.stop();
    await rec.close();
  }
});
