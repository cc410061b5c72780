'use strict';
// Worker threads in the process profile (docs/workers.md): a profile started in the main
// thread samples every JS thread, each frame named from its own thread's code, each
// sample labelled with its thread. Shares are judged against each thread's own CPU time
// (its /proc/thread-self/schedstat), with a margin of 4 binomial standard errors of the
// sample count plus 3 points (message handling and the hand-over run outside the burns).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
// sigprof first: a Worker class taken before it loaded is not the hooked one (docs/workers.md).
const sp = require('..');
const { Worker } = require('node:worker_threads');
const { threadCpuNs, MemoryWritable, decode, samples, haveGo, goPprof } = require('./helpers');

// A Worker whose code names its own burn function: a frame named from another isolate's
// code map would show another thread's name (or garbage) where this one's should be.
function burnerSource(fn) {
  return `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
function cpuNs() { return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]); }
function ${fn}(ms) {
  const t0 = cpuNs();
  let s = 0;
  while (cpuNs() - t0 < ms * 1e6) for (let i = 0; i < 200000; i++) s += Math.sqrt(i) * 1.0001;
  return s;
}
parentPort.on('message', (m) => {
  if (m.burn) { const t0 = cpuNs(); ${fn}(m.burn); parentPort.postMessage({ burned: cpuNs() - t0 }); }
  if (m.cpu) parentPort.postMessage({ cpu: cpuNs() });
  if (m.block) { if (m.burnFirst) ${fn}(m.burnFirst); require('node:child_process').execSync('touch ' + m.marker + ' && sleep ' + m.block); parentPort.postMessage({ unblocked: true }); }
});
parentPort.postMessage({ ready: true });
`;
}

function burnMain(ms) {
  const t0 = threadCpuNs();
  let s = 0;
  while (threadCpuNs() - t0 < ms * 1e6) for (let i = 0; i < 200000; i++) s += Math.sqrt(i) * 1.0001;
  return s;
}

// A 250 Hz process profile, then the Worker (already in it from the start) is told to go;
// `done` resolves with the Worker's 'done' message.
function startWithWorkerJob(w, msg) {
  sp.SetCPUProfileRate(250);
  const out = new MemoryWritable();
  sp.StartCPUProfile(out);
  const done = next(w, 'done');
  w.postMessage(msg);
  return { out, done };
}

function next(w, key) {
  return new Promise((resolve, reject) => {
    const on = (m) => { if (m[key] !== undefined) { w.off('message', on); resolve(m[key]); } };
    w.on('message', on);
    w.once('error', reject);
  });
}

async function startBurner(fn, opts = {}) {
  const w = new Worker(burnerSource(fn), { eval: true, ...opts });
  await next(w, 'ready');
  return w;
}

function labelOf(profile, s, key) {
  const st = profile.stringTable.strings;
  const l = s.label.find((x) => st[Number(x.key)] === key);
  return l ? st[Number(l.str)] : undefined;
}

/** CPU ns per `thread` label, and the frames of each thread's samples. */
function byThread(profile) {
  const flat = samples(profile);
  const out = new Map();
  profile.sample.forEach((s, i) => {
    const t = labelOf(profile, s, 'thread');
    let e = out.get(t);
    if (!e) out.set(t, (e = { ns: 0, n: 0, names: new Set(), files: new Set(), threadName: labelOf(profile, s, 'thread_name') }));
    e.ns += flat[i].values[1];
    e.n += flat[i].values[0];
    for (const f of flat[i].frames) { e.names.add(f.name); e.files.add(f.file); }
  });
  return out;
}

