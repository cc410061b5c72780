'use strict';
// Source maps (issue 13): a TypeScript program compiled by tsc (external and inline maps)
// and bundled by esbuild (plain and minified) is profiled in a child process, with and
// without --enable-source-maps; its CPU, heap and custom profiles must name the .ts file,
// line and original function. Bad maps, the off switch, search directories, sourceRoot
// and the cache bound are checked in this process.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync, execFileSync } = require('node:child_process');
const { decode, samples, MemoryWritable, haveGo, goPprof } = require('./helpers');
const sigprof = require('../dist/index.js');

const ROOT = path.join(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'sourcemaps');
const HOT = path.join(FIXTURE, 'src', 'hot.ts');
const MAIN = path.join(FIXTURE, 'src', 'main.ts');
// Lines of src/hot.ts and src/main.ts the profiles must point at.
const CRUNCH_START = 8;
const CRUNCH_HOT_LINE = 11;
const ALLOC_START = 17;
const RECORD_ADD_LINE = 25;
const MAIN_RECORD_LINE = 34;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-sourcemaps-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tsc(outDir, ...extra) {
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(FIXTURE, 'tsconfig.json'), '--outDir', outDir, ...extra], { stdio: 'pipe' });
}

function esbuild(outfile, minify) {
  require('esbuild').buildSync({
    entryPoints: [path.join(FIXTURE, 'src', 'main.ts')], bundle: true, platform: 'node', format: 'cjs',
    sourcemap: true, minify, outfile, logLevel: 'silent',
  });
  return outfile;
}

let builtApps;
function apps() {
  if (builtApps) return builtApps;
  tsc(path.join(tmp, 'tsc'));
  tsc(path.join(tmp, 'inline'), '--sourceMap', 'false', '--inlineSourceMap', 'true');
  builtApps = {
    tsc: path.join(tmp, 'tsc', 'main.js'),
    inline: path.join(tmp, 'inline', 'main.js'),
    bundle: esbuild(path.join(tmp, 'bundle', 'app.js'), false),
    minified: esbuild(path.join(tmp, 'minified', 'app.js'), true),
  };
  return builtApps;
}

