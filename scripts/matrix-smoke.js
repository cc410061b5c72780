'use strict';
/**
 * Smoke test of an installed sigprof, run by scripts/test-matrix.sh under each Node (and under
 * qemu-aarch64 for arm64): a CPU, a heap and a custom profile, each checked by decoding it.
 *
 *   node matrix-smoke.js APP_DIR [--installed]   (APP_DIR has node_modules/sigprof)
 *   --installed: fail unless sigprof resolves to a real copy inside APP_DIR (not a symlink).
 *
 * Run a copy placed outside this repository: from inside it, require('sigprof') would
 * resolve to the repository itself (a package can require itself by name).
 *
 * Prints one JSON line with what it measured; exits 1 with the reason when a check fails.
 * Only sigprof's own dependencies are used (pprof-format is one), resolved from APP_DIR.
 */
const path = require('node:path');
const zlib = require('node:zlib');
const { Writable } = require('node:stream');

const app = path.resolve(process.argv[2] || '.');
const req = (id) => require(require.resolve(id, { paths: [app] }));
const sigprof = req('sigprof');
// pprof-format is sigprof's dependency; with npm's flat layout it sits next to it.
const { Profile } = require(require.resolve('pprof-format', { paths: [path.dirname(require.resolve('sigprof/package.json', { paths: [app] }))] }));

class Sink extends Writable {
  constructor() { super(); this.chunks = []; }
  _write(chunk, _enc, cb) { this.chunks.push(chunk); cb(); }
  buffer() { return Buffer.concat(this.chunks); }
}

function decode(buf) {
  const p = Profile.decode(zlib.gunzipSync(buf));
  const st = p.stringTable.strings;
  const fns = new Map(p.function.map((f) => [Number(f.id), st[Number(f.name)]]));
  const locs = new Map(p.location.map((l) => [Number(l.id), l]));
  return {
    types: p.sampleType.map((t) => st[Number(t.type)]),
    // Frames leaf first; a location's line[0] is its innermost (inlined-into-last) function.
    samples: p.sample.map((s) => ({
      values: s.value.map(Number),
      frames: s.locationId.map((id) => locs.get(Number(id)).line.map((l) => fns.get(Number(l.functionId)))).flat(),
      leaf: fns.get(Number(locs.get(Number(s.locationId[0]))?.line[0]?.functionId)),
    })),
  };
}