test('main + two Workers: each thread\'s share matches its own CPU time, frames from its own code, thread labels split with go tool pprof', async () => {
  const alpha = await startBurner('burnAlpha', { name: 'alpha-pool' });
  const beta = await startBurner('burnBeta');
  try {
    sp.SetCPUProfileRate(250);
    const w = new MemoryWritable();
    sp.StartCPUProfile(w);
    const done = [next(alpha, 'burned'), next(beta, 'burned')];
    alpha.postMessage({ burn: 500 });
    beta.postMessage({ burn: 900 });
    const m0 = threadCpuNs();
    burnMain(300);
    const mainNs = threadCpuNs() - m0;
    const [aNs, bNs] = await Promise.all(done);
    const running = sp.CPUProfileStats();
    assert.strictEqual(running.threads[0].thread, 'main');
    await sp.StopCPUProfile();
    const stats = sp.CPUProfileStats();
    const p = decode(w.buffer());
    const t = byThread(p);
    const A = `worker-${alpha.threadId}`, B = `worker-${beta.threadId}`;
    assert.deepStrictEqual([...t.keys()].sort(), [A, B, 'main'].sort(), 'every sample carries its thread');
    assert.strictEqual(t.get(A).threadName, 'alpha-pool', 'the Worker\'s name option is a second label');
    assert.strictEqual(t.get(B).threadName, undefined);

    // Own code only: each burn function appears in its own thread's samples and no other.
    assert.ok(t.get('main').names.has('burnMain'));
    assert.ok(t.get(A).names.has('burnAlpha') && t.get(B).names.has('burnBeta'));
    for (const [name, e] of t) {
      const foreign = ['burnMain', 'burnAlpha', 'burnBeta'].filter((n) => e.names.has(n) && n !== { main: 'burnMain', [A]: 'burnAlpha', [B]: 'burnBeta' }[name]);
      assert.deepStrictEqual(foreign, [], `${name} has frames named from another thread's code`);
    }
    for (const th of [A, B]) assert.ok(!t.get(th).files.has(__filename), `${th} has a frame from the main thread's script`);
    // Lines come from the Worker's own script: burnAlpha spans 5 lines of its source (a
    // position resolved against another isolate's scripts would land anywhere). Line 0 is
    // code without positions (Maglev, Node 24+: docs/design.md), as on the main thread.
    const alphaFrames = samples(p).flatMap((s) => s.frames).filter((f) => f.name === 'burnAlpha');
    assert.ok(alphaFrames.length > 0 && alphaFrames.every((f) => f.startLine > 0));
    for (const f of alphaFrames) assert.ok(f.line === 0 || (f.line >= f.startLine && f.line <= f.startLine + 5), `burnAlpha at line ${f.line} (starts at ${f.startLine})`);
    assert.ok(alphaFrames.some((f) => f.line > 0), 'some burnAlpha frame has a line');

    // Shares against the threads' own CPU time.
    const total = mainNs + aNs + bNs;
    const sampled = t.get('main').ns + t.get(A).ns + t.get(B).ns;
    const n = t.get('main').n + t.get(A).n + t.get(B).n;
    for (const [th, truth] of [['main', mainNs], [A, aNs], [B, bNs]]) {
      const expected = truth / total;
      const share = t.get(th).ns / sampled;
      const margin = 4 * Math.sqrt(expected * (1 - expected) / n) + 0.03;
      assert.ok(Math.abs(share - expected) <= margin,
        `${th}: ${(share * 100).toFixed(1)}% of samples vs ${(expected * 100).toFixed(1)}% of measured CPU (±${(margin * 100).toFixed(1)} pts, n=${n})`);
    }
    // Per-thread counts in the stats are the profile's.
    for (const th of [A, B]) {
      const s = stats.threads.find((x) => x.thread === th);
      assert.strictEqual(s.samples, t.get(th).n, `${th} stats`);
      assert.strictEqual(s.lost, 0);
    }
    assert.strictEqual(stats.threads.find((x) => x.thread === A).name, 'alpha-pool');

    if (haveGo()) {
      const file = path.join(os.tmpdir(), `sigprof-workers-${process.pid}.pb.gz`);
      fs.writeFileSync(file, w.buffer());
      try {
        const onlyA = goPprof(['-top', '-nodecount=200', `-tagfocus=thread=${A}`, file]);
        assert.match(onlyA, /burnAlpha/);
        assert.doesNotMatch(onlyA, /burnBeta|burnMain/);
        const notA = goPprof(['-top', '-nodecount=200', `-tagignore=thread=${A}`, file]);
        assert.doesNotMatch(notA, /burnAlpha/);
        assert.match(notA, /burnBeta/);
        assert.match(notA, /burnMain/);
        const named = goPprof(['-top', '-nodecount=200', '-tagfocus=thread_name=alpha-pool', file]);
        assert.match(named, /burnAlpha/);
        assert.doesNotMatch(named, /burnBeta|burnMain/);
      } finally {
        fs.rmSync(file, { force: true });
      }
    }
  } finally {
    sp.SetCPUProfileRate(100);
    await alpha.terminate();
    await beta.terminate();
  }
});

