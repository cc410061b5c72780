'use strict';
// Tests of the `sigprof` command line (bin/sigprof.js → dist/cli). Profiles are built at
// test time with PprofBuilder; when `go` is installed, `go tool pprof -top` is the
// reference for the `top` numbers and a real Go program provides Go-written profiles.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const zlib = require('node:zlib');
const { spawn, spawnSync, execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'sigprof.js');
const FAKE_API = path.join(__dirname, 'fixtures', 'fake-api');
const { PprofBuilder } = require(path.join(ROOT, 'dist', 'pprof-builder.js'));
const units = require(path.join(ROOT, 'dist', 'cli', 'units.js'));
const { profileToTree } = require(path.join(ROOT, 'dist', 'cli', 'flame.js'));
const { decodeProfile } = require(path.join(ROOT, 'dist', 'cli', 'profile.js'));

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-cli-test-'));
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** Runs the CLI to completion. TZ is pinned so "Time:" headers compare with Go's. */
function cli(args, opts = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? TMP,
    env: { ...process.env, TZ: 'UTC', ...opts.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the CLI and collects its output; `waitFor` resolves when stdout/stderr match. */
function cliAsync(args, opts = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? TMP,
    env: { ...process.env, TZ: 'UTC', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  const waiters = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = w.re.exec(out[w.stream]);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout.setEncoding('utf8').on('data', (d) => { out.stdout += d; check(); });
  child.stderr.setEncoding('utf8').on('data', (d) => { out.stderr += d; check(); });
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, ...out })));
  return {
    child,
    exited,
    waitFor(stream, re) {
      return new Promise((resolve, reject) => {
        waiters.push({ stream, re, resolve });
        check();
        exited.then(() => reject(new Error(`process ended before ${stream} matched ${re}:\n${out.stdout}\n${out.stderr}`)));
      });
    },
  };
}

const hasGo = spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
const GO_ENV = { ...process.env, TZ: 'UTC', GOFLAGS: '-mod=mod', GOPROXY: 'off', GOTOOLCHAIN: 'local', GO111MODULE: 'auto' };
// go refuses to build without a cache directory, which CI environments may not define.
if (!GO_ENV.GOCACHE && !GO_ENV.HOME && !GO_ENV.XDG_CACHE_HOME) GO_ENV.GOCACHE = path.join(os.tmpdir(), 'sigprof-test-gocache');