function topLeaves(p) {
  const by = new Map();
  for (const s of p.samples) {
    const key = s.frames.slice(0, 3).join(' < ') || '(no frames)';
    by.set(key, (by.get(key) || 0) + s.values[0]);
  }
  return [...by].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${v} ${k}`).join('; ');
}

function fail(msg) {
  console.error(`matrix-smoke (${process.arch}, Node ${process.versions.node}): ${msg}`);
  process.exit(1);
}

// The hot leaf: 32-bit integer arithmetic only, so the JIT calls nothing (a double `%`
// becomes a call to libc's fmod on arm64) and a sample taken while it runs has it on top.
function smokeHotLeaf(n) {
  let x = 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    x = (x + i) | 0;
  }
  return x;
}

// Few, long calls: the leaf's own loop gets optimized (on-stack replacement) in its own
// frame, so every sample's stack is leaf -> caller through the frame pointer and link
// register. smokeCaller stays too cold to be optimized and inline the leaf. (Inlined frames
// are a different check: see docs/packaging.md on what arm64 showed for them.)
function smokeCaller(cpuMs) {
  const start = process.cpuUsage();
  let sink = 0;
  for (;;) {
    sink ^= smokeHotLeaf(5e6);
    const u = process.cpuUsage(start);
    if ((u.user + u.system) / 1000 >= cpuMs) return sink;
  }
}

const retained = [];
function smokeAllocate(mb) {
  // Arrays of 1000 doubles-free SMIs: ~8 KB each on the V8 heap, kept alive.
  for (let i = 0; i < mb * 128; i++) retained.push(new Array(1000).fill(i & 0xff));
}

function smokeAddWidget(profile, obj) {
  profile.Add(obj, 0);
}

async function main() {
  const pkg = path.dirname(require.resolve('sigprof/package.json', { paths: [app] }));
  if (process.argv.includes('--installed') && !pkg.startsWith(app + path.sep)) fail(`sigprof resolved to ${pkg}, outside ${app}`);
  // The binary the loader picks (SIGPROF_ADDON aside): node-gyp-build's choice.
  const binary = process.env.SIGPROF_ADDON || req('node-gyp-build').path(pkg);
  const out = { arch: process.arch, node: process.versions.node, abi: process.versions.modules, binary: path.relative(app, binary) };

  // CPU: 1.5 s of this thread's CPU at 100 Hz is ~150 samples, nearly all in smokeHotLeaf
  // (the loop's own work between calls is a few cpuUsage calls per 200k iterations). The
  // check is "leaf of more than half": with p >= 0.9 per sample and n >= 50 samples,
  // P(<= half) < 1e-15 (binomial tail). Under qemu the emulated clock ticks the same.
  const cpuSink = new Sink();
  sigprof.StartCPUProfile(cpuSink);
  smokeCaller(Number(process.env.SMOKE_CPU_MS || 1500));
  await sigprof.StopCPUProfile();
  const cpu = decode(cpuSink.buffer());
  if (!cpu.types.includes('cpu')) fail(`CPU profile sample types ${cpu.types}`);
  const n = cpu.samples.reduce((a, s) => a + s.values[0], 0);
  const hot = cpu.samples.filter((s) => s.leaf === 'smokeHotLeaf').reduce((a, s) => a + s.values[0], 0);
  const withCaller = cpu.samples.filter((s) => s.leaf === 'smokeHotLeaf' && s.frames.includes('smokeCaller')).reduce((a, s) => a + s.values[0], 0);
  if (n < 50) fail(`CPU profile has ${n} samples, expected >= 50 (is the timer signal delivered?)`);
  if (hot * 2 <= n) fail(`smokeHotLeaf is the leaf of ${hot} of ${n} samples, expected more than half; leaves: ${topLeaves(cpu)}`);
  if (withCaller * 2 <= n) fail(`smokeCaller is below smokeHotLeaf in ${withCaller} of ${n} samples, expected more than half (stack walk)`);
  out.cpu = { samples: n, hotLeaf: hot, hotUnderCaller: withCaller };

  // Heap: 16 MB retained from smokeAllocate at the default 512 KiB sampling rate is ~32
  // samples; the estimate's relative error is ~1/sqrt(32) = 18%, so "more than 4 MB" fails
  // only if the estimate is off by 75% (P < 1e-6).
  smokeAllocate(16);
  const heapSink = new Sink();
  // gc: heap profiles are as of the last GC (Go's semantics) and these arrays were made
  // after it; a full GC first puts them in.
  await sigprof.Lookup('heap').WriteTo(heapSink, 0, { gc: true });
  const heap = decode(heapSink.buffer());
  const space = heap.types.indexOf('inuse_space');
  if (space < 0) fail(`heap profile sample types ${heap.types}`);
  const allocBytes = heap.samples.filter((s) => s.frames.includes('smokeAllocate')).reduce((a, s) => a + s.values[space], 0);
  if (allocBytes < 4 * 1024 * 1024) fail(`heap profile puts ${allocBytes} bytes under smokeAllocate, expected > 4 MB of 16 MB retained`);
  out.heap = { smokeAllocateBytes: allocBytes, retainedArrays: retained.length };

  // Custom profile: exactly the 7 values added, each with smokeAddWidget on its stack.
  const widgets = sigprof.NewProfile('sigprof.smoke/widgets');
  const objs = Array.from({ length: 7 }, (_, i) => ({ i }));
  for (const o of objs) smokeAddWidget(widgets, o);
  const customSink = new Sink();
  await widgets.WriteTo(customSink, 0);
  const custom = decode(customSink.buffer());
  const count = custom.samples.reduce((a, s) => a + s.values[0], 0);
  const under = custom.samples.filter((s) => s.frames.includes('smokeAddWidget')).reduce((a, s) => a + s.values[0], 0);
  if (count !== 7 || under !== 7) fail(`custom profile counts ${count} values (${under} under smokeAddWidget), expected 7`);
  out.custom = { count };

  console.log(JSON.stringify(out));
}

main().catch((err) => fail(err && err.stack || String(err)));