test('a Worker started during the profile is sampled from its first line; one terminate()d in a synchronous loop keeps its samples', async () => {
  const w = new MemoryWritable();
  sp.SetCPUProfileRate(250);
  sp.StartCPUProfile(w);
  try {
    const late = await startBurner('burnLate');
    await new Promise((resolve) => { late.postMessage({ burn: 300 }); late.once('message', resolve); });
    const killed = await startBurner('burnKilled');
    killed.postMessage({ burn: 60_000 });
    // Terminated mid-burn once it has used some CPU (its own clock says so).
    const cpuAtKill = await new Promise((resolve) => {
      const probe = setInterval(() => {
        const s = sp.CPUProfileStats().threads.find((x) => x.thread === `worker-${killed.threadId}`);
        if (s && s.samples >= 20) { clearInterval(probe); resolve(s.samples); }
      }, 50);
    });
    const killedId = killed.threadId, lateId = late.threadId;
    await killed.terminate();
    await late.terminate();
    await sp.StopCPUProfile();
    const t = byThread(decode(w.buffer()));
    assert.ok(t.get(`worker-${lateId}`)?.names.has('burnLate'), 'the Worker created during the profile is in it');
    const k = t.get(`worker-${killedId}`);
    assert.ok(k && k.names.has('burnKilled'), 'the terminated Worker\'s samples are in the profile');
    assert.ok(k.n >= cpuAtKill, `samples after terminate: ${k.n} >= ${cpuAtKill} handed over before it`);
  } finally {
    sp.SetCPUProfileRate(100);
    if (sp.CPUProfileStats()?.running) await sp.StopCPUProfile();
  }
});

function openTimers() {
  return fs.readFileSync('/proc/self/timers', 'utf8').split('\n').filter((l) => l.startsWith('ID:')).length;
}
function perfFds() {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try { if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[perf_event]') n++; } catch { /* closed meanwhile */ }
  }
  return n;
}
function threads() { return fs.readdirSync('/proc/self/task').length; }
function rssKb() { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]); }

// A Worker is listed in CPUProfileStats().threads once it hands over samples, so each one
// burns 40 ms of its own thread's CPU (schedstat): 4 samples expected at 100 Hz, and
// P(none) = e^-4 ≈ 2%, so >= 150 of 200 listed is ~30 standard deviations from failing.
// A fixed loop count was ~8 ms on Node 26 (P(none) ≈ 45%: 113 of 200 seen).
const BURN_40MS = `
const fs = require('node:fs');
const cpu = () => Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
const end = cpu() + 40e6;
let s = 0;
while (cpu() < end) for (let i = 0; i < 1e5; i++) s += Math.sqrt(i);
`;