function goTop(file, args) {
  return execFileSync('go', ['tool', 'pprof', '-top', ...args, file], { env: GO_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const MS = 1e6;

/**
 * A CPU-like profile with the cases that make `top` tricky: shared callers, recursion
 * (cum counted once per sample), two functions named "(anonymous)" in different files,
 * and a node below pprof's 0.5% cutoff.
 */
function cpuFixture() {
  const b = new PprofBuilder({
    sampleTypes: [{ type: 'samples', unit: 'count' }, { type: 'cpu', unit: 'nanoseconds' }],
    periodType: { type: 'cpu', unit: 'nanoseconds' },
    period: 10 * MS,
    timeNanos: 1_700_000_000_000_000_000n,
    durationNanos: 2_000_000_000,
  });
  const main = (line) => ({ name: 'main', file: '/src/main.js', line });
  b.addSample([{ name: 'leafA', file: '/src/a.js', line: 5 }, { name: 'mid', file: '/src/a.js', line: 20 }, main(3)], [50, 500 * MS]);
  b.addSample([{ name: 'leafB', file: '/src/b.js', line: 7 }, { name: 'mid', file: '/src/a.js', line: 21 }, main(3)], [30, 300 * MS]);
  b.addSample([{ name: 'rec', file: '/src/r.js', line: 2 }, { name: 'rec', file: '/src/r.js', line: 3 }, { name: 'rec', file: '/src/r.js', line: 3 }, main(4)], [10, 100 * MS]);
  b.addSample([{ name: '(anonymous)', file: '/src/x.js', line: 1 }, main(5)], [5, 50 * MS]);
  b.addSample([{ name: '(anonymous)', file: '/src/y.js', line: 9 }, main(6)], [4, 40 * MS]);
  b.addSample([{ name: 'tiny', file: '/src/t.js', line: 1 }, main(7)], [1, 2 * MS]);
  return b;
}

/** Heap-like, four sample types, default_sample_type not the last one, kB ties (1152 B). */
function heapFixture() {
  const b = new PprofBuilder({
    sampleTypes: [
      { type: 'alloc_objects', unit: 'count' }, { type: 'alloc_space', unit: 'bytes' },
      { type: 'inuse_objects', unit: 'count' }, { type: 'inuse_space', unit: 'bytes' },
    ],
    defaultSampleType: 'alloc_space',
    periodType: { type: 'space', unit: 'bytes' },
    period: 524288,
  });
  const root = { name: 'main', file: '/src/heap.js', line: 1 };
  b.addSample([{ name: 'makeBuffers', file: '/src/heap.js', line: 10 }, root], [30, 3 * 1024 * 1024, 10, 4096]);
  b.addSample([{ name: 'makeSmall', file: '/src/heap.js', line: 20 }, root], [9, 1152, 9, 1152]);
  b.addSample([{ name: 'makeStrings', file: '/src/strings.js', line: 3 }, root], [100, 700 * 1024, 0, 0]);
  return b;
}

async function writeFixture(name, builder, gzip = true) {
  const file = path.join(TMP, name);
  fs.writeFileSync(file, gzip ? await builder.encodeGzip() : Buffer.from(await builder.build().encodeAsync()));
  return file;
}

let CPU, HEAP, CPU_RAW;
test.before(async () => {
  CPU = await writeFixture('cpu.pb.gz', cpuFixture());
  CPU_RAW = await writeFixture('cpu.pb', cpuFixture(), false);
  HEAP = await writeFixture('heap.pb.gz', heapFixture());
});

/** Parses table rows into {flat, flatPct, sumPct, cum, cumPct, name}. */
function rows(out) {
  const lines = out.split('\n');
  const h = lines.findIndex((l) => /^\s+flat\s+flat%\s+sum%\s+cum\s+cum%$/.test(l));
  assert.ok(h >= 0, `no table header in:\n${out}`);
  return lines.slice(h + 1).filter(Boolean).map((l) => {
    const m = /^\s*(\S+)\s+(\S+%)\s+(\S+%)\s+(\S+)\s+(\S+%)\s\s(.*)$/.exec(l);
    assert.ok(m, `unparsable row: ${JSON.stringify(l)}`);
    return { flat: m[1], flatPct: m[2], sumPct: m[3], cum: m[4], cumPct: m[5], name: m[6] };
  });
}

// ---------------------------------------------------------------- units

test('units: values and percentages are formatted like pprof', () => {
  assert.equal(units.scaledLabel(280 * MS, 'nanoseconds', 'ms'), '280ms');
  assert.equal(units.scaledLabel(1152, 'bytes', 'kB'), '1.12kB', 'Go rounds the exact tie 1.125 to even');
  assert.equal(units.scaledLabel(1176, 'bytes', 'kB'), '1.15kB');
  assert.equal(units.scaledLabel(3 * 1024 * 1024, 'bytes', 'minimum'), '3MB');
  assert.equal(units.scaledLabel(0, 'bytes', 'kB'), '0');
  assert.equal(units.scaledLabel(42, 'count', 'count'), '42');
  assert.equal(units.scaledLabel(1.5e9, 'nanoseconds', 'auto'), '1.50s');
  assert.equal(units.percentage(1, 3), '33.33%');
  assert.equal(units.percentage(3, 3), '  100%');
  assert.equal(units.percentage(0, 3), '    0%');
  assert.equal(units.percentage(4.05, 127504.27), '0.0032%');
  assert.equal(units.percentage(1, 1e7), '1e-05%');
  // Smallest value 2ms, total 992ms: same unit → ms.
  assert.equal(units.reportUnit(2 * MS, 992 * MS, 'nanoseconds'), 'ms');
  // 4 B next to 4 MB: the small one is shown as 0.00MB rather than all rows in bytes.
  assert.equal(units.reportUnit(50 * 1024, 400 * 1024 * 1024, 'bytes'), 'MB');
});

// ---------------------------------------------------------------- top

test('top: flat/cum table with hand-computed numbers', () => {
  const r = cli(['top', CPU]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Type: cpu$/m);
  assert.match(r.stdout, /^Duration: 2s, Total samples = 992ms \(49\.60%\)$/m);
  assert.match(r.stdout, /^Showing nodes accounting for 990ms, 99\.80% of 992ms total$/m);
  assert.match(r.stdout, /^Dropped 1 node \(cum <= 4\.96ms\)$/m);
  const t = rows(r.stdout);
  assert.deepEqual(t.map((x) => x.name), [
    'leafA /src/a.js', 'leafB /src/b.js', 'rec /src/r.js',
    '(anonymous) /src/x.js', '(anonymous) /src/y.js', 'main /src/main.js', 'mid /src/a.js',
  ]);
  const by = Object.fromEntries(t.map((x) => [x.name, x]));
  assert.deepEqual([by['leafA /src/a.js'].flat, by['leafA /src/a.js'].flatPct, by['leafA /src/a.js'].cum], ['500ms', '50.40%', '500ms']);
  // Recursion: three frames of rec in one sample still count its cum once.
  assert.deepEqual([by['rec /src/r.js'].flat, by['rec /src/r.js'].cum], ['100ms', '100ms']);
  assert.deepEqual([by['mid /src/a.js'].flat, by['mid /src/a.js'].cum], ['0', '800ms']);
  assert.deepEqual([by['main /src/main.js'].cum, by['main /src/main.js'].cumPct], ['992ms', '  100%'.trim()]);
  assert.equal(t[t.length - 1].sumPct, '99.80%');
});

test('top: -n, --cum, --lines, --sample-index and raw (not gzipped) files', () => {
  let r = cli(['top', CPU, '-n', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Showing top 2 nodes out of 7$/m);
  assert.equal(rows(r.stdout).length, 2);

  r = cli(['top', CPU, '--cum', '-n', '3']);
  assert.deepEqual(rows(r.stdout).map((x) => [x.name, x.cum]), [['main /src/main.js', '992ms'], ['mid /src/a.js', '800ms'], ['leafA /src/a.js', '500ms']]);

  r = cli(['top', CPU, '--lines', '-n', '0']);
  const names = rows(r.stdout).map((x) => x.name);
  assert.ok(names.includes('mid /src/a.js:20') && names.includes('mid /src/a.js:21'), names.join('\n'));

  r = cli(['top', CPU, '--sample-index', 'samples']);
  assert.match(r.stdout, /^Type: samples$/m);
  assert.equal(rows(r.stdout)[0].flat, '50');
  assert.equal(cli(['top', CPU, '--sample-index=0']).stdout, r.stdout);

  assert.equal(cli(['top', CPU_RAW]).stdout, cli(['top', CPU]).stdout);
});

test('top: default sample index is default_sample_type, then the last type; byte units', () => {
  let r = cli(['top', HEAP]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Type: alloc_space$/m);
  // makeSmall (1152 B) is under 0.5% of the alloc_space total, so pprof drops it.
  assert.match(r.stdout, /^Dropped 1 node \(cum <= 18\.87kB\)$/m);
  assert.deepEqual(rows(r.stdout).map((x) => [x.name, x.flat]), [
    ['makeBuffers /src/heap.js', '3072kB'], ['makeStrings /src/strings.js', '700kB'], ['main /src/heap.js', '0'],
  ]);
  r = cli(['top', HEAP, '--sample-index', 'inuse_space']);
  assert.match(r.stdout, /^Type: inuse_space$/m);
  assert.deepEqual(rows(r.stdout).map((x) => [x.name, x.flat, x.cum]), [
    ['makeBuffers /src/heap.js', '4kB', '4kB'], ['makeSmall /src/heap.js', '1.12kB', '1.12kB'], ['main /src/heap.js', '0', '5.12kB'],
  ]);
  const nodefault = new PprofBuilder({ sampleTypes: [{ type: 'a', unit: 'count' }, { type: 'b', unit: 'count' }] });
  nodefault.addSample([{ name: 'f', file: '/f.js', line: 1 }], [1, 7]);
  return writeFixture('nodefault.pb.gz', nodefault).then((f) => {
    const out = cli(['top', f]).stdout;
    assert.match(out, /^Type: b$/m);
    assert.equal(rows(out)[0].flat, '7');
  });
});

test('top: functions are told apart by first line, so anonymous functions do not merge', async () => {
  const b = new PprofBuilder({ sampleTypes: [{ type: 'cpu', unit: 'nanoseconds' }] });
  b.addSample([{ name: '(anonymous)', file: '/src/z.js', line: 12, startLine: 10 }], [30 * MS]);
  b.addSample([{ name: '(anonymous)', file: '/src/z.js', line: 44, startLine: 40 }], [20 * MS]);
  b.addSample([{ name: '(anonymous)', file: '/src/z.js', line: 13, startLine: 10 }], [5 * MS]);
  const f = await writeFixture('anon.pb.gz', b);
  const t = rows(cli(['top', f]).stdout);
  assert.deepEqual(t.map((x) => [x.name, x.flat]), [['(anonymous) /src/z.js:10', '35ms'], ['(anonymous) /src/z.js:40', '20ms']]);
});

test('top: same output as go tool pprof -top on sigprof-built profiles', { skip: !hasGo && 'go is not installed' }, () => {
  const cases = [
    [[], ['-filefunctions']],
    [['--lines'], ['-lines']],
    [['--cum'], ['-filefunctions', '-cum']],
    [['-n', '3'], ['-filefunctions', '-nodecount=3']],
    [['--sample-index', 'samples'], ['-filefunctions', '-sample_index=samples']],
    [['--lines', '--sample-index', '0', '-n', '4'], ['-lines', '-sample_index=0', '-nodecount=4']],
  ];
  for (const file of [CPU, HEAP]) {
    for (const [ours, theirs] of cases) {
      if (file === HEAP && ours.includes('samples')) continue;
      const mine = cli(['top', file, ...(ours.includes('-n') ? [] : ['-n', '0']), ...ours]);
      assert.equal(mine.code, 0, mine.stderr);
      assert.equal(mine.stdout, goTop(file, theirs), `sigprof top ${ours.join(' ')} vs go tool pprof -top ${theirs.join(' ')} on ${path.basename(file)}`);
    }
  }
  for (const idx of ['alloc_objects', 'inuse_objects', '3']) {
    assert.equal(cli(['top', HEAP, '-n', '0', '--sample-index', idx]).stdout, goTop(HEAP, ['-filefunctions', `-sample_index=${idx}`]), idx);
  }
});

test('top: negative values (diff profiles) and empty profiles read like go tool pprof', { skip: !hasGo && 'go is not installed' }, async () => {
  const diff = new PprofBuilder({ sampleTypes: [{ type: 'alloc_space', unit: 'bytes' }] });
  diff.addSample([{ name: 'shrank', file: '/src/d.js', line: 1 }, { name: 'root', file: '/src/d.js', line: 9 }], [-5000]);
  diff.addSample([{ name: 'grew', file: '/src/d.js', line: 2 }, { name: 'root', file: '/src/d.js', line: 9 }], [9000]);
  const diffFile = await writeFixture('diff.pb.gz', diff);
  const mine = cli(['top', diffFile]).stdout;
  assert.match(mine, /-4\.88kB .*shrank/);
  assert.equal(mine, goTop(diffFile, ['-filefunctions']));
  const empty = await writeFixture('empty-samples.pb.gz', new PprofBuilder({ sampleTypes: [{ type: 'cpu', unit: 'nanoseconds' }] }));
  assert.equal(cli(['top', empty]).stdout, goTop(empty, ['-filefunctions']));
});

/** Strips the first line that sigprof adds per function (Go's -filefunctions shows only the file). */
const withoutStartLine = (out) => out.replace(/(\S):\d+(?=( \((?:partial-)?inline\))?$)/gm, '$1');

test('top: same numbers as go tool pprof on real Go CPU and heap profiles', { skip: !hasGo && 'go is not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(TMP, 'goprog-'));
  fs.writeFileSync(path.join(dir, 'main.go'), `package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

var sink [][]byte

//go:noinline
func spin(n int) int { s := 0; for i := 0; i < n; i++ { s += i * i % 7 }; return s }

//go:noinline
func work(n int) int { return spin(n) + spin(n/2) }

//go:noinline
func alloc() { for i := 0; i < 500; i++ { sink = append(sink, make([]byte, 4096)) } }

func main() {
	f, _ := os.Create(os.Args[1])
	pprof.StartCPUProfile(f)
	t := 0
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); { t += work(200000) }
	pprof.StopCPUProfile()
	f.Close()
	runtime.MemProfileRate = 1
	alloc()
	runtime.GC()
	h, _ := os.Create(os.Args[2])
	pprof.WriteHeapProfile(h)
	h.Close()
	if t == 42 { println() }
}
`);
  const cpu = path.join(dir, 'cpu.pb.gz');
  const heap = path.join(dir, 'heap.pb.gz');
  const r = spawnSync('go', ['run', 'main.go', cpu, heap], { cwd: dir, env: GO_ENV, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `go run failed: ${r.stderr}`);
  const cases = [
    [cpu, [], ['-filefunctions']],
    [cpu, ['--lines'], ['-lines']],
    [heap, [], ['-filefunctions']],
    [heap, ['--sample-index', 'alloc_space'], ['-filefunctions', '-sample_index=alloc_space']],
    [heap, ['--sample-index', '0', '--lines'], ['-lines', '-sample_index=0']],
    [heap, ['--cum', '-n', '5'], ['-filefunctions', '-cum', '-nodecount=5']],
  ];
  for (const [file, ours, theirs] of cases) {
    const mine = cli(['top', file, ...(ours.includes('-n') ? [] : ['-n', '0']), ...ours]);
    assert.equal(mine.code, 0, mine.stderr);
    assert.match(mine.stdout, file === cpu ? /main\.spin/ : /main\.alloc/);
    const normalized = ours.includes('--lines') ? mine.stdout : withoutStartLine(mine.stdout);
    assert.equal(normalized, goTop(file, theirs), `${path.basename(file)} ${ours.join(' ')}`);
  }
});

test('top: bad input fails with one line and a non-zero status', () => {
  const notPprof = path.join(TMP, 'notes.txt');
  fs.writeFileSync(notPprof, 'hello, this is not a profile\n');
  const badGzip = path.join(TMP, 'bad.gz');
  fs.writeFileSync(badGzip, Buffer.from([0x1f, 0x8b, 1, 2, 3, 4]));
  const textGz = path.join(TMP, 'text.gz');
  fs.writeFileSync(textGz, zlib.gzipSync('plain text'));
  const empty = path.join(TMP, 'empty.pb.gz');
  fs.writeFileSync(empty, '');
  const cases = [
    [['top'], 2, /^sigprof top: missing profile FILE/],
    [['top', path.join(TMP, 'missing.pb.gz')], 1, /^sigprof top: .*missing\.pb\.gz: no such file$/],
    [['top', notPprof], 1, /^sigprof top: .*notes\.txt is not a pprof profile/],
    [['top', badGzip], 1, /not a pprof profile: gzip data is corrupt/],
    [['top', textGz], 1, /not a pprof profile/],
    [['top', empty], 1, /is empty, not a pprof profile/],
    [['top', TMP], 1, /is a directory/],
    [['top', CPU, '--bogus'], 2, /^sigprof top: unknown flag --bogus/],
    [['top', CPU, '-n'], 2, /flag -n needs a value/],
    [['top', CPU, '-n', 'x'], 2, /--nodecount must be an integer/],
    [['top', CPU, '--sample-index', 'alloc_space'], 1, /sample index "alloc_space" not found; this profile has: samples, cpu/],
    [['top', CPU, '--sample-index', '9'], 1, /outside the range \[0\.\.1\]/],
    [['top', CPU, CPU], 2, /expected one FILE, got 2/],
    [['nope'], 2, /^sigprof: unknown command "nope"/],
    [[], 2, /^usage: sigprof/],
  ];
  for (const [args, code, re] of cases) {
    const r = cli(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trim(), re, args.join(' '));
    if (args.length) assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
});

test('--help for every command', () => {
  for (const cmd of ['top', 'flame', 'run', 'fetch']) {
    for (const args of [[cmd, '--help'], [cmd, '-h'], ['help', cmd]]) {
      const r = cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: sigprof ${cmd} `), args.join(' '));
      assert.match(r.stdout, /Example:/);
    }
  }
  const r = cli(['--help']);
  assert.equal(r.code, 0);
  for (const cmd of ['top', 'flame', 'run', 'fetch']) assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'));
});

// ---------------------------------------------------------------- flame

test('flame: tree merges frames by function name and file, keeping every sample type', async () => {
  const prof = decodeProfile(await cpuFixture().encodeGzip(), 'fixture');
  const tree = profileToTree(prof);
  assert.deepEqual(tree.v, [100, 992 * MS]);
  const main = tree.c.find((c) => c.n === 'main');
  assert.equal(main.c.filter((c) => c.n === 'mid').length, 1, 'lines 20 and 21 of mid are one frame');
  const mid = main.c.find((c) => c.n === 'mid');
  assert.deepEqual(mid.v, [80, 800 * MS]);
  assert.deepEqual(mid.c.map((c) => c.n).sort(), ['leafA', 'leafB']);
  const anon = main.c.filter((c) => c.n === '(anonymous)').map((c) => c.f).sort();
  assert.deepEqual(anon, ['/src/x.js', '/src/y.js'], 'same name in different files stays apart');
  const rec = main.c.find((c) => c.n === 'rec');
  assert.equal(rec.c[0].n, 'rec', 'recursion is a deeper frame, not merged into its caller');
});

test('flame: writes one self-contained html file', () => {
  const out = path.join(TMP, 'flame.html');
  const r = cli(['flame', CPU, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const html = fs.readFileSync(out, 'utf8');
  assert.doesNotMatch(html, /<script[^>]+src=/i, 'no external scripts');
  assert.doesNotMatch(html, /<link[^>]+href=/i, 'no external stylesheets');
  assert.match(html, /"n":"leafA"/);
  assert.match(html, /d3-flame-graph/);
  assert.ok(html.length > 200_000, 'd3 is inlined');

  const bad = cli(['flame', CPU]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /missing -o OUT\.html/);
  const missing = cli(['flame', path.join(TMP, 'nope.pb.gz'), '-o', out]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no such file/);
});

const CHROMIUM = '/usr/bin/chromium';
test('flame: renders, searches, zooms and shows tooltips in headless Chromium', {
  skip: !fs.existsSync(CHROMIUM) && `${CHROMIUM} is not installed (apt-get install -y chromium)`,
  timeout: 120_000,
}, async () => {
  const out = path.join(TMP, 'flame-browser.html');
  const r = cli(['flame', CPU, '-o', out, '--title', 'fixture <cpu>']);
  assert.equal(r.code, 0, r.stderr);
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const requests = [];
    // Everything must come from the file itself: any other request fails the test.
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (!u.startsWith('file://')) {
        requests.push(u);
        return route.abort();
      }
      return route.continue();
    });
    await page.goto(`file://${out}`);
    await page.waitForFunction(() => [...document.querySelectorAll('.d3-flame-graph-label')].some((d) => d.textContent === 'leafA'));
    assert.equal(await page.title(), 'fixture <cpu>');
    const frames = await page.$$eval('#chart svg g.frame', (gs) => gs.length);
    assert.ok(frames >= 8, `frames rendered: ${frames}`);
    assert.ok(await page.$$eval('#chart svg rect', (rs) => rs.filter((x) => Number(x.getAttribute('width')) > 0).length) > 0);
    assert.ok(await page.$('g.frame[name="leafB"]'), 'a known function is in the DOM');

    // Search highlights the matching frames and sums their value.
    await page.fill('#search', 'leaf');
    await page.waitForFunction(() => document.getElementById('details').textContent.includes('matching'));
    assert.equal(await page.textContent('#details'), '2 matching frames: 800ms of 992ms (80.65%)');
    const highlighted = await page.$$eval('#chart svg g.frame', (gs) => gs.filter((g) => g.querySelector('rect').getAttribute('fill') === '#E600E6').map((g) => g.getAttribute('name')).sort());
    assert.deepEqual(highlighted, ['leafA', 'leafB']);
    // Characters that are special in a RegExp are matched literally.
    await page.fill('#search', '(anonymous');
    await page.waitForFunction(() => document.getElementById('details').textContent.startsWith('2 matching'));
    await page.click('#clear');
    await page.waitForFunction(() => document.getElementById('details').textContent === '');

    // Tooltip: name, file:line and the value with its unit.
    await page.hover('g.frame[name="mid"] rect');
    await page.waitForFunction(() => {
      const t = document.querySelector('.d3-flame-graph-tip');
      return t && t.style.display === 'block' && t.textContent.includes('/src/a.js:20');
    });
    const tip = await page.textContent('.d3-flame-graph-tip');
    assert.match(tip, /^mid\n\/src\/a\.js:20\ncpu: 800ms \(80\.65%\)\nself: 0 \(0\.00%\)$/);

    // Click zooms: the clicked frame then spans the whole chart.
    const fullWidth = Number(await page.$eval('#chart svg', (s) => s.getAttribute('width')));
    await page.click('g.frame[name="mid"] rect');
    await page.waitForFunction((w) => Math.abs(Number(document.querySelector('g.frame[name="mid"] rect').getAttribute('width')) - w) < 1, fullWidth);
    await page.click('#reset');
    await page.waitForFunction((w) => Number(document.querySelector('g.frame[name="mid"] rect').getAttribute('width')) < w * 0.9, fullWidth);

    // Another sample type re-renders the chart with its values.
    await page.selectOption('#sample-type', '0');
    await page.waitForFunction(() => document.body.getAttribute('data-rendered') === '0');
    await page.hover('g.frame[name="mid"] rect');
    await page.waitForFunction(() => document.querySelector('.d3-flame-graph-tip').textContent.includes('samples: 80 '));

    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
  } finally {
    await browser.close();
  }
});

// ---------------------------------------------------------------- run (with a stand-in API)

function writeApp(name, src) {
  const f = path.join(TMP, name);
  fs.writeFileSync(f, src);
  return f;
}

/** Reads back a profile written by the stand-in API: its comment records process.exitCode. */
function fakeProfileComment(file) {
  const out = cli(['top', file]).stdout;
  return /^exitCode=(.*)$/m.exec(out)?.[1];
}

test('run: writes CPU and heap profiles when the event loop drains, and passes the rate', () => {
  const app = writeApp('drain.js', 'setTimeout(() => console.log("app ran", process.argv.slice(2).join(",")), 5);\n');
  const cpu = path.join(TMP, 'run-cpu.pb.gz');
  const heap = path.join(TMP, 'run-heap.pb.gz');
  const r = cli(['run', '--cpu', cpu, '--heap', heap, '--rate', '250', '--', 'node', app, 'a', 'b'], { env: { SIGPROF_API: FAKE_API } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'app ran a,b\n');
  assert.match(r.stderr, /^sigprof: CPU profile written to run-cpu\.pb\.gz \(\d+ B\); view it with: sigprof top run-cpu\.pb\.gz$/m);
  assert.match(r.stderr, /^sigprof: heap profile written to run-heap\.pb\.gz/m);
  const top = cli(['top', cpu, '--sample-index', 'cpu']);
  assert.match(top.stdout, /4ms.*fakeLeaf \/fake\/app\.js/, 'period 1e9/250 ns = 4ms: the rate reached SetCPUProfileRate');
  assert.match(cli(['top', heap]).stdout, /fakeAlloc/);
});

test('run: process.exit(code) writes the profile first and keeps the exit code', () => {
  const app = writeApp('exit.js', [
    'setTimeout(() => {',
    '  process.exit(3);',
    '  console.log("must not run: code after process.exit");',
    '}, 5);',
  ].join('\n'));
  const cpu = path.join(TMP, 'exit.pb.gz');
  const r = cli(['run', '--cpu', cpu, '--', 'node', app], { env: { SIGPROF_API: FAKE_API } });
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(fakeProfileComment(cpu), '3');
});

test('run: an uncaught exception still writes the profile and exits 1', () => {
  const app = writeApp('throw.js', 'setTimeout(() => { throw new Error("boom from app"); }, 5);\n');
  const cpu = path.join(TMP, 'throw.pb.gz');
  const r = cli(['run', '--cpu', cpu, '--', 'node', app], { env: { SIGPROF_API: FAKE_API } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error: boom from app/);
  assert.match(r.stderr, /CPU profile written to/);
  assert.equal(fakeProfileComment(cpu), '1');
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  test(`run: ${sig} writes the profile and re-raises the signal`, async () => {
    const app = writeApp(`wait-${sig}.js`, 'console.log("ready"); setInterval(() => {}, 1000);\n');
    const cpu = path.join(TMP, `${sig}.pb.gz`);
    const p = cliAsync(['run', '--cpu', cpu, '--', 'node', app], { env: { SIGPROF_API: FAKE_API } });
    await p.waitFor('stdout', /ready/);
    p.child.kill(sig);
    const r = await p.exited;
    assert.equal(r.signal, sig, r.stderr);
    assert.match(r.stderr, /CPU profile written to/);
    assert.ok(fs.statSync(cpu).size > 0);
  });
}

test('run: a program that handles SIGTERM itself decides how it exits', async () => {
  const app = writeApp('graceful.js', [
    'process.on("SIGTERM", () => { console.log("cleaning up"); setTimeout(() => process.exit(0), 5); });',
    'console.log("ready"); setInterval(() => {}, 1000);',
  ].join('\n'));
  const cpu = path.join(TMP, 'graceful.pb.gz');
  const p = cliAsync(['run', '--cpu', cpu, '--', 'node', app], { env: { SIGPROF_API: FAKE_API } });
  await p.waitFor('stdout', /ready/);
  p.child.kill('SIGTERM');
  const r = await p.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /cleaning up/);
  assert.equal(fakeProfileComment(cpu), '0');
});

test('run: processes started by the program are not profiled; other preloads stay', () => {
  // Named like ours on purpose: only sigprof's own --require may be taken out.
  const userPreload = path.join(TMP, 'user dir', 'preload.js');
  fs.mkdirSync(path.dirname(userPreload), { recursive: true });
  fs.writeFileSync(userPreload, 'globalThis.userPreloadRan = (globalThis.userPreloadRan || 0) + 1;\n');
  const app = writeApp('parent.js', [
    'const { execFileSync } = require("node:child_process");',
    'const out = execFileSync(process.execPath, ["-e", "console.log(JSON.stringify({cpu: process.env.SIGPROF_CPU || null, opts: process.env.NODE_OPTIONS || null, user: globalThis.userPreloadRan}))"]);',
    'process.stdout.write(out);',
    'console.log(globalThis.userPreloadRan);',
  ].join('\n'));
  const userOpts = `--no-warnings --require "${userPreload}"`;
  const r = cli(['run', '--cpu', path.join(TMP, 'parent.pb.gz'), '--', 'node', app], { env: { SIGPROF_API: FAKE_API, NODE_OPTIONS: userOpts } });
  assert.equal(r.code, 0, r.stderr);
  const [child, parentCount] = r.stdout.trim().split('\n');
  assert.deepEqual(JSON.parse(child), { cpu: null, opts: userOpts, user: 1 });
  assert.equal(parentCount, '1');
});

test('run: works when sigprof is installed under a path with spaces', () => {
  const copy = path.join(TMP, 'node modules with "quotes" and spaces', 'cli');
  fs.mkdirSync(copy, { recursive: true });
  for (const f of ['main.js', 'run.js', 'preload.js', 'args.js']) fs.copyFileSync(path.join(ROOT, 'dist', 'cli', f), path.join(copy, f));
  const app = writeApp('spaces.js', 'console.log("ran");\n');
  const cpu = path.join(TMP, 'spaces.pb.gz');
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(copy, 'main.js'))}).main(process.argv.slice(1))`, 'run', '--cpu', cpu, '--', 'node', app], {
    cwd: TMP, env: { ...process.env, SIGPROF_API: FAKE_API }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'ran\n');
  assert.match(r.stderr, /CPU profile written to spaces\.pb\.gz/);
});

test('run: bad input and programs that cannot be profiled', () => {
  const app = writeApp('ok.js', '');
  const env = { SIGPROF_API: FAKE_API };
  const cases = [
    [['run', '--cpu', 'x.pb.gz', 'node', app], 2, /missing "--" before the command/],
    [['run', '--cpu', 'x.pb.gz'], 2, /missing "-- COMMAND"/],
    [['run', '--cpu', 'x.pb.gz', '--'], 2, /missing the command after "--"/],
    [['run', '--', 'node', app], 2, /nothing to do/],
    [['run', '--cpu', 'x.pb.gz', '--rate', '0', '--', 'node', app], 2, /--rate must be an integer >= 1/],
    [['run', '--heap', 'x.pb.gz', '--rate', '100', '--', 'node', app], 2, /--rate needs --cpu/],
    [['run', '--http', 'nonsense', '--', 'node', app], 2, /--http must be HOST:PORT/],
    [['run', '--cpu', path.join(TMP, 'no', 'such', 'dir', 'x.pb.gz'), '--', 'node', app], 2, /does not exist/],
    [['run', '--cpux', 'x', '--', 'node', app], 2, /unknown flag --cpux/],
    [['run', '--cpu', 'x.pb.gz', '--', 'no-such-command-sigprof'], 1, /cannot start no-such-command-sigprof: command not found/],
  ];
  for (const [args, code, re] of cases) {
    const r = cli(args, { env });
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
  // Not a Node.js program: nothing can be profiled, which is said, but the exit status
  // stays the program's (issue 9 item 10: sigprof run must not change it).
  for (const status of [0, 4]) {
    const r = cli(['run', '--cpu', 'x.pb.gz', '--', '/bin/sh', '-c', `exit ${status}`], { env });
    assert.equal(r.code, status);
    assert.match(r.stderr, /no CPU profile was written .*did not start a Node\.js process/);
  }
  // A sigprof build without the CPU profiler says so instead of running unprofiled.
  const inc = cli(['run', '--cpu', 'x.pb.gz', '--', 'node', app], { env: { SIGPROF_API: path.join(__dirname, 'fixtures', 'fake-api-incomplete') } });
  assert.equal(inc.code, 1);
  assert.match(inc.stderr, /StartCPUProfile is not exported by this build of sigprof/);
});

// ---------------------------------------------------------------- fetch

/** A local server standing in for /debug/pprof; `?seconds=N` answers after N seconds, as a capture does. */
async function withServer(fn) {
  const profile = await cpuFixture().encodeGzip();
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/debug/pprof/profile') {
      const secs = Number(u.searchParams.get('seconds') || 0);
      setTimeout(() => { res.writeHead(200, { 'content-type': 'application/octet-stream' }); res.end(profile); }, secs * 1000);
    } else if (u.pathname === '/debug/pprof/heap' && u.searchParams.get('debug') === '1') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('heap profile: 1: 2 [3: 4] @ heap/1048576\n');
    } else if (u.pathname === '/old') {
      res.writeHead(302, { location: '/debug/pprof/profile' });
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found\n');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`);
  } finally {
    server.close();
  }
}

test('fetch: downloads, validates and writes a profile, with progress for seconds= captures', async () => {
  await withServer(async (base) => {
    const out = path.join(TMP, 'fetched.pb.gz');
    const p = cliAsync(['fetch', `${base}/debug/pprof/profile?seconds=1`, '-o', out]);
    const r = await p.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^sigprof fetch: capturing profile: 0s\/1s$/m);
    assert.match(r.stderr, /^sigprof fetch: wrote .*fetched\.pb\.gz \(\d+ bytes; 6 samples of samples\/cpu\)$/m);
    assert.equal(cli(['top', out]).stdout, cli(['top', CPU]).stdout);

    const viaRedirect = path.join(TMP, 'redirected.pb.gz');
    const rr = await cliAsync(['fetch', `${base}/old`, '-o', viaRedirect]).exited;
    assert.equal(rr.code, 0, rr.stderr);
    assert.doesNotMatch(rr.stderr, /capturing/);
    assert.ok(fs.existsSync(viaRedirect));
  });
});

test('fetch: HTTP errors and non-profiles fail without writing the file', async () => {
  await withServer(async (base) => {
    const out = path.join(TMP, 'never.pb.gz');
    let r = await cliAsync(['fetch', `${base}/debug/pprof/nothing`, '-o', out]).exited;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /HTTP 404 Not Found: 404 page not found/);
    r = await cliAsync(['fetch', `${base}/debug/pprof/heap?debug=1`, '-o', out]).exited;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not a pprof profile .*drop debug=1/);
    assert.equal(fs.existsSync(out), false);
  });
  const closed = await new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => { const port = s.address().port; s.close(() => resolve(port)); });
  });
  const r = cli(['fetch', `http://127.0.0.1:${closed}/debug/pprof/profile`, '-o', path.join(TMP, 'x.pb.gz')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /connection refused/);
  for (const [args, re] of [[['fetch'], /missing URL/], [['fetch', 'http://127.0.0.1:1/'], /missing -o FILE/], [['fetch', 'ftp://x/y', '-o', 'f'], /only http and https/], [['fetch', 'not a url', '-o', 'f'], /not a URL/]]) {
    const e = cli(args);
    assert.equal(e.code, 2, args.join(' '));
    assert.match(e.stderr, re);
  }
});

