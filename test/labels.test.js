'use strict';
// Profile labels (pprof.Do & co.): the API's semantics, labels following async
// continuations, CPU samples and Profile.Add records carrying them, go tool pprof
// -tagfocus, retirement of label sets during a profile, and "no hook until used".
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { Readable } = require('node:stream');
const { execFileSync } = require('node:child_process');
const sp = require('..');
const internals = require('../dist/labels.js');
const { threadCpuNs, MemoryWritable, decode, samples, haveGo, goPprof } = require('./helpers');

const { Labels, Do, WithLabels, SetGoroutineLabels, Label, ForLabels } = sp;
const tick = () => new Promise((resolve) => setImmediate(resolve));

function labelsOf(profile) {
  const st = profile.stringTable.strings;
  return profile.sample.map((s) => {
    const o = {};
    for (const l of s.label) o[st[Number(l.key)]] = st[Number(l.str)];
    return o;
  });
}

/** Samples (frames, values, labels) of a decoded CPU profile. */
function labelled(profile) {
  const labs = labelsOf(profile);
  return samples(profile).map((s, i) => ({ ...s, labels: labs[i] }));
}

// The addon's thread CPU clock (CLOCK_THREAD_CPUTIME_ID): exact like schedstat, and no
// file read per check.
const addon = require('../dist/native.js').native();
const cpuNs = () => addon.threadCpuNs();

/** Burns `ns` of this thread's CPU in the caller's frame (callers name the frame). */
function spin(ns) {
  const t0 = cpuNs();
  let x = 0;
  while (cpuNs() - t0 < ns) for (let i = 0; i < 2000; i++) x += Math.sqrt(i + x);
  return x;
}

function current() {
  const o = {};
  ForLabels((k, v) => { o[k] = v; });
  return o;
}

// Runs first, in a fresh process: loading sigprof, profiling, reading labels and
// Profile.Add must not install any async hook or promise hook. Observed two ways: every
// async_hooks.createHook / v8.promiseHooks registration is counted (wrapped before sigprof
// loads), and, on Node 20/22 where hooks track promises, by an effect: with no hook
// enabled promises get no async ids, so an await's continuation keeps the execution async
// id it started with.
test('no labels used: no async hook is installed (measured in a fresh process)', () => {
  const script = `
    const ah = require('node:async_hooks');
    const v8 = require('node:v8');
    const calls = [];
    const createHook = ah.createHook;
    // Named by its callbacks: the slot's hooks have before/after; an async_hooks-based
    // AsyncLocalStorage (Node 20/22) enables one with init only, the store's own.
    ah.createHook = (cbs) => { const h = createHook(cbs); const en = h.enable; const name = 'enable:' + ['init', 'before', 'after'].filter((k) => cbs[k]).join('+'); h.enable = () => { calls.push(name); return en.call(h); }; return h; };
    for (const k of ['onInit', 'onBefore', 'onAfter', 'onSettled', 'createHook']) {
      const f = v8.promiseHooks[k];
      v8.promiseHooks[k] = (...a) => { calls.push(k); return f(...a); };
    }
    async function hooked() { const a = ah.executionAsyncId(); await null; return ah.executionAsyncId() !== a; }
    (async () => {
      await null;
      const sp = require(${JSON.stringify(path.join(__dirname, '..'))});
      const { MemoryWritable } = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))});
      sp.StartCPUProfile(new MemoryWritable());
      const p = sp.NewProfile('nohook.test');
      p.Add({}, 0);
      const read = [sp.Label('route'), sp.WithLabels(sp.Labels('a', 'b')).get('a')];
      let n = 0; sp.ForLabels(() => { n++; });
      const idle = await hooked();
      await sp.StopCPUProfile();
      const internals = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'labels.js'))});
      const before = { installed: internals.labelTableStats().hookInstalled, calls: calls.slice() };
      await sp.Do(sp.Labels('route', '/x'), async () => {});
      const st = internals.labelTableStats();
      // On Node 20/22 the AsyncLocalStorage itself enables an init hook and has Node install
      // its promise hook (v8.promiseHooks.createHook): those are the store's, not ours.
      const ours = () => calls.filter((c) => c !== 'createHook' && c !== 'enable:init');
      const unprofiled = { installed: st.hookInstalled, store: st.storeMade, calls: ours() };
      sp.StartCPUProfile(new MemoryWritable());
      const profiled = { installed: internals.labelTableStats().hookInstalled, mech: internals.labelTableStats().mechanism };
      const used = await sp.Do(sp.Labels('route', '/y'), hooked);
      await sp.StopCPUProfile();
      const stopped = internals.labelTableStats().hookInstalled;
      console.log(JSON.stringify({ idle, before, unprofiled, profiled, stopped, used, after: ours(), read, n, mech: profiled.mech }));
    })();`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim());
  assert.deepStrictEqual(out.before, { installed: false, calls: [] }, 'nothing installed before the first Do');
  assert.strictEqual(out.idle, false, 'no promise tracking before the first Do');
  assert.deepStrictEqual(out.read, [null, 'b']);
  assert.strictEqual(out.n, 0);
  // Labels in use but no CPU profile: the store exists, the slot's hooks do not (only the
  // profile reads the slot); they come with a profile and go when it stops.
  assert.deepStrictEqual(out.unprofiled, { installed: false, store: true, calls: [] }, 'no hook for labels outside a profile');
  assert.strictEqual(out.profiled.installed, true, 'a profile with labels in use installs the hooks');
  assert.strictEqual(out.stopped, false, 'the last profile stopping removes them');
  assert.ok(out.after.includes('enable:before+after'), `the counting sees the profile's hook: ${out.after}`);
  // docs/labels.md: the store's own implementation decides the hook.
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) {
    assert.ok(out.mech.startsWith('frame'), out.mech);
    if (out.mech === 'frame+promise-hooks') assert.deepStrictEqual([...out.after].sort(), ['enable:before+after', 'onAfter', 'onBefore']);
  } else {
    assert.strictEqual(out.mech, 'async-hooks');
    assert.strictEqual(out.used, true, 'the probe sees promise tracking once labels are used (so it can fail)');
  }
});