/** Runs the compiled program under sigprof; returns its decoded profiles. */
function runApp(script, { nodeArgs = [], env = {}, cpuMs = 1000 } = {}) {
  const out = fs.mkdtempSync(path.join(tmp, 'out-'));
  const r = spawnSync(process.execPath, [...nodeArgs, '-r', path.join(ROOT, 'register.js'), script], {
    env: { ...process.env, SIGPROF_PATH: ROOT, OUT_DIR: out, CPU_MS: String(cpuMs), ...env },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `the app failed:\n${r.stderr}`);
  const read = (f) => fs.readFileSync(path.join(out, f));
  return {
    dir: out,
    stderr: r.stderr,
    result: JSON.parse(r.stdout.trim().split('\n').pop()),
    cpu: decode(read('cpu.pb.gz')),
    heap: decode(read('heap.pb.gz')),
    custom: decode(read('custom.pb.gz')),
    customText: read('custom.txt').toString('utf8'),
  };
}

// The CPU loop is crunchNumbers with a process.cpuUsage() call every 200,000 rounds, so
// its true leaf share is well above 0.9. Requiring >= 30 samples and a share >= 0.6: for
// n = 30 and p = 0.9, P(Binomial(n, p) < 0.6 n) < 1e-5 (Chernoff: exp(-n·KL(0.6‖0.9)) ≈ 2e-5
// at n = 30, and smaller for the ~100 samples a 1 s CPU budget at 100 Hz gives).
function assertCpu(cpu, label) {
  const all = samples(cpu);
  const total = all.reduce((t, s) => t + s.values[0], 0);
  assert.ok(total >= 30, `${label}: ${total} CPU samples, too few to judge`);
  let hot = 0;
  for (const s of all) {
    const leaf = s.frames[0];
    if (leaf.name === 'crunchNumbers' && leaf.file === HOT && leaf.line === CRUNCH_HOT_LINE) hot += s.values[0];
  }
  assert.ok(hot >= 0.6 * total, `${label}: crunchNumbers at hot.ts:${CRUNCH_HOT_LINE} has ${hot} of ${total} samples; leaves: ${JSON.stringify(all.slice(0, 3).map((s) => s.frames[0]))}`);
  const fn = all.find((s) => s.frames[0].name === 'crunchNumbers').frames[0];
  assert.equal(fn.startLine, CRUNCH_START, `${label}: crunchNumbers starts at hot.ts:${CRUNCH_START}`);
}

// 20,000 arrays of 64 numbers (~11 MB) kept live, sampled every 4 KiB on average: thousands
// of samples, of which allocateBlocks' share is > 0.9 (the rest is startup). >= 0.5 cannot
// fail by chance at that sample count.
function assertHeap(heap, label) {
  const st = heap.stringTable.strings;
  const inuse = heap.sampleType.findIndex((t) => st[Number(t.type)] === 'inuse_space');
  const all = samples(heap);
  const total = all.reduce((t, s) => t + s.values[inuse], 0);
  const mine = all.filter((s) => s.frames[0].name === 'allocateBlocks' && s.frames[0].file === HOT && s.frames[0].line === ALLOC_START)
    .reduce((t, s) => t + s.values[inuse], 0);
  assert.ok(mine >= 0.5 * total, `${label}: allocateBlocks at hot.ts:${ALLOC_START} holds ${mine} of ${total} in-use bytes`);
}

function assertCustom(r, label, { names = true } = {}) {
  const all = samples(r.custom);
  assert.equal(all.length, 1, `${label}: one stack in the custom profile`);
  assert.equal(all[0].values[0], 5);
  const [leaf, caller] = all[0].frames;
  assert.deepEqual([leaf.file, leaf.line], [HOT, RECORD_ADD_LINE], `${label}: custom leaf ${JSON.stringify(leaf)}`);
  assert.deepEqual([caller.file, caller.line], [MAIN, MAIN_RECORD_LINE], `${label}: custom caller ${JSON.stringify(caller)}`);
  if (names) {
    assert.equal(leaf.name, 'recordResource', `${label}: custom leaf ${JSON.stringify(leaf)}`);
    assert.equal(caller.name, 'main', `${label}: custom caller ${JSON.stringify(caller)}`);
    // The function's own start, found for captured frames too (the leaf's is hot.ts:24).
    assert.equal(leaf.startLine, RECORD_ADD_LINE - 1, `${label}: custom leaf ${JSON.stringify(leaf)}`);
  }
  assert.match(r.customText, new RegExp(`\\t${HOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${RECORD_ADD_LINE}\\n`), `${label}: debug=1 text`);
}

for (const variant of ['tsc', 'inline', 'bundle', 'minified']) {
  for (const nodeMaps of [false, true]) {
    const label = `${variant}${nodeMaps ? ' --enable-source-maps' : ''}`;
    test(`source maps: ${label}: CPU, heap and custom profiles name the .ts file, line and function`, () => {
      const r = runApp(apps()[variant], { nodeArgs: nodeMaps ? ['--enable-source-maps'] : [] });
      assert.doesNotMatch(r.stderr, /SIGPROF_SOURCE_MAP/, 'no source map warning for good maps');
      assertCpu(r.cpu, label);
      assertHeap(r.heap, label);
      // Minified included: a captured frame's function start comes from the code map's
      // position index (V8's stack trace reports none), and the map's name there is the
      // original one (docs/source-maps.md).
      assertCustom(r, label);
      // Which path served: Node's own maps when it has them, else the maps sigprof read.
      if (nodeMaps) {
        assert.ok(r.result.maps.nodeMaps > 0, `${label}: Node's maps used (${JSON.stringify(r.result.maps)})`);
        assert.equal(r.result.maps.loadedMaps, 0);
      } else {
        assert.ok(r.result.maps.loadedMaps > 0, `${label}: maps read (${JSON.stringify(r.result.maps)})`);
        assert.equal(r.result.maps.nodeMaps, 0);
      }
      if (variant === 'minified') {
        // The generated names are one letter: the mapped ones are the map's `names`.
        const gen = runApp(apps()[variant], { env: { SIGPROF_SOURCE_MAPS: '0' }, cpuMs: 100 });
        assert.ok(!samples(gen.heap).some((s) => s.frames[0].name === 'allocateBlocks'), 'unmapped, the minified name shows');
      }
    });
  }
}

test('source maps: SIGPROF_SOURCE_MAPS=0 leaves every frame generated', () => {
  const r = runApp(apps().tsc, { env: { SIGPROF_SOURCE_MAPS: '0' }, cpuMs: 300 });
  const files = new Set();
  for (const p of [r.cpu, r.heap, r.custom]) for (const s of samples(p)) for (const f of s.frames) files.add(f.file);
  assert.ok(![...files].some((f) => f.endsWith('.ts')), `no .ts file: ${[...files].join(', ')}`);
  assert.ok(files.has(path.join(tmp, 'tsc', 'hot.js')));
  assert.equal(r.result.maps.enabled, false);
});

test('source maps: go tool pprof -list finds the TypeScript source', { skip: !haveGo() && 'go is not installed' }, () => {
  for (const variant of ['tsc', 'bundle']) {
    const r = runApp(apps()[variant], { cpuMs: 500 });
    const file = path.join(r.dir, 'cpu.pb.gz');
    const list = goPprof(['-list', '^crunchNumbers$', file]);
    assert.match(list, new RegExp(`ROUTINE =+ crunchNumbers in ${HOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), `${variant}: ${list}`);
    assert.match(list, /\s11:\s+acc = \(acc \* 31 \+ i\) % 1000003;/, `${variant}: the hot source line is listed`);
    const top = goPprof(['-top', '-lines', file]);
    assert.match(top, /crunchNumbers \S*src\/hot\.ts:11/, `${variant}: -top -lines`);
  }
});

// ---- in this process ---------------------------------------------------------------------

/** Base64 VLQ of one value (the source map spec's encoding); for hand-written test maps. */
function vlq(n) {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let v = n < 0 ? (-n << 1) | 1 : n << 1;
  let s = '';
  do {
    let digit = v & 31;
    v >>>= 5;
    if (v > 0) digit |= 32;
    s += chars[digit];
  } while (v > 0);
  return s;
}

/** A map sending every column of generated line `genLine` (1-based) to `source`:`origLine`. */
function lineMap(genLine, origLine, fields = {}) {
  return { version: 3, sources: ['thing.ts'], names: [], mappings: ';'.repeat(genLine - 1) + 'A' + 'A' + vlq(origLine - 1) + 'A', ...fields };
}

const THING_TS = Array.from({ length: 12 }, (_, i) => `// original line ${i + 1}`).join('\n') + '\n';
let scriptSeq = 0;

/**
 * Writes a script whose second line records a custom-profile entry (so the frame is at
 * line 2), with `comment` as its last line; requires it after sigprof so V8 gives lines.
 */
function script(dir, name, comment) {
  fs.mkdirSync(dir, { recursive: true });
  const fn = `${name.replace(/\W/g, '_')}_${++scriptSeq}`;
  const file = path.join(dir, `${name}.js`);
  fs.writeFileSync(file, `'use strict';\nexports.run = function ${fn}(p, v) { p.Add(v, 1); };\n${comment ?? ''}\n`);
  return { file, run: require(file).run, fn };
}

async function leafOf(run) {
  const p = sigprof.NewProfile(`sourcemaps.test.${++scriptSeq}`);
  run(p, {});
  const pb = new MemoryWritable();
  await p.WriteTo(pb, 0);
  const text = new MemoryWritable();
  await p.WriteTo(text, 1);
  return { leaf: samples(decode(pb.buffer()))[0].frames[0], text: text.buffer().toString('utf8') };
}

function collectWarnings() {
  const seen = [];
  const on = (w) => { if (w.code === 'SIGPROF_SOURCE_MAP') seen.push(w.message); };
  process.on('warning', on);
  return { seen, stop: () => process.removeListener('warning', on) };
}

// emitWarning delivers on the next tick.
const ticks = () => new Promise((resolve) => setImmediate(resolve));

test('source maps: bad maps give one warning each and generated frames; profiles are still written', async () => {
  sigprof.SetSourceMaps(true);
  const dir = path.join(tmp, 'bad');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'broken.js.map'), '{"version":3,"sources":["thing.ts"],"mappings":"AA');
  fs.writeFileSync(path.join(dir, 'v2.js.map'), JSON.stringify({ version: 2, sources: [], mappings: '' }));
  fs.writeFileSync(path.join(dir, 'thing.ts'), THING_TS);
  // Source index 5 of a one-source map.
  fs.writeFileSync(path.join(dir, 'pastsources.js.map'), JSON.stringify({ version: 3, sources: ['thing.ts'], names: [], mappings: ';A' + vlq(5) + 'AA' }));
  // Line 40 of a 13-line source (given in sourcesContent, and on disk for the second).
  fs.writeFileSync(path.join(dir, 'pastend.js.map'), JSON.stringify(lineMap(2, 40, { sourcesContent: [THING_TS] })));
  fs.writeFileSync(path.join(dir, 'pastfile.js.map'), JSON.stringify(lineMap(2, 40)));
  const cases = {
    missing: script(dir, 'missing', '//# sourceMappingURL=missing.js.map'),
    broken: script(dir, 'broken', '//# sourceMappingURL=broken.js.map'),
    v2: script(dir, 'v2', '//# sourceMappingURL=v2.js.map'),
    inline: script(dir, 'inline', '//# sourceMappingURL=data:application/json;base64,eyJub3QganNvbg=='),
    pastsources: script(dir, 'pastsources', '//# sourceMappingURL=pastsources.js.map'),
    pastend: script(dir, 'pastend', '//# sourceMappingURL=pastend.js.map'),
    pastfile: script(dir, 'pastfile', '//# sourceMappingURL=pastfile.js.map'),
  };
  const w = collectWarnings();
  try {
    for (let round = 0; round < 2; round++) {
      for (const [name, c] of Object.entries(cases)) {
        const { leaf, text } = await leafOf(c.run);
        assert.deepEqual([leaf.name, leaf.file, leaf.line], [c.fn, c.file, 2], `${name}: generated frame`);
        assert.match(text, new RegExp(`\\t${c.fn}\\+0x10\\t+${c.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2\\n`));
      }
      const heap = new MemoryWritable();
      await sigprof.WriteHeapProfile(heap);
      assert.ok(decode(heap.buffer()).sample.length > 0, 'the heap profile is written');
      await ticks();
    }
  } finally {
    w.stop();
  }
  assert.equal(w.seen.length, Object.keys(cases).length, `one warning per bad map, not per write:\n${w.seen.join('\n')}`);
  for (const name of Object.keys(cases)) {
    assert.equal(w.seen.filter((m) => m.includes(`${name}.js`)).length, 1, `one warning for ${name}: ${w.seen.join('\n')}`);
  }
  for (const m of w.seen) assert.doesNotMatch(m, /\n/, 'one line');
});

test('source maps: a map over maxMapBytes is skipped with one warning', async () => {
  const dir = path.join(tmp, 'huge');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'thing.ts'), THING_TS);
  fs.writeFileSync(path.join(dir, 'huge.js.map'), JSON.stringify(lineMap(2, 5, { names: Array.from({ length: 200 }, (_, i) => `n${i}`) })));
  const c = script(dir, 'huge', '//# sourceMappingURL=huge.js.map');
  const w = collectWarnings();
  try {
    sigprof.SetSourceMaps({ enabled: true, maxMapBytes: 1000 });
    assert.deepEqual([(await leafOf(c.run)).leaf.file], [c.file]);
    await leafOf(c.run);
    await ticks();
    assert.equal(w.seen.length, 1, w.seen.join('\n'));
    assert.match(w.seen[0], /over the 1000-byte limit/);
    sigprof.SetSourceMaps({ maxMapBytes: 64 * 1024 * 1024 });
    const { leaf } = await leafOf(c.run);
    assert.deepEqual([leaf.file, leaf.line], [path.join(dir, 'thing.ts'), 5]);
  } finally {
    w.stop();
  }
});

test('source maps: SetSourceMaps(false) turns mapping off and on; bad options are refused', async () => {
  const dir = path.join(tmp, 'toggle');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'thing.ts'), THING_TS);
  fs.writeFileSync(path.join(dir, 'toggle.js.map'), JSON.stringify(lineMap(2, 7)));
  const c = script(dir, 'toggle', '//# sourceMappingURL=toggle.js.map');
  sigprof.SetSourceMaps(true);
  assert.deepEqual(pick((await leafOf(c.run)).leaf), [path.join(dir, 'thing.ts'), 7]);
  sigprof.SetSourceMaps(false);
  assert.equal(sigprof.SourceMapStats().enabled, false);
  assert.deepEqual(pick((await leafOf(c.run)).leaf), [c.file, 2]);
  sigprof.SetSourceMaps(true);
  assert.deepEqual(pick((await leafOf(c.run)).leaf), [path.join(dir, 'thing.ts'), 7]);
  for (const bad of [null, 'yes', { enabled: 1 }, { searchDirs: 'dir' }, { searchDirs: [''] }, { cacheBytes: 0 }, { maxMapBytes: 1.5 }]) {
    assert.throws(() => sigprof.SetSourceMaps(bad), { code: 'ERR_INVALID_ARG_TYPE' }, JSON.stringify(bad));
  }
  assert.equal(sigprof.SourceMapStats().enabled, true, 'a refused call changes nothing');
  // Options without `enabled` leave it as it is.
  sigprof.SetSourceMaps(false);
  sigprof.SetSourceMaps({ cacheBytes: 1 << 20 });
  assert.equal(sigprof.SourceMapStats().enabled, false);
  assert.equal(sigprof.SourceMapStats().cacheBytes, 1 << 20);
  sigprof.SetSourceMaps({ enabled: true, cacheBytes: 64 * 1024 * 1024 });
  assert.equal(sigprof.setSourceMaps, sigprof.SetSourceMaps);
});