test('200 short-lived Workers during one profile: no crash, and no timers, perf fds, threads or memory left behind', async (t) => {
  const run = async (count) => {
    for (let i = 0; i < count; i += 8) {
      await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(async () => {
        const wk = new Worker(BURN_40MS, { eval: true });
        await new Promise((resolve, reject) => { wk.once('exit', resolve); wk.once('error', reject); });
      }));
    }
  };
  // A first round of the same size warms up what the process keeps once (code, and the
  // allocator's arenas and retained free memory, which on Node 24 grew by ~70 MB over a
  // first 200 after a warm-up of 24, and does not grow further): what a second round adds
  // is what the Workers leave behind.
  let w = new MemoryWritable();
  sp.StartCPUProfile(w);
  await run(200);
  await sp.StopCPUProfile();
  global.gc?.();
  const before = { timers: openTimers(), perf: perfFds(), threads: threads(), rss: rssKb() };
  w = new MemoryWritable();
  sp.StartCPUProfile(w);
  const during = openTimers() + perfFds();
  await run(200);
  await sp.StopCPUProfile();
  global.gc?.();
  const after = { timers: openTimers(), perf: perfFds(), threads: threads(), rss: rssKb() };
  const stats = sp.CPUProfileStats();
  const workers = stats.threads.filter((x) => x.thread.startsWith('worker-'));
  t.diagnostic(`before ${JSON.stringify(before)} after ${JSON.stringify(after)}; ${workers.length} Workers listed`);
  assert.ok(during >= 1, 'the main thread\'s own clock runs (so the counts can see a clock)');
  assert.strictEqual(after.timers, before.timers, `POSIX timers ${before.timers} -> ${after.timers}`);
  assert.strictEqual(after.perf, before.perf, `perf event fds ${before.perf} -> ${after.perf}`);
  assert.strictEqual(after.threads, before.threads, `threads ${before.threads} -> ${after.threads}`);
  // Each Worker reserves a 2 MiB ring and its own code map; 200 of them kept would be
  // 400+ MiB. What may grow is the allocator's retained free memory.
  assert.ok(after.rss - before.rss < 64 * 1024, `RSS ${before.rss} -> ${after.rss} kB`);
  assert.ok(workers.length >= 150, `${workers.length} of 200 Workers in the profile`);
  const p = decode(w.buffer());
  assert.ok(p.sample.length > 0);
});

test('a Worker that profiles itself is left out of the main thread\'s profile, one that starts its own leaves it (keeping its samples so far); both say why', async () => {
  const src = `
const { parentPort } = require('node:worker_threads');
const sp = require(${JSON.stringify(path.join(__dirname, '..'))});
const { PassThrough } = require('node:stream');
parentPort.on('message', async (m) => {
  if (m === 'start') { sp.StartCPUProfile(new PassThrough().resume()); parentPort.postMessage({ started: true }); }
  if (m === 'stop') { await sp.StopCPUProfile(); parentPort.postMessage({ stopped: sp.CPUProfileStats().samples >= 0 }); }
  if (m === 'burn') { let s = 0; for (let i = 0; i < 3e7; i++) s += Math.sqrt(i); parentPort.postMessage({ burned: s > 0 }); }
  if (m === 'try') { try { sp.StartCPUProfile(new PassThrough().resume()); parentPort.postMessage({ tried: 'started' }); } catch (e) { parentPort.postMessage({ tried: e.code + ': ' + e.message }); } }
});
parentPort.postMessage({ ready: true });`;
  const own = new Worker(src, { eval: true });
  const other = new Worker(src, { eval: true });
  await Promise.all([next(own, 'ready'), next(other, 'ready')]);
  try {
    own.postMessage('start');
    await next(own, 'started');
    const w = new MemoryWritable();
    sp.StartCPUProfile(w);
    other.postMessage('burn');
    await next(other, 'burned');
    // Its samples so far reach the main thread at a pull; then it starts its own profile.
    const find = (wk) => sp.CPUProfileStats().threads.find((x) => x.thread === `worker-${wk.threadId}`);
    while (!(find(other)?.samples > 0)) await new Promise((r) => setTimeout(r, 100));
    other.postMessage('try');
    assert.strictEqual(await next(other, 'tried'), 'started', 'a Worker can always profile itself');
    // The refusal reaches the stats at the next pull (the Worker answers on its thread).
    while (!find(own)?.error || !find(other)?.error) await new Promise((r) => setTimeout(r, 100));
    const refused = find(own), left = find(other);
    await sp.StopCPUProfile();
    assert.strictEqual(refused.code, 'ERR_PROFILE_IN_USE');
    assert.match(refused.error, /its own CPU profile/);
    assert.strictEqual(left.code, 'ERR_PROFILE_IN_USE');
    assert.match(left.error, /started a CPU profile of its own/);
    const t = byThread(decode(w.buffer()));
    assert.ok(t.get(`worker-${other.threadId}`)?.n > 0, 'the samples it took before leaving stay in the process profile');
    assert.strictEqual(t.get(`worker-${own.threadId}`), undefined, 'the self-profiling Worker is not in the process profile');
    own.postMessage('stop');
    assert.strictEqual(await next(own, 'stopped'), true, 'the Worker\'s own profile ran on');
    other.postMessage('stop');
    assert.strictEqual(await next(other, 'stopped'), true);
  } finally {
    await own.terminate();
    await other.terminate();
  }
});

