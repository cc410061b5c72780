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