function pick(f) {
  return [f.file, f.line];
}

test('source maps: search directories serve scripts without a sourceMappingURL comment', async () => {
  const app = path.join(tmp, 'search', 'app', 'dist');
  const maps = path.join(tmp, 'search', 'maps');
  fs.mkdirSync(path.join(maps, 'dist'), { recursive: true });
  fs.mkdirSync(path.join(maps, 'other'), { recursive: true });
  fs.writeFileSync(path.join(maps, 'thing.ts'), THING_TS);
  // The same basename twice: the one whose path agrees with the script's longest wins.
  fs.writeFileSync(path.join(maps, 'dist', 'server.js.map'), JSON.stringify(lineMap(2, 9, { sources: ['../thing.ts'] })));
  fs.writeFileSync(path.join(maps, 'other', 'server.js.map'), JSON.stringify(lineMap(2, 3, { sources: ['../thing.ts'] })));
  const c = script(app, 'server');
  sigprof.SetSourceMaps({ enabled: true, searchDirs: [] });
  assert.deepEqual(pick((await leafOf(c.run)).leaf), [c.file, 2], 'no comment, no search dir: generated');
  sigprof.SetSourceMaps({ searchDirs: [maps] });
  assert.deepEqual(pick((await leafOf(c.run)).leaf), [path.join(maps, 'thing.ts'), 9]);
  assert.deepEqual(sigprof.SourceMapStats().searchDirs, [maps]);
  sigprof.SetSourceMaps({ searchDirs: [] });
});

