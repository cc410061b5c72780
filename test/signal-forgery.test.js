'use strict';
// Issue 9 item 3: any same-user process can queue sigprof's sampling signal (a real-time
// signal since issue 9 item 1; SIGPROF before) at us with rt_tgsigqueueinfo
// and choose si_code (SI_QUEUE, SI_TIMER), si_pid and si_value. 300 forged signals once
// made a 2.5 s profile claim 833 hours. A signal is now ours only with a per-start random
// tag, and no sample may credit more CPU than the thread used since the start.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { decode, samples } = require('./helpers');

const python = spawnSync('python3', ['-c', 'import ctypes'], { encoding: 'utf8' }).status === 0;

function forgeAt(hz, clock) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-forge-'));
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'forge-target.js'), String(hz)], {
    env: { ...process.env, OUT_DIR: dir, NODE_NO_WARNINGS: '1', SIGPROF_CLOCK: clock },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let forged = null;
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^ready (\d+) (\d+)\n/.exec(out);
      if (m && forged === null) {
        const f = spawnSync('python3', [path.join(__dirname, 'fixtures', 'forge.py'), m[1], '300', m[2]], { encoding: 'utf8' });
        forged = f.stdout.trim().split(' ').map(Number);
        fs.writeFileSync(path.join(dir, 'DONE'), '');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      try {
        assert.strictEqual(code, 0, `child exit ${code} ${signal}`);
        const result = JSON.parse(out.trim().split('\n').pop());
        const profile = decode(fs.readFileSync(path.join(dir, 'profile.pb.gz')));
        resolve({ ...result, forged, profile });
      } catch (e) {
        reject(e);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

// Every clock: the CPU timer (its tag is readable in /proc/PID/timers), the helper thread
// (queued signals) and the perf event (kernel-coded signals, which no process can forge).
for (const [hz, clock] of [[100, 'timer'], [1000, 'thread'], [100, 'perf-event'], [1000, 'perf-event']]) {
  test(`300 forged sampling signals (old tag, guessed tags, the real timer value with a huge overrun) at ${hz} Hz, ${clock} clock, add no CPU`, { skip: !python && 'python3 with ctypes needed' }, async () => {
    const r = await forgeAt(hz, clock);
    const [sent, timerValues, pollInAccepted] = r.forged;
    assert.strictEqual(sent, 300, 'the kernel accepted every forged signal');
    assert.strictEqual(pollInAccepted, 0, 'the kernel refuses si_code > 0 from another process');
    assert.strictEqual(r.stats.mode, clock);
    // The CPU timer's tag is world-readable in /proc/PID/timers: the forger has it, and
    // only the weight bound stands between it and the profile.
    if (clock === 'timer') assert.strictEqual(timerValues, 1, 'the forger read the timer tag');
    const total = samples(r.profile).reduce((a, s) => a + s.values[1], 0);
    // Every credited period was used by the thread: the profile's CPU never exceeds the
    // thread's CPU time over the profile (which also counts the start and stop work).
    assert.ok(total <= r.cpuNs, `profile claims ${total} ns, the thread used ${r.cpuNs} ns`);
    // The guessed tags name slot 0 (ours) and were counted as rejected, as were timer
    // forgeries cut by the bound; the old tag names no slot and is forwarded silently.
    // Real-time signals queue, so all 100 guesses arrive (SIGPROF, which merged, let only
    // 46–100 through on this loaded machine): 10 still shows the check at work.
    assert.ok(r.stats.rejectedSignals >= 10, `rejected ${r.stats.rejectedSignals}`);
    assert.ok(r.stats.samples > 0);
  });
}