test('Labels validates, dedups (later pair wins) and sorts keys', () => {
  assert.throws(() => Labels('a'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => Labels('a', 1), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => Do({ a: 'b' }, () => {}), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => Do(Labels('a', 'b'), 'fn'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => SetGoroutineLabels(null), { code: 'ERR_INVALID_ARG_TYPE' });
  const s = Labels('z', '1', 'a', '2', 'z', '3');
  assert.deepStrictEqual([...s], [['a', '2'], ['z', '3']]);
  assert.strictEqual(s.get('z'), '3');
  assert.strictEqual(String(s), '{"a":"2", "z":"3"}');
  assert.strictEqual(sp.labels, Labels);
  assert.strictEqual(sp.forLabels, ForLabels);
});

test('sync Do: labels inside, return value passed through, nothing outside; throws restore', () => {
  assert.strictEqual(Label('route'), undefined);
  const r = Do(Labels('route', '/sync'), () => {
    assert.strictEqual(Label('route'), '/sync');
    return 42;
  });
  assert.strictEqual(r, 42);
  assert.strictEqual(Label('route'), undefined);
  assert.throws(() => Do(Labels('route', '/boom'), () => { throw new Error('boom'); }), /boom/);
  assert.strictEqual(Label('route'), undefined);
});

test('nested Do merges, the inner value wins, the outer set comes back', async () => {
  await Do(Labels('route', '/outer', 'tenant', 't1'), async () => {
    assert.deepStrictEqual(current(), { route: '/outer', tenant: 't1' });
    await Do(Labels('route', '/inner', 'step', 's'), async () => {
      await tick();
      assert.deepStrictEqual(current(), { route: '/inner', step: 's', tenant: 't1' });
    });
    assert.deepStrictEqual(current(), { route: '/outer', tenant: 't1' });
    // ForLabels stops when fn returns false; keys come in order.
    const keys = [];
    ForLabels((k) => { keys.push(k); return false; });
    assert.deepStrictEqual(keys, ['route']);
    // WithLabels: current + more, or parent + more; nothing becomes current.
    assert.deepStrictEqual(WithLabels(Labels('x', '1')).toJSON(), { route: '/outer', tenant: 't1', x: '1' });
    assert.deepStrictEqual(WithLabels(Labels('a', '1'), Labels('a', '2', 'b', '3')).toJSON(), { a: '2', b: '3' });
    assert.strictEqual(Label('x'), undefined);
  });
  assert.deepStrictEqual(current(), {});
});

test('SetGoroutineLabels sets the current async context only, like enterWith', async () => {
  const inner = async () => {
    await tick();
    SetGoroutineLabels(WithLabels(Labels('job', 'j1')));
    await tick();
    return current();
  };
  const seen = await Do(Labels('route', '/r'), inner);
  assert.deepStrictEqual(seen, { job: 'j1', route: '/r' });
  assert.deepStrictEqual(current(), {}, 'the caller keeps its own labels');
});

// The continuations a labelled function starts: each callback reads its labels (Label),
// records a Profile.Add, and burns CPU in a frame of its own whose samples must all
// carry the labels (the slot is set before the callback and restored after it, so there
// is no boundary effect: a sample in that frame with other labels is a bug).
test('labels cross setTimeout, setImmediate, queueMicrotask, nextTick, an EventEmitter and a stream data handler', async () => {
  const prof = sp.NewProfile('labels.test.crossing');
  const emitter = new EventEmitter();
  const seen = {};
  const BURN = 60e6;
  function inTimeout() { spin(BURN); }
  function inImmediate() { spin(BURN); }
  function inMicrotask() { spin(BURN); }
  function inNextTick() { spin(BURN); }
  function inEmitter() { spin(BURN); }
  function inStreamData() { spin(BURN); }
  function note(where) { seen[where] = Label('route'); prof.Add(where, 1); }
  // Registered outside any Do: an EventEmitter calls listeners in the emitter's context.
  emitter.on('evt', () => { note('emitter'); inEmitter(); });
  const w = new MemoryWritable();
  sp.SetCPUProfileRate(250);
  sp.StartCPUProfile(w);
  await Do(Labels('route', '/cross'), () => new Promise((resolve) => {
    let pending = 6;
    const done = () => { if (--pending === 0) resolve(); };
    setTimeout(() => { note('timeout'); inTimeout(); done(); }, 1);
    setImmediate(() => { note('immediate'); inImmediate(); done(); });
    queueMicrotask(() => { note('microtask'); inMicrotask(); done(); });
    process.nextTick(() => { note('nextTick'); inNextTick(); done(); });
    setTimeout(() => { emitter.emit('evt'); done(); }, 2);
    Readable.from(['chunk']).on('data', () => { note('stream'); inStreamData(); }).on('end', done);
  }));
  // Outside: the same emitter and a timer see no labels.
  await new Promise((resolve) => setTimeout(() => { emitter.emit('evt-none'); seen.outside = Label('route'); resolve(); }, 1));
  await sp.StopCPUProfile();
  sp.SetCPUProfileRate(100);
  assert.deepStrictEqual(seen, { emitter: '/cross', timeout: '/cross', immediate: '/cross', microtask: '/cross', nextTick: '/cross', stream: '/cross', outside: undefined });

  const text = await new Promise((resolve, reject) => {
    const out = new MemoryWritable();
    prof.WriteTo(out, 1).then(() => resolve(out.buffer().toString()), reject);
  });
  assert.strictEqual(text.split('# labels: {"route":"/cross"}').length - 1, 6, text);
  const pb = new MemoryWritable();
  await prof.WriteTo(pb, 0);
  assert.ok(labelsOf(decode(pb.buffer())).every((l) => l.route === '/cross'));

  const all = labelled(decode(w.buffer()));
  for (const fn of ['inTimeout', 'inImmediate', 'inMicrotask', 'inNextTick', 'inEmitter', 'inStreamData']) {
    const mine = all.filter((s) => s.frames.some((f) => f.name === fn));
    // 60 ms of CPU at ~250 samples/s: ~15 expected; P(none) = e^-15 ≈ 3e-7.
    assert.ok(mine.length > 0, `samples in ${fn}`);
    const wrong = mine.filter((s) => s.labels.route !== '/cross');
    assert.strictEqual(wrong.length, 0, `${fn}: ${wrong.length}/${mine.length} samples without route=/cross`);
  }
});

// Two kinds of requests interleaved on one event loop through awaits; /heavy burns
// twice the CPU of /light per step. The truth is each kind's thread CPU time (schedstat).
// Margin: 4 binomial standard errors of the labelled-sample count n, plus 2 points for the
// step boundaries. With n ≈ 700 (2.8 s at ~250 samples/s) and p = 2/3, 4σ ≈ 7.1 points;
// a normal tail beyond 4σ has probability 6.3e-5 per run.
test('concurrent labelled requests: CPU shares by label match thread CPU (2:1), and go tool pprof -tagfocus isolates them', async () => {
  let heavyNs = 0, lightNs = 0;
  function heavyWork() { const t = threadCpuNs(); spin(4e6); heavyNs += threadCpuNs() - t; }
  function lightWork() { const t = threadCpuNs(); spin(2e6); lightNs += threadCpuNs() - t; }
  async function request(route, work, steps) {
    return Do(Labels('route', route), async () => {
      for (let i = 0; i < steps; i++) {
        await tick();
        work();
        await Promise.resolve();
      }
    });
  }
  const w = new MemoryWritable();
  sp.SetCPUProfileRate(250);
  sp.StartCPUProfile(w);
  const reqs = [];
  for (let k = 0; k < 4; k++) {
    reqs.push(request('/api/users', heavyWork, 116));
    reqs.push(request('/api/health', lightWork, 116));
  }
  await Promise.all(reqs);
  await sp.StopCPUProfile();
  sp.SetCPUProfileRate(100);
  const buf = w.buffer();
  const all = labelled(decode(buf));
  let users = 0, health = 0, nUsers = 0, nHealth = 0;
  for (const s of all) {
    if (s.labels.route === '/api/users') { users += s.values[1]; nUsers += s.values[0]; }
    if (s.labels.route === '/api/health') { health += s.values[1]; nHealth += s.values[0]; }
  }
  const n = nUsers + nHealth;
  const expected = heavyNs / (heavyNs + lightNs);
  const measured = users / (users + health);
  const margin = 4 * Math.sqrt(expected * (1 - expected) / n) + 0.02;
  assert.ok(n > 300, `labelled samples: ${n}`);
  assert.ok(Math.abs(measured - expected) <= margin,
    `/api/users share ${(measured * 100).toFixed(1)}% vs thread CPU ${(expected * 100).toFixed(1)}% (±${(margin * 100).toFixed(1)} pts, n=${n})`);
  // Every sample inside heavyWork/lightWork carries its own route.
  for (const [fn, route] of [['heavyWork', '/api/users'], ['lightWork', '/api/health']]) {
    const mine = all.filter((s) => s.frames.some((f) => f.name === fn));
    // ≥ 1/3 of n > 300 expected in each; 30 is more than 5σ below that.
    const count = mine.reduce((a, x) => a + x.values[0], 0);
    assert.ok(count > 30, `${fn}: ${count} samples`);
    assert.deepStrictEqual(mine.filter((s) => s.labels.route !== route).length, 0, fn);
  }

  if (!haveGo()) return;
  const file = path.join(os.tmpdir(), `sigprof-labels-${process.pid}.pb.gz`);
  fs.writeFileSync(file, buf);
  try {
    const focus = goPprof(['-traces', '-tagfocus', 'route=/api/users', file]);
    assert.match(focus, /heavyWork/);
    assert.doesNotMatch(focus, /lightWork/);
    assert.doesNotMatch(focus, /\/api\/health/);
    const tags = goPprof(['-tags', file]);
    assert.match(tags, /route: Total/);
    assert.match(tags, /\/api\/users/);
    assert.match(tags, /\/api\/health/);
  } finally {
    fs.rmSync(file, { force: true });
  }
});

// Label sets that become unreachable during a profile are retired, but their ids are not
// reused until the profile's last pull: every sample still resolves to the labels it was
// taken under. Each request's work function says which parity label it must carry.
test('label sets retired during a profile keep resolving; ids are reused only after stop', async () => {
  require('node:v8').setFlagsFromString('--expose-gc');
  const gc = require('node:vm').runInNewContext('gc');
  function evenWork() { spin(1.5e6); }
  function oddWork() { spin(1.5e6); }
  const w = new MemoryWritable();
  sp.SetCPUProfileRate(250);
  sp.StartCPUProfile(w);
  const live0 = internals.labelTableStats().live;
  // Counted cumulatively: on a slow machine a round can outlast the quarantine (ids retired
  // over a second ago are released at the next pull while the profile runs on).
  let retired = internals.labelTableStats().retired;
  try {
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 60; i++) {
        const id = round * 60 + i;
        await Do(Labels('req', String(id), 'parity', id % 2 ? 'odd' : 'even'), async () => {
          await tick();
          (id % 2 ? oddWork : evenWork)();
        });
      }
      // Collected sets are retired by a FinalizationRegistry callback, in a later task.
      for (let k = 0; k < 50 && internals.labelTableStats().retired <= retired; k++) { gc(); await tick(); }
      const r = internals.labelTableStats().retired;
      assert.ok(r > retired, `round ${round}: label sets retired during the profile (${r - retired})`);
      retired = r;
    }
  } finally {
    await sp.StopCPUProfile();
    sp.SetCPUProfileRate(100);
  }
  assert.strictEqual(internals.labelTableStats().quarantined, 0, 'released after the last pull');
  assert.ok(internals.labelTableStats().live - live0 < 240, 'retired sets left the table');
  const all = labelled(decode(w.buffer()));
  let checked = 0;
  for (const s of all) {
    const even = s.frames.some((f) => f.name === 'evenWork');
    const odd = s.frames.some((f) => f.name === 'oddWork');
    if (!even && !odd) continue;
    checked += s.values[0];
    assert.ok(s.labels.req !== undefined, 'labelled');
    assert.strictEqual(s.labels.parity, even ? 'even' : 'odd');
    assert.strictEqual(Number(s.labels.req) % 2, even ? 0 : 1, `req ${s.labels.req} with ${even ? 'even' : 'odd'}Work`);
  }
  // 240 × 1.5 ms = 360 ms at ~250 samples/s: ~90 expected; P(< 20) is negligible.
  assert.ok(checked >= 20, `checked ${checked} samples`);
});

test('a full label-set table gives samples the overflow label; Label() stays exact', async () => {
  const keep = [];
  const free = internals.MAX_LABEL_SETS - internals.labelTableStats().live;
  for (let i = 0; i < free + 10; i++) {
    const s = Labels('fill', String(i));
    keep.push(s);
    Do(s, () => {});
  }
  assert.ok(internals.labelTableStats().overflowed > 0);
  function overflowWork() { spin(80e6); }
  const w = new MemoryWritable();
  sp.SetCPUProfileRate(250);
  sp.StartCPUProfile(w);
  const seen = Do(Labels('route', '/over'), () => { overflowWork(); return Label('route'); });
  await sp.StopCPUProfile();
  sp.SetCPUProfileRate(100);
  assert.strictEqual(seen, '/over');
  const mine = labelled(decode(w.buffer())).filter((s) => s.frames.some((f) => f.name === 'overflowWork'));
  assert.ok(mine.length > 0);
  // Every sample of a process profile also says its thread (docs/workers.md).
  for (const s of mine) assert.deepStrictEqual(s.labels, { 'sigprof.labels': 'overflow', thread: 'main' });
  keep.length = 0;
});