test('source maps: sources resolve against the map file and its sourceRoot (tsc --sourceRoot)', async () => {
  const base = path.join(tmp, 'sourceroot');
  fs.cpSync(path.join(FIXTURE, 'src'), path.join(base, 'orig'), { recursive: true });
  tsc(path.join(base, 'out'), '--sourceRoot', '../orig/');
  assert.equal(JSON.parse(fs.readFileSync(path.join(base, 'out', 'hot.js.map'), 'utf8')).sourceRoot, '../orig/');
  sigprof.SetSourceMaps(true);
  const { recordResource } = require(path.join(base, 'out', 'hot.js'));
  const { leaf } = await leafOf((p, v) => recordResource(p, v));
  assert.deepEqual([leaf.name, leaf.file, leaf.line], ['recordResource', path.join(base, 'orig', 'hot.ts'), RECORD_ADD_LINE]);
});

test('source maps: the map cache stays within cacheBytes; evicted maps are read again', async () => {
  const dir = path.join(tmp, 'lru');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'thing.ts'), THING_TS);
  const scripts = [];
  for (let i = 0; i < 3; i++) {
    fs.writeFileSync(path.join(dir, `s${i}.js.map`), JSON.stringify(lineMap(2, 4 + i)));
    scripts.push(script(dir, `s${i}`, `//# sourceMappingURL=s${i}.js.map`));
  }
  const one = JSON.stringify(lineMap(2, 4)).length + 3 * 100;
  // Room for two maps, not three.
  sigprof.SetSourceMaps({ enabled: true, cacheBytes: 2 * one + 10 });
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(pick((await leafOf(scripts[i].run)).leaf), [path.join(dir, 'thing.ts'), 4 + i]);
      assert.ok(sigprof.SourceMapStats().cachedBytes <= 2 * one + 10, JSON.stringify(sigprof.SourceMapStats()));
    }
  }
  // Cycling three scripts through room for two evicts every time.
  assert.equal(sigprof.SourceMapStats().loadedMaps, 6);
  sigprof.SetSourceMaps({ cacheBytes: 64 * 1024 * 1024 });
});