test('/debug/pprof/profile samples the Workers too, with their thread labels', async () => {
  const http = require('node:http');
  const { handler } = require('../dist/http.js');
  const wk = await startBurner('burnHttp', { name: 'http-side' });
  const server = http.createServer(handler());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const body = await new Promise((resolve, reject) => {
      http.get(`http://127.0.0.1:${server.address().port}/debug/pprof/profile?seconds=2`, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`status ${res.statusCode}`))));
      }).on('error', reject);
      // The capture starts when the request arrives; the Worker burns inside the window.
      setTimeout(() => wk.postMessage({ burn: 400 }), 200);
    });
    const t = byThread(decode(body));
    const e = t.get(`worker-${wk.threadId}`);
    assert.ok(e && e.names.has('burnHttp'), `threads in the HTTP profile: ${[...t.keys()]}`);
    assert.strictEqual(e.threadName, 'http-side');
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await wk.terminate();
  }
});

test('stopping does not wait for a Worker blocked in a system call: bounded, its handed-over samples kept, the rest counted as lost', async (t) => {
  const bound = 300;
  // The bound is read when sigprof loads, so this runs in a fresh process.
  const { execFileSync } = require('node:child_process');
  const script = `
const sp = require(${JSON.stringify(path.join(__dirname, '..'))});
const { Worker } = require('node:worker_threads');
const { PassThrough } = require('node:stream');
const src = ${JSON.stringify(burnerSource('burnBlocked'))};
const next = (w, key) => new Promise((resolve) => { const on = (m) => { if (m[key] !== undefined) { w.off('message', on); resolve(m[key]); } }; w.on('message', on); });
(async () => {
  const w = new Worker(src, { eval: true });
  await next(w, 'ready');
  const out = new PassThrough(); const chunks = []; out.on('data', (c) => chunks.push(c));
  sp.SetCPUProfileRate(250);
  sp.StartCPUProfile(out);
  w.postMessage({ burn: 300 });
  await next(w, 'burned');
  const mine = () => sp.CPUProfileStats().threads.find((x) => x.thread === 'worker-' + w.threadId);
  while (!(mine()?.samples > 0)) await new Promise((r) => setTimeout(r, 50));
  const handed = mine().samples;
  // Burns again, then blocks in execSync in the same task: what it took since its last
  // hand-over cannot be handed over before the stop gives up. The marker file exists once
  // execSync's child runs, i.e. once the Worker is inside the system call.
  const marker = require('node:path').join(require('node:os').tmpdir(), 'sigprof-blocked-' + process.pid);
  require('node:fs').rmSync(marker, { force: true });
  w.postMessage({ block: 4, burnFirst: 300, marker });
  while (!require('node:fs').existsSync(marker)) await new Promise((r) => setTimeout(r, 20));
  require('node:fs').rmSync(marker, { force: true });
  const t0 = Date.now();
  await sp.StopCPUProfile();
  const took = Date.now() - t0;
  const s = sp.CPUProfileStats().threads.find((x) => x.thread === 'worker-' + w.threadId);
  console.log(JSON.stringify({ took, handed, samples: s.samples, lost: s.lost }));
  await next(w, 'unblocked');
  await w.terminate();
})();`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, SIGPROF_WORKER_STOP_MS: String(bound) } }).trim().split('\n').pop());
  t.diagnostic(JSON.stringify(out));
  assert.ok(out.took < bound + 2000, `StopCPUProfile took ${out.took} ms with a ${bound} ms bound (the Worker was blocked for 4 s)`);
  assert.ok(out.took >= bound - 50, `it waited for the Worker (${out.took} ms)`);
  assert.ok(out.samples >= out.handed, `samples handed over before the block stay: ${out.samples} >= ${out.handed}`);
  // Two burns of 300 ms of the Worker's CPU at 250 Hz: 150 samples taken (its clock counts
  // its CPU time, so load does not change that). Each is in the profile or counted lost.
  assert.ok(out.samples + out.lost >= 0.8 * 150, `in the profile ${out.samples} + lost ${out.lost} of ~150 taken`);
  assert.ok(out.samples + out.lost <= 1.2 * 150 + 10, `in the profile ${out.samples} + lost ${out.lost} of ~150 taken`);
});