test('run --http serves /debug/pprof/ from the program, and fetch reads it', async () => {
  const app = writeApp('serve.js', 'console.log("ready"); setInterval(() => {}, 1000);\n');
  const p = cliAsync(['run', '--http', '127.0.0.1:0', '--', 'node', app], { env: { SIGPROF_API: FAKE_API } });
  const [, addr] = await p.waitFor('stderr', /sigprof: serving http:\/\/(\S+)\/debug\/pprof\//);
  const out = path.join(TMP, 'served.pb.gz');
  const f = await cliAsync(['fetch', `http://${addr}/debug/pprof/profile?seconds=1`, '-o', out]).exited;
  assert.equal(f.code, 0, f.stderr);
  assert.match(cli(['top', out]).stdout, /servedByFake/);
  p.child.kill('SIGTERM');
  const r = await p.exited;
  assert.equal(r.signal, 'SIGTERM');
});

// ---------------------------------------------------------------- run with the real profiler

function realApi() {
  try {
    return require(path.join(ROOT, 'dist', 'index.js'));
  } catch {
    return {};
  }
}
const api = realApi();
const hasRealCpu = typeof api.StartCPUProfile === 'function' && typeof api.StopCPUProfile === 'function';

test('run: profiles an unmodified program with the real CPU and heap profilers', {
  skip: !hasRealCpu && 'StartCPUProfile/StopCPUProfile are not exported by dist/index.js yet',
}, () => {
  const app = writeApp('burn.js', [
    'function burnHotLoop(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i) * Math.sin(i); return s; }',
    // Both held by the global object, so a GC after the module has run (before or at exit)
    // neither frees the arrays nor drops the script that names allocateLots (docs/heap.md).
    'const keep = globalThis.keep = [];',
    'function allocateLots() { for (let i = 0; i < 300; i++) keep.push(new Array(1000).fill(i)); }',
    'globalThis.allocateLots = allocateLots;',
    'allocateLots();',
    // Heap profiles are as of the last GC (docs/heap.md); a program this short may finish
    // without one after allocateLots, so it collects once.
    "require('node:v8').setFlagsFromString('--expose-gc'); require('node:vm').runInNewContext('gc')();",
    'let t = 0; const end = Date.now() + 300; while (Date.now() < end) t += burnHotLoop(1e5);',
    'console.log(t > 0 ? "done" : "?");',
  ].join('\n'));
  const cpu = path.join(TMP, 'real-cpu.pb.gz');
  const heap = path.join(TMP, 'real-heap.pb.gz');
  const args = ['run', '--cpu', cpu, '--rate', '250'];
  if (typeof api.WriteHeapProfile === 'function') args.push('--heap', heap);
  const r = cli([...args, '--', 'node', app]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'done\n');
  const top = cli(['top', cpu, '-n', '10', '--cum']);
  assert.equal(top.code, 0, top.stderr);
  // By cum: the leaf can be the C++ behind Math.sin, which sigprof names too.
  const hot = rows(top.stdout).find((row) => /^burnHotLoop .*burn\.js:1$/.test(row.name));
  assert.ok(hot && parseFloat(hot.cumPct) >= 50, top.stdout);
  if (typeof api.WriteHeapProfile === 'function') {
    const h = cli(['top', heap, '-n', '0']);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /allocateLots .*burn\.js:3/);
  }
});

test('run --http with the real /debug/pprof handlers', {
  skip: !fs.existsSync(path.join(ROOT, 'dist', 'http.js')) && 'dist/http.js does not exist yet',
}, async () => {
  const app = writeApp('serve-real.js', 'console.log("ready"); setInterval(() => { let s = 0; for (let i = 0; i < 1e5; i++) s += i; }, 1);\n');
  const p = cliAsync(['run', '--http', '127.0.0.1:0', '--', 'node', app]);
  try {
    const [, addr] = await p.waitFor('stderr', /sigprof: serving http:\/\/(\S+)\/debug\/pprof\//);
    const out = path.join(TMP, 'served-real.pb.gz');
    const f = await cliAsync(['fetch', `http://${addr}/debug/pprof/profile?seconds=1`, '-o', out]).exited;
    assert.equal(f.code, 0, f.stderr);
    assert.equal(cli(['top', out]).code, 0);
  } finally {
    p.child.kill('SIGTERM');
    await p.exited;
  }
});