test('source maps: a captured call site far along a long line keeps its column (minified code)', async () => {
  // Columns past 1023 take the addon's second (line < 128, column < 2^22) packing.
  const dir = path.join(tmp, 'longline');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'thing.ts'), THING_TS);
  const pad = ' '.repeat(3000);
  const file = path.join(dir, 'long.js');
  const body = `exports.run = function longLine(p, v) {${pad}p.Add(v, 1); };`;
  const addAt = body.indexOf('p.Add');
  // Line 2: column 0 → thing.ts:3, column addAt → thing.ts:9.
  const map = { version: 3, sources: ['thing.ts'], names: [], mappings: ';AAEA,' + vlq(addAt) + 'AMA' };
  fs.writeFileSync(path.join(dir, 'long.js.map'), JSON.stringify(map));
  fs.writeFileSync(file, `'use strict';\n${body}\n//# sourceMappingURL=long.js.map\n`);
  sigprof.SetSourceMaps(true);
  const { leaf } = await leafOf(require(file).run);
  assert.ok(addAt > 1024);
  assert.deepEqual(pick(leaf), [path.join(dir, 'thing.ts'), 9], `call site at column ${addAt + 1}`);
});

test('source maps: a frame with no line (Sparkplug, Maglev) stays at line 0, with its function start mapped', () => {
  const { mapFrame } = require('../dist/symbolize.js');
  const { pathToFileURL } = require('node:url');
  const dir = path.join(tmp, 'noline');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'thing.ts'), THING_TS);
  fs.writeFileSync(path.join(dir, 'noline.js.map'), JSON.stringify(lineMap(2, 7)));
  const file = path.join(dir, 'noline.js');
  fs.writeFileSync(file, `'use strict';\nexports.f = function f() {};\n//# sourceMappingURL=noline.js.map\n`);
  sigprof.SetSourceMaps(true);
  const url = pathToFileURL(file).href;
  // The function starts at generated 2:1 (thing.ts:7); the executing line is unknown.
  const out = mapFrame(url, { name: 'f', file, line: 0, startLine: 2 }, 0, 1);
  assert.deepEqual([out.file, out.line, out.startLine], [path.join(dir, 'thing.ts'), 0, 7]);
  // A known line still maps.
  const known = mapFrame(url, { name: 'f', file, line: 2, startLine: 2 }, 1, 1);
  assert.deepEqual([known.file, known.line, known.startLine], [path.join(dir, 'thing.ts'), 7, 7]);
});
