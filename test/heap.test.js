'use strict';
// Heap profiling: MemProfileRate, the heap/allocs profiles, WriteHeapProfile.
//
// Sizing: the sampler keeps an object of S bytes with probability p = 1 - exp(-S/R). Each
// retained array's backing store is ~64 KiB and R = 64 KiB, so p ≈ 0.63, and for N objects
// the estimate's relative standard deviation is sqrt((1 - p) / (N p)). retainSmall keeps
// N = 320 (≈ 20 MB): sd ≈ 4.3%; retainLarge N = 1280 (≈ 80 MB): sd ≈ 2.2%; their ratio:
// sd ≈ 4.8%. The ±25% bounds below are ≥ 5 sd, so a failure means a real error (e.g.
// scaling twice gives ×1.6, not scaling at all ×0.63), not bad luck.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { PassThrough } = require('node:stream');
const { gunzipSync } = require('node:zlib');
const { execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { Profile } = require('pprof-format');

const heap = require('../dist/heap');
const index = require('../dist/index');

const RATE = 64 * 1024;
const ELEMS = 8192; // an Array of 8192 Smis: a ~64 KiB backing store
const N_SMALL = 320;
const N_LARGE = 4 * N_SMALL;

function retainLarge(into) { for (let i = 0; i < N_LARGE; i++) into.push(new Array(ELEMS).fill(0)); }
function retainSmall(into) { for (let i = 0; i < N_SMALL; i++) into.push(new Array(ELEMS).fill(0)); }
function makeGarbage(n) { let x = 0; for (let i = 0; i < n; i++) x += new Array(ELEMS).fill(1).length; return x; }
function afterOff(into) { for (let i = 0; i < 256; i++) into.push(new Array(ELEMS).fill(0)); }
function afterRestart(into) { for (let i = 0; i < 256; i++) into.push(new Array(ELEMS).fill(0)); }

/** Per leaf function: estimated in-use bytes/objects, live samples, and the most sampled object size. */
function byLeaf(snap) {
  const out = new Map();
  for (const r of snap.records) {
    const k = r.frames[0].name;
    let e = out.get(k);
    if (!e) out.set(k, (e = { bytes: 0, objects: 0, samples: 0, alloc: 0, sizes: new Map() }));
    e.bytes += r.inuseBytes;
    e.objects += r.inuseObjects;
    e.samples += r.liveSamples;
    e.alloc += r.allocBytes;
    e.sizes.set(r.size, (e.sizes.get(r.size) ?? 0) + r.liveSamples);
  }
  return out;
}
function modeSize(e) { return [...e.sizes].sort((a, b) => b[1] - a[1])[0][0]; }
/** One retained array: 8-byte slots plus headers (the ±0.1% of header layout is far inside the bounds). */
const ARRAY_BYTES = 8 * ELEMS + 32;
function isArraySize(size) { return size >= 8 * ELEMS && size < 8 * ELEMS + 256; }

function goAvailable() {
  try { execFileSync('go', ['version'], { stdio: 'pipe' }); return true; } catch { return false; }
}

// Held for the whole file so every test sees the same retained set.
const large = new Array(N_LARGE);
const small = new Array(N_SMALL);
large.length = 0;
small.length = 0;

test('sampling is on at load at Go\'s default rate, and index re-exports the same objects', () => {
  assert.strictEqual(heap.DEFAULT_MEM_PROFILE_RATE, 512 * 1024);
  assert.strictEqual(heap.runtime.MemProfileRate, 512 * 1024);
  assert.strictEqual(index.runtime, heap.runtime);
  assert.strictEqual(index.WriteHeapProfile, heap.WriteHeapProfile);
  assert.strictEqual(index.writeHeapProfile, heap.WriteHeapProfile);
  // 8 MB retained = 16 sampling intervals: P(no sample) = e^-16.
  const keep = [];
  for (let i = 0; i < 128; i++) keep.push(new Array(ELEMS).fill(0));
  // gc: a profile is as of the last GC (docs/heap.md), and no GC need have run since.
  const snap = heap.takeHeapSnapshot({ gc: true });
  assert.ok(snap.records.some((r) => r.liveSamples > 0 && r.size > 8 * ELEMS && r.size < 8 * ELEMS + 256), 'no samples at the default rate');
  assert.strictEqual(keep.length, 128);
});

test('in-use bytes match what each function retains, and their ratio is ~4', () => {
  heap.runtime.MemProfileRate = RATE;
  retainLarge(large);
  retainSmall(small);
  const snap = heap.takeHeapSnapshot({ gc: true });
  assert.strictEqual(snap.rate, RATE);
  const leaf = byLeaf(snap);
  const L = leaf.get('retainLarge');
  const S = leaf.get('retainSmall');
  assert.ok(L && S, `missing functions in ${[...leaf.keys()].join(', ')}`);
  // V8 reports the sampled allocation's size: the backing store alone (interpreter) or
  // folded with the JSArray header (optimized code), 65552 to 65600 bytes here.
  for (const e of [L, S]) assert.ok(isArraySize(modeSize(e)), `unexpected sizes ${[...e.sizes]}`);
  const truthL = N_LARGE * ARRAY_BYTES;
  const truthS = N_SMALL * ARRAY_BYTES;
  assert.ok(Math.abs(L.bytes / truthL - 1) < 0.25, `retainLarge ${L.bytes} vs ${truthL} (${L.samples} samples)`);
  assert.ok(Math.abs(S.bytes / truthS - 1) < 0.25, `retainSmall ${S.bytes} vs ${truthS} (${S.samples} samples)`);
  const ratio = L.bytes / S.bytes;
  assert.ok(ratio > 3 && ratio < 5, `ratio ${ratio}`);
  // Scaled once: our per-sample scaling and V8's own (already unsampled) tree agree up to
  // V8's per-bucket rounding. Scaling the tree again would be off by ~1/p ≈ 1.6.
  if (!snap.hasAlloc) {
    const ours = snap.records.reduce((t, r) => t + r.inuseBytes, 0);
    assert.ok(Math.abs(ours / snap.treeBytes - 1) < 0.01, `ours ${ours} vs V8's tree ${snap.treeBytes}`);
  }
});

test('collected garbage does not count as in use', () => {
  const GARBAGE = 2000; // ≈ 130 MB allocated and dropped
  assert.ok(makeGarbage(GARBAGE) > 0);
  const snap = heap.takeHeapSnapshot({ gc: true });
  const leaf = byLeaf(snap);
  const g = leaf.get('makeGarbage');
  // Not zero: V8 allocates makeGarbage's own live metadata (feedback, optimized code) while
  // it runs, and such an object may be sampled. None of the dropped arrays may count.
  const liveArrays = g ? [...g.sizes].filter(([size]) => isArraySize(size)).reduce((t, [, n]) => t + n, 0) : 0;
  assert.strictEqual(liveArrays, 0, `makeGarbage's arrays still live after a full GC: ${g && [...g.sizes]}`);
  assert.ok(!g || g.bytes < 1 << 20, `makeGarbage in use: ${g && g.bytes}`);
  if (snap.hasAlloc) {
    // V8 >= 14: the same samples show up as allocations.
    const truth = GARBAGE * ARRAY_BYTES;
    assert.ok(g && Math.abs(g.alloc / truth - 1) < 0.25, `alloc ${g && g.alloc} vs ${truth}`);
  }
  // The retained set is still there.
  assert.ok(leaf.get('retainLarge').samples > 0);
});

test('a profile read without gc is as of the last GC: garbage allocated since is not in use (Go\'s semantics)', () => {
  // Issue 9: right after a burst of short-lived allocations, garbage no GC had reached yet
  // counted as in use (12.6 MB in a function retaining nothing vs 43 MB retained). Before
  // the fix this child reported ~8 MB of churnGarbage against ~4 MB retained (190%).
  // Sizing: 256 retained arrays of 16,400 bytes at R = 16 KiB, each sampled with
  // p = 1 - exp(-16400/16384) = 0.632: the live sample count is Binomial(256, 0.632),
  // mean 162, sd 7.7, so the estimate is off by 50% with probability < 1e-25. The garbage
  // bound needs no luck: after the fix no dead array can count, only the one being
  // allocated when a GC ran (~26 KB estimated each) and churnGarbage's own code metadata.
  const RETAIN = 4 << 20;
  const out = execFileSync(process.execPath, [
    '--min-semi-space-size=16', '--max-semi-space-size=16',
    path.join(__dirname, 'fixtures', 'heap-last-gc.js'), String(16 << 10), String(RETAIN), String(128 << 20),
  ], { encoding: 'utf8' });
  const r = JSON.parse(out);
  const truth = r.objects * (8 * 2048 + 32);
  assert.ok(r.retained > 0.5 * truth && r.retained < 1.5 * truth, `retained ${r.retained} vs ${truth}`);
  assert.ok(r.garbage < 0.05 * r.retained, `churnGarbage in use: ${r.garbage} bytes, ${(100 * r.garbage / r.retained).toFixed(1)}% of the retained ${r.retained}`);
  // The samples of the garbage allocated since the last GC exist and were left out.
  assert.ok(r.afterGC > 0, JSON.stringify(r));
  assert.ok(r.comments.some((c) => /as of the most recently completed garbage collection/.test(c)), r.comments.join('\n'));
});

test('invalid rates throw with a stable code and change nothing', () => {
  const before = byLeaf(heap.takeHeapSnapshot()).get('retainLarge').samples;
  const cases = [
    [-1, RangeError, 'ERR_INVALID_RATE'], [1.5, RangeError, 'ERR_INVALID_RATE'],
    [NaN, RangeError, 'ERR_INVALID_RATE'], [Infinity, RangeError, 'ERR_INVALID_RATE'],
    [-Infinity, RangeError, 'ERR_INVALID_RATE'], [2 ** 31, RangeError, 'ERR_INVALID_RATE'],
    ['65536', TypeError, 'ERR_INVALID_ARG_TYPE'], [null, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [undefined, TypeError, 'ERR_INVALID_ARG_TYPE'], [{}, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [65536n, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [v, type, code] of cases) {
    assert.throws(() => { heap.runtime.MemProfileRate = v; }, (e) => e instanceof type && e.code === code, String(v));
    assert.strictEqual(heap.runtime.MemProfileRate, RATE);
  }
  // Not restarted: a restart would have dropped every sample.
  assert.strictEqual(byLeaf(heap.takeHeapSnapshot()).get('retainLarge').samples, before);
  // Same value again: a no-op, not a restart.
  heap.runtime.MemProfileRate = RATE;
  assert.strictEqual(byLeaf(heap.takeHeapSnapshot()).get('retainLarge').samples, before);
});

test('WriteHeapProfile writes a gzipped pprof heap profile', async () => {
  const chunks = [];
  const out = new PassThrough();
  out.on('data', (c) => chunks.push(c));
  await heap.WriteHeapProfile(out);
  const p = Profile.decode(gunzipSync(Buffer.concat(chunks)));
  const str = (i) => p.stringTable.strings[Number(i)];
  const types = p.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`);
  if (heap.heapHasAllocEstimate) {
    assert.deepStrictEqual(types, ['alloc_objects/count', 'alloc_space/bytes', 'inuse_objects/count', 'inuse_space/bytes']);
  } else {
    assert.deepStrictEqual(types, ['inuse_objects/count', 'inuse_space/bytes']);
  }
  assert.strictEqual(str(p.defaultSampleType), 'inuse_space');
  assert.strictEqual(`${str(p.periodType.type)}/${str(p.periodType.unit)}`, 'space/bytes');
  assert.strictEqual(Number(p.period), RATE);
  const iSpace = types.indexOf('inuse_space/bytes');
  const fnName = new Map(p.function.map((f) => [Number(f.id), str(f.name)]));
  const locFn = new Map(p.location.map((l) => [Number(l.id), fnName.get(Number(l.line[0].functionId))]));
  let largeBytes = 0;
  for (const s of p.sample) {
    if (locFn.get(Number(s.locationId[0])) === 'retainLarge') largeBytes += Number(s.value[iSpace]);
    // Go's per-sample `bytes` label.
    assert.ok(s.label.some((l) => str(l.key) === 'bytes' && Number(l.num) > 0));
  }
  const truth = N_LARGE * ARRAY_BYTES;
  assert.ok(Math.abs(largeBytes / truth - 1) < 0.25, `retainLarge ${largeBytes} vs ~${truth}`);

  await assert.rejects(heap.WriteHeapProfile({}), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE');
});

test('allocs: alloc_space by default where V8 can estimate it, otherwise in-use only and says so', async () => {
  const p = Profile.decode(gunzipSync(await heap.allocsProfileSource.render(0)));
  const str = (i) => p.stringTable.strings[Number(i)];
  if (heap.heapHasAllocEstimate) {
    assert.strictEqual(str(p.defaultSampleType), 'alloc_space');
  } else {
    assert.deepStrictEqual(p.sampleType.map((t) => str(t.type)), ['inuse_objects', 'inuse_space']);
    assert.strictEqual(str(p.defaultSampleType), 'inuse_space');
    assert.ok(p.comment.map(str).some((c) => /in-use values only/.test(c)));
    assert.match(heap.allocsProfileSource.description, /in-use objects only/i);
  }
  assert.strictEqual(heap.heapProfileSource.name, 'heap');
  assert.strictEqual(heap.allocsProfileSource.name, 'allocs');
  assert.ok(heap.heapProfileSource.count() > 0);
});

test('debug=1 is Go\'s legacy heap text with consistent synthetic addresses', async () => {
  const text = await heap.heapProfileSource.render(1);
  assert.strictEqual(typeof text, 'string');
  const lines = text.split('\n');
  const header = lines[0].match(/^heap profile: (\d+): (\d+) \[(\d+): (\d+)\] @ heap\/(\d+)$/);
  assert.ok(header, lines[0]);
  assert.strictEqual(Number(header[5]), 2 * RATE);
  if (!heap.heapHasAllocEstimate) assert.deepStrictEqual([header[3], header[4]], ['0', '0']);
  const addrName = new Map();
  let records = 0;
  let sumN = 0;
  let sawLarge = false;
  for (let i = 1; i < lines.length; i++) {
    const m = lines[i].match(/^(\d+): (\d+) \[(\d+): (\d+)\] @((?: 0x[0-9a-f]+)+)$/);
    if (!m) continue;
    records++;
    sumN += Number(m[1]);
    const addrs = m[5].trim().split(' ');
    for (let j = 0; j < addrs.length; j++) {
      const f = lines[i + 1 + j].match(/^#\t(0x[0-9a-f]+)\t(.+)\+0x0\t(.*):(\d+)$/);
      assert.ok(f, `frame line ${JSON.stringify(lines[i + 1 + j])}`);
      assert.strictEqual(f[1], addrs[j]);
      const key = `${f[2]}\t${f[3]}:${f[4]}`;
      if (addrName.has(f[1])) assert.strictEqual(addrName.get(f[1]), key, 'one address, one frame');
      addrName.set(f[1], key);
      if (j === 0 && f[2] === 'retainLarge') sawLarge = true;
    }
    assert.strictEqual(lines[i + 1 + addrs.length], '', 'a blank line ends each record');
  }
  assert.ok(records > 0 && sawLarge);
  assert.strictEqual(sumN, Number(header[1]), 'header totals are the sum of the records');
  // Distinct frames have distinct addresses.
  assert.strictEqual(new Set(addrName.values()).size, addrName.size);
  assert.match(text, /\n# v8\.getHeapStatistics\(\)\n# total_heap_size = \d+\n/);
  assert.match(text, /\n# MemProfileRate = 65536\n/);
  assert.match(await heap.heapProfileSource.render(2), /^heap profile: \d+: \d+ \[\d+: \d+\] @ heap\/131072\n/);
});

test('go tool pprof reads both formats and agrees with our estimate', { skip: !goAvailable() && 'go is not on PATH' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-heap-'));
  try {
    const pb = path.join(dir, 'heap.pb.gz');
    await heap.WriteHeapProfile(fs.createWriteStream(pb));
    const top = execFileSync('go', ['tool', 'pprof', '-sample_index=inuse_space', '-top', '-unit=B', pb], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const flat = (name) => {
      const line = top.split('\n').find((l) => l.trim().split(/\s+/)[5] === name);
      assert.ok(line, `${name} not in:\n${top}`);
      return Number(line.trim().split(/\s+/)[0].replace(/B$/, ''));
    };
    const ratio = flat('retainLarge') / flat('retainSmall');
    assert.ok(ratio > 3 && ratio < 5, `pprof ratio ${ratio}\n${top}`);
    assert.ok(Math.abs(flat('retainLarge') / (N_LARGE * ARRAY_BYTES) - 1) < 0.25, top);

    // The legacy text carries raw counts; pprof unsamples them with the header's rate, so its
    // total must match our own estimate (writing estimates there would inflate it ~1.6x).
    const txt = path.join(dir, 'heap.txt');
    fs.writeFileSync(txt, await heap.heapProfileSource.render(1));
    const snap = heap.takeHeapSnapshot();
    const ours = snap.records.reduce((t, r) => t + r.inuseBytes, 0);
    const legacy = execFileSync('go', ['tool', 'pprof', '-sample_index=inuse_space', '-top', '-unit=B', '-symbolize=none', txt], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const m = legacy.match(/of ([\d.]+)B total/);
    assert.ok(m, legacy);
    assert.ok(Math.abs(Number(m[1]) / ours - 1) < 0.05, `pprof total ${m[1]} vs ours ${ours}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rate 0 stops sampling; a new rate starts an empty in-use view', () => {
  heap.runtime.MemProfileRate = 0;
  assert.strictEqual(heap.runtime.MemProfileRate, 0);
  const off = [];
  afterOff(off);
  let snap = heap.takeHeapSnapshot();
  assert.ok(!byLeaf(snap).has('afterOff'));
  assert.strictEqual(snap.records.filter((r) => r.liveSamples > 0).length, 0);
  assert.ok(snap.comments.some((c) => /MemProfileRate is 0/.test(c)));

  heap.runtime.MemProfileRate = RATE;
  const on = [];
  afterRestart(on);
  snap = heap.takeHeapSnapshot({ gc: true });
  const leaf = byLeaf(snap);
  // Documented: restarting V8's sampler drops the samples of objects allocated before.
  assert.ok(!leaf.has('retainLarge') || leaf.get('retainLarge').samples === 0);
  assert.ok(!leaf.has('afterOff'));
  assert.ok(leaf.get('afterRestart').samples > 0);
  assert.strictEqual(on.length + off.length, 512);
});

test('V8 >= 14: folding and restarting keeps the allocation totals', { skip: !heap.heapHasAllocEstimate && 'needs is_live (V8 >= 14)' }, () => {
  makeGarbage(500);
  const before = byLeaf(heap.takeHeapSnapshot()).get('makeGarbage').alloc;
  heap._foldAndRestartForTest();
  const after = byLeaf(heap.takeHeapSnapshot()).get('makeGarbage');
  assert.ok(Math.abs(after.alloc / before - 1) < 1e-9, `${after.alloc} vs ${before}`);
  assert.strictEqual(after.samples, 0);
});

test('each Worker profiles its own isolate', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const heap = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'heap.js'))});
    heap.runtime.MemProfileRate = 65536;
    const keep = [];
    function workerRetains() { for (let i = 0; i < 200; i++) keep.push(new Array(8192).fill(0)); }
    workerRetains();
    const names = new Set(heap.takeHeapSnapshot({ gc: true }).records.map((r) => r.frames[0].name));
    parentPort.postMessage([...names]);
  `;
  const names = await new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', resolve);
    w.once('error', reject);
  });
  assert.ok(names.includes('workerRetains'), names.join(', '));
  assert.ok(!names.includes('retainLarge'));
  const mine = new Set(heap.takeHeapSnapshot().records.map((r) => r.frames[0].name));
  assert.ok(!mine.has('workerRetains'));
});

test('allocations of a script that was collected keep its file and the function\'s first line (from the code map)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-collected-'));
  const mod = path.join(dir, 'collected-module.js');
  // Nothing of the module stays reachable once it has run: only the arrays it made, on
  // globalThis. V8's sampler then has no script to name allocateKept's file and line from.
  fs.writeFileSync(mod, [
    '// padding, so the function does not start on line 1',
    '',
    'function allocateKept() {',
    '  globalThis.kept = [];',
    '  for (let i = 0; i < 2000; i++) globalThis.kept.push(new Array(64).fill(i));',
    '}',
    'allocateKept();',
    '',
  ].join('\n'));
  const app = `
    const sp = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    sp.runtime.MemProfileRate = 4096;
    require(${JSON.stringify(mod)});
    delete require.cache[${JSON.stringify(mod)}];
    module.children.length = 0;
    for (let i = 0; i < 5; i++) gc();
    const chunks = [];
    const w = new (require('node:stream').Writable)({ write(c, _e, cb) { chunks.push(c); cb(); } });
    sp.WriteHeapProfile(w).then(() => {
      const { Profile } = require('pprof-format');
      const p = Profile.decode(require('node:zlib').gunzipSync(Buffer.concat(chunks)));
      const st = p.stringTable.strings;
      const fns = p.function.filter((f) => st[Number(f.name)] === 'allocateKept')
        .map((f) => ({ file: st[Number(f.filename)], start: Number(f.startLine) }));
      process.stdout.write(JSON.stringify(fns));
    });`;
  const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', app], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' }));
  fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(out.length >= 1, 'allocateKept holds sampled live arrays');
  for (const f of out) {
    assert.strictEqual(f.file, mod);
    assert.strictEqual(f.start, 3);
  }
});