test('sigprof run --cpu samples the program\'s Workers', () => {
  const { execFileSync } = require('node:child_process');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-run-workers-'));
  try {
    const app = path.join(dir, 'app.js');
    // The Worker measures its own CPU (schedstat) and burns 400 ms of it.
    fs.writeFileSync(app, `const { Worker } = require('node:worker_threads');
new Worker(${JSON.stringify(burnerSource('burnRunWorker'))} + 'parentPort.once("message", () => {}); ${'burnRunWorker'}(400); process.exit(0);', { eval: true, name: 'runner' });
`);
    const out = path.join(dir, 'cpu.pb.gz');
    execFileSync(process.execPath, [path.join(__dirname, '..', 'bin', 'sigprof.js'), 'run', '--cpu', out, '--', process.execPath, app], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const t = byThread(decode(fs.readFileSync(out)));
    const wk = [...t].find(([k]) => k.startsWith('worker-'));
    assert.ok(wk && wk[1].names.has('burnRunWorker') && wk[1].threadName === 'runner', `threads: ${[...t.keys()]}`);
    // 400 ms of its CPU at 100 Hz: ~40 samples.
    assert.ok(wk[1].n >= 30, `${wk[1].n} samples`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// A Worker's own Do labels in the main thread's process profile (docs/workers.md,
// "Labels"). Job a burns in the synchronous part of its Do and again after each
// setImmediate; job b burns only after an awaited setTimeout, so its samples are labelled
// only if the Worker's label word follows async continuations (its hooks run while it is
// part of the process profile). Both jobs interleave on the Worker's event loop.
function labelledWorkerSource() {
  return `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { Do, Labels } = require(${JSON.stringify(path.join(__dirname, '..'))});
const internals = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'labels.js'))});
// The main thread's StartCPUProfile reaches this thread by an interrupt, which may come
// after the message that starts the jobs: they start once this thread is in the profile
// (its labels count it as a profile of theirs), not before.
async function joined() { while (internals.labelTableStats().profiles === 0) await new Promise((r) => setImmediate(r)); }
function cpuNs() { return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]); }
function spin(ms) {
  const t0 = cpuNs();
  let s = 0;
  while (cpuNs() - t0 < ms * 1e6) for (let i = 0; i < 200000; i++) s += Math.sqrt(i) * 1.0001;
  return s;
}
function burnJobA(ms) { return spin(ms); }
function burnJobB(ms) { return spin(ms); }
parentPort.on('message', async (m) => {
  if (!m.go) return;
  await joined();
  const ns = { a: 0, b: 0 };
  const timed = (k, f, ms) => { const t0 = cpuNs(); f(ms); ns[k] += cpuNs() - t0; };
  const a = Do(Labels('job', 'a'), async () => {
    for (let r = 0; r < m.rounds; r++) {
      timed('a', burnJobA, m.a / 2);
      await new Promise((res) => setImmediate(res));
      timed('a', burnJobA, m.a / 2);
      await null;
    }
  });
  const b = Do(Labels('job', 'b'), async () => {
    for (let r = 0; r < m.rounds; r++) {
      await new Promise((res) => setTimeout(res, 1));
      timed('b', burnJobB, m.b);
    }
  });
  await Promise.all([a, b]);
  parentPort.postMessage({ done: ns });
});
parentPort.postMessage({ ready: true });
`;
}

test('a Worker\'s Do labels reach the main thread\'s process profile (across await and setTimeout), with its thread label; none leak between threads', async () => {
  const w = new Worker(labelledWorkerSource(), { eval: true, name: 'jobs' });
  await next(w, 'ready');
  try {
    const { out, done } = startWithWorkerJob(w, { go: true, rounds: 12, a: 60, b: 30 });
    sp.Do(sp.Labels('job', 'main', 'side', 'main'), () => burnMain(200));
    const ns = await done;
    await sp.StopCPUProfile();
    const p = decode(out.buffer());
    const flat = samples(p);
    const W = `worker-${w.threadId}`;
    const count = { a: 0, b: 0 };
    const weight = { a: 0, b: 0 };
    let mainLabelled = 0;
    p.sample.forEach((s, i) => {
      const thread = labelOf(p, s, 'thread'), job = labelOf(p, s, 'job');
      const names = flat[i].frames.map((f) => f.name);
      if (thread === 'main') {
        assert.ok(job === undefined || job === 'main', `a main-thread sample carries job=${job}`);
        if (names.includes('burnMain')) {
          assert.strictEqual(job, 'main', 'burnMain runs inside the main thread\'s Do');
          mainLabelled++;
        }
        return;
      }
      assert.strictEqual(thread, W);
      assert.strictEqual(labelOf(p, s, 'thread_name'), 'jobs');
      assert.strictEqual(labelOf(p, s, 'side'), undefined, 'a main-thread label on a Worker sample');
      assert.notStrictEqual(job, 'main', 'a main-thread label on a Worker sample');
      // Every sample in a job's burn carries that job's label, and only there.
      if (names.includes('burnJobA')) assert.strictEqual(job, 'a', `burnJobA sample with job=${job}`);
      else if (names.includes('burnJobB')) assert.strictEqual(job, 'b', `burnJobB sample with job=${job}`);
      if (job === 'a' || job === 'b') {
        count[job] += flat[i].values[0];
        weight[job] += flat[i].values[1];
      }
    });
    assert.ok(mainLabelled > 0, 'main-thread samples in burnMain');
    const n = count.a + count.b;
    assert.ok(count.a > 0 && count.b > 0, `labelled Worker samples: ${JSON.stringify(count)}`);
    const expected = ns.a / (ns.a + ns.b);
    const share = weight.a / (weight.a + weight.b);
    const margin = 4 * Math.sqrt(expected * (1 - expected) / n) + 0.03;
    assert.ok(Math.abs(share - expected) <= margin,
      `job=a: ${(share * 100).toFixed(1)}% of the Worker's labelled samples vs ${(expected * 100).toFixed(1)}% of its measured CPU (±${(margin * 100).toFixed(1)} pts, n=${n})`);
  } finally {
    sp.SetCPUProfileRate(100);
    await w.terminate();
  }
});

// Retirement in a Worker: its label sets collected during the process profile are
// retired there, and each sample still resolves to the labels it was taken under (the
// Worker's ids are not reused before the hand-over that copies their pairs). Each
// request's work function says which parity label it must carry.
test('a Worker\'s label sets retired during the process profile keep resolving in it', async () => {
  const PARITY = 'function parity(id) { return ((id * 2654435761) >>> 7) % 2 === 1; }';
  const parity = new Function('id', PARITY + ' return parity(id);');
  const src = `
const { parentPort } = require('node:worker_threads');
const { Do, Labels } = require(${JSON.stringify(path.join(__dirname, '..'))});
const internals = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'labels.js'))});
require('node:v8').setFlagsFromString('--expose-gc');
const gc = require('node:vm').runInNewContext('gc');
const fs = require('node:fs');
function cpuNs() { return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]); }
function spin(ms) { const t0 = cpuNs(); let s = 0; while (cpuNs() - t0 < ms * 1e6) for (let i = 0; i < 20000; i++) s += Math.sqrt(i); return s; }
function evenWork() { spin(1.5); }
function oddWork() { spin(1.5); }
const tick = () => new Promise((r) => setImmediate(r));
// Pseudo-random per request, so that an id reused with another set's pairs would show on
// whatever order the collected sets free their ids in.
${PARITY}
parentPort.on('message', async (m) => {
  if (!m.go) return;
  while (internals.labelTableStats().profiles === 0) await tick();
  const retired0 = internals.labelTableStats().retired;
  let rounds = 0;
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 60; i++) {
      const id = round * 60 + i;
      const odd = parity(id);
      await Do(Labels('req', String(id), 'parity', odd ? 'odd' : 'even'), async () => {
        await tick();
        (odd ? oddWork : evenWork)();
      });
    }
    const before = internals.labelTableStats().retired;
    for (let k = 0; k < 50 && internals.labelTableStats().retired <= before; k++) { gc(); await tick(); }
    if (internals.labelTableStats().retired > before) rounds++;
  }
  const st = internals.labelTableStats();
  parentPort.postMessage({ done: { rounds, retired: st.retired - retired0, hooks: st.hookInstalled, mechanism: st.mechanism } });
});
parentPort.postMessage({ ready: true });
`;
  const w = new Worker(src, { eval: true });
  await next(w, 'ready');
  try {
    const { out, done } = startWithWorkerJob(w, { go: true });
    const r = await done;
    await sp.StopCPUProfile();
    assert.strictEqual(r.rounds, 4, `label sets retired in the Worker during the profile in every round (${r.retired} in all)`);
    assert.strictEqual(r.hooks, true, 'the Worker\'s label hooks run while it is in the process profile');
    assert.notStrictEqual(r.mechanism, 'none');
    const p = decode(out.buffer());
    const flat = samples(p);
    let checked = 0;
    p.sample.forEach((s, i) => {
      const names = flat[i].frames.map((f) => f.name);
      const even = names.includes('evenWork'), odd = names.includes('oddWork');
      if (!even && !odd) return;
      assert.strictEqual(labelOf(p, s, 'thread'), `worker-${w.threadId}`);
      const req = labelOf(p, s, 'req');
      assert.ok(req !== undefined, 'labelled');
      assert.strictEqual(labelOf(p, s, 'parity'), even ? 'even' : 'odd');
      assert.strictEqual(parity(Number(req)), odd, `req ${req} with ${even ? 'even' : 'odd'}Work`);
      checked += flat[i].values[0];
    });
    // 240 × 1.5 ms of thread CPU = 360 ms at 250 samples/s: ~90 expected; P(< 20) is negligible.
    assert.ok(checked >= 20, `checked ${checked} samples`);
  } finally {
    sp.SetCPUProfileRate(100);
    await w.terminate();
  }
});
