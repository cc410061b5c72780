'use strict';
// Issue 9 item 1: another CPU profiler built on V8's CpuProfiler (the inspector, DevTools,
// @datadog/pprof) installs its own SIGPROF handler and, when it stops, restores the
// handler it found at its start. If it started before sigprof that is SIG_DFL, and the
// next SIGPROF of sigprof's killed the process ("Profiling timer expired", exit 155).
// Each case runs in a child process: it must exit 0, its profile must decode, and the
// periods sigprof could not sample while the other profiler owned SIGPROF must be
// counted and shown as (lost samples).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { decode, samples } = require('./helpers');

const fixture = path.join(__dirname, 'fixtures', 'other-profiler.js');

function run(tool, order, what, hz) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-owner-'));
  const r = spawnSync(process.execPath, [fixture, tool, order, what, String(hz)], {
    env: { ...process.env, OUT_DIR: dir, NODE_NO_WARNINGS: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const file = path.join(dir, 'profile.pb.gz');
  const profile = fs.existsSync(file) ? fs.readFileSync(file) : null;
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: r.status, signal: r.signal, stderr: r.stderr, result: r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()) : null, profile };
}

function cpuOf(list, pred) {
  return list.filter(pred).reduce((a, s) => a + s.values[1], 0);
}

// Boundary slack of the lost-period count. The kernel timer's count is exact to one
// period (the last may still be due on the next tick) and the overlap is measured from
// the JS thread just outside the other profiler's start/stop, so a few periods cover it.
// The helper thread checks once per period of wall time, but on this loaded 2-core
// machine it can be descheduled; 25 ms of the thread's CPU per boundary (two boundaries)
// covers a wake-up delayed that long.
function slackPeriods(hz) {
  return 3 + Math.ceil(2 * 0.025 * hz);
}

for (const tool of ['inspector', 'datadog']) {
  for (const hz of [100, 1000]) {
    test(`${tool} started first, then sigprof at ${hz} Hz: survives the other's stop (SIG_DFL restored), nothing lost`, () => {
      const r = run(tool, 'other-first', 'cpu', hz);
      assert.strictEqual(r.status, 0, `child died: status ${r.status} signal ${r.signal}\n${r.stderr}`);
      const { stats, totalNs } = r.result;
      const period = 1e9 / hz;
      // Under a foreign handler only the clock that checks before each signal is safe.
      assert.strictEqual(stats.mode, 'thread');
      // Ours stayed installed over the other's handler until it restored SIG_DFL, and was
      // put back before the next signal: nothing went to the other handler.
      assert.ok(stats.lostToOtherProfiler <= slackPeriods(hz), `lost ${stats.lostToOtherProfiler}`);
      // Sampling went on after the other's stop: the profile covers the thread's CPU
      // (totalNs also counts the other profiler's start, before ours began).
      assert.ok(stats.cpuNanos <= totalNs + period, `cpu ${stats.cpuNanos} > thread ${totalNs}`);
      assert.ok(stats.cpuNanos >= totalNs - slackPeriods(hz) * period - 100e6, `cpu ${stats.cpuNanos} << thread ${totalNs}`);
      const list = samples(decode(r.profile));
      const total = cpuOf(list, () => true);
      assert.strictEqual(total, stats.cpuNanos + (stats.droppedWeight + stats.lostToOtherProfiler) * period);
    });

    test(`sigprof at ${hz} Hz, then ${tool} started and stopped: the periods it owned SIGPROF are (lost samples)`, () => {
      const r = run(tool, 'sigprof-first', 'cpu', hz);
      assert.strictEqual(r.status, 0, `child died: status ${r.status} signal ${r.signal}\n${r.stderr}`);
      const { stats, overlapNs } = r.result;
      const period = 1e9 / hz;
      const expected = overlapNs / period;
      assert.ok(Math.abs(stats.lostToOtherProfiler - expected) <= slackPeriods(hz),
        `lost ${stats.lostToOtherProfiler} periods, the other profiler owned SIGPROF for ${expected.toFixed(1)}`);
      const list = samples(decode(r.profile));
      const lost = cpuOf(list, (s) => s.frames[0].name === '(SIGPROF owned by another profiler)');
      assert.strictEqual(lost, stats.lostToOtherProfiler * period);
      const lostSample = list.find((s) => s.frames[0].name === '(SIGPROF owned by another profiler)');
      assert.strictEqual(lostSample.frames[1].name, '(lost samples)');
      // Sampling resumed after the other's stop (spin(200) after it): real stacks exist.
      assert.ok(cpuOf(list, (s) => s.frames.some((f) => f.name === 'spin')) > 0);
    });
  }

  for (const order of ['other-first', 'sigprof-first']) {
    test(`${tool} and only the event-loop watchdog (SetBlockProfileRate), ${order}: survives, the profile decodes`, () => {
      const r = run(tool, order, 'block', 100);
      assert.strictEqual(r.status, 0, `child died: status ${r.status} signal ${r.signal}\n${r.stderr}`);
      const p = decode(r.profile);
      const st = p.stringTable.strings;
      assert.deepStrictEqual(p.sampleType.map((t) => st[Number(t.type)]), ['contentions', 'delay']);
      // The 200–400 ms spins block the loop far past the 20 ms threshold, and the one after
      // the other profiler stopped is sampled by a signal of ours (ours is back, or put
      // back over SIG_DFL, by then): at least the blocks before and after its stop are
      // recorded. (Whether each block's stack shows JS frames is the watchdog's sampling
      // timing, issue 9's flaky eventloop test, not asserted here.)
      const blocks = samples(p).reduce((a, s) => a + s.values[0], 0);
      assert.ok(blocks >= 2, `${blocks} blocks recorded`);
    });
  }
}
