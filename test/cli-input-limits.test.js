'use strict';
// Issue 9 item 9: the CLI does not trust its input's size. Non-profiles fail at their
// first bytes, decompression stops at --max-size (default 256M), and endless input
// (/dev/zero, an answer that never ends) finishes. The time bounds below are generous
// hang-vs-finish checks: before the fix these inputs ran for minutes or never ended.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const zlib = require('node:zlib');
const { spawnSync, spawn } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'sigprof.js');
const { PprofBuilder } = require(path.join(ROOT, 'dist', 'pprof-builder.js'));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-limits-'));
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** A run that must end by itself: killed after `limitMs`, which the assertions then report. */
function cli(args, limitMs = 30_000) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: TMP, encoding: 'utf8', timeout: limitMs });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

function assertFinished(r, what) {
  assert.equal(r.signal, null, `${what} did not finish within the limit (killed after ${r.ms} ms)`);
}

/** `n` bytes of `48 00` pairs: each a valid Profile field (time_nanos = 0), so no early shape check can refuse it. */
function validFields(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 2) b[i] = 0x48;
  return b;
}

/** Gzips `total` bytes of `chunk` repeated, streaming, so the test never holds them. */
function gzipRepeated(file, chunk, total) {
  const gz = zlib.createGzip({ level: 9 });
  const out = fs.createWriteStream(file);
  gz.pipe(out);
  return new Promise((resolve, reject) => {
    let left = total;
    const more = () => {
      while (left > 0) {
        const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= c.length;
        if (!gz.write(c)) return gz.once('drain', more);
      }
      gz.end();
    };
    out.on('close', resolve);
    out.on('error', reject);
    more();
  });
}

test('top: a 1 GB file of zeros fails at its first byte', () => {
  const f = path.join(TMP, 'zeros.bin');
  fs.writeFileSync(f, '');
  fs.truncateSync(f, 1 << 30); // sparse: no disk used
  const r = cli(['top', f]);
  assertFinished(r, '1 GB of zeros');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /zeros\.bin is not a pprof profile \(at byte 0: field number 0/);
});

test('top and flame: /dev/zero ends with an error instead of reading forever', () => {
  for (const args of [['top', '/dev/zero'], ['flame', '/dev/zero', '-o', path.join(TMP, 'z.html')]]) {
    const r = cli(args);
    assertFinished(r, args.join(' '));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\/dev\/zero is not a pprof profile/);
  }
});

test('top: a gzip bomb of zeros (100 MB in 100 kB) fails at its first inflated bytes', async () => {
  const f = path.join(TMP, 'zero-bomb.gz');
  await gzipRepeated(f, Buffer.alloc(1 << 20), 100 << 20);
  assert.ok(fs.statSync(f).size < 200_000);
  const r = cli(['top', f]);
  assertFinished(r, 'the zero bomb');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not a pprof profile \(at byte 0/);
});

test('top: a bomb of valid-looking fields stops at --max-size, and at the 256M default', async () => {
  const small = path.join(TMP, 'field-bomb-64m.gz');
  await gzipRepeated(small, validFields(1 << 20), 64 << 20);
  const r = cli(['top', '--max-size', '8M', small]);
  assertFinished(r, 'the 64 MB field bomb');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /field-bomb-64m\.gz is larger than the 8M limit once decompressed; not reading further \(raise it with --max-size/);
  // Real size: just over the default limit (300 MB inflated from ~300 kB).
  const big = path.join(TMP, 'field-bomb-300m.gz');
  await gzipRepeated(big, validFields(1 << 20), 300 << 20);
  const d = cli(['top', big]);
  assertFinished(d, 'the 300 MB field bomb');
  assert.equal(d.code, 1);
  assert.match(d.stderr, /is larger than the 256M limit/);
});

test('top: a field declaring more than --max-size bytes is refused before it is read', () => {
  // string_table (field 6) claiming 1 GB, followed by a little data.
  const f = path.join(TMP, 'huge-field.pb');
  fs.writeFileSync(f, Buffer.concat([Buffer.from([0x32, 0x80, 0x80, 0x80, 0x80, 0x04]), Buffer.alloc(100, 0x61)]));
  const r = cli(['top', f]);
  assertFinished(r, 'the huge field');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /larger than the 256M limit once decompressed \(field 6 at byte 0 declares 1073741824 bytes\)/);
});

test('top: --max-size below a real profile\'s size refuses it; the default and a raised one read it', async () => {
  const b = new PprofBuilder({ sampleTypes: [{ type: 'samples', unit: 'count' }] });
  for (let i = 0; i < 2000; i++) b.addSample([{ name: `fn${i}`, file: '/x.js', line: i + 1 }], [i + 1]);
  const raw = Buffer.from(b.build().encode());
  const rawFile = path.join(TMP, 'real.pb');
  const gzFile = path.join(TMP, 'real.pb.gz');
  fs.writeFileSync(rawFile, raw);
  fs.writeFileSync(gzFile, zlib.gzipSync(raw));
  for (const f of [rawFile, gzFile]) {
    const tooSmall = cli(['top', '--max-size', String(raw.length - 1), f]);
    assert.equal(tooSmall.code, 1, f);
    assert.match(tooSmall.stderr, /is larger than the \d+ bytes limit once decompressed/);
    for (const args of [['top', f], ['top', '--max-size', String(raw.length), f], ['top', '--max-size=1G', f]]) {
      const ok = cli(args);
      assert.equal(ok.code, 0, `${args.join(' ')}: ${ok.stderr}`);
      assert.match(ok.stdout, /of 2001000 total/);
    }
  }
  for (const bad of ['0', '-1', 'lots', '1T', '1.5M']) {
    const r = cli(['top', '--max-size', bad, rawFile]);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /--max-size must be a size in bytes/);
  }
});

test('fetch: an answer that never ends is cut off at --max-size', async () => {
  const chunk = validFields(64 << 10);
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const more = () => { while (!res.destroyed && res.write(chunk)); };
    res.on('drain', more);
    more();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const child = spawn(process.execPath, [BIN, 'fetch', `http://127.0.0.1:${server.address().port}/debug/pprof/heap`, '-o', path.join(TMP, 'endless.pb.gz'), '--max-size', '4M'], { cwd: TMP });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])));
    clearTimeout(killer);
    assert.equal(signal, null, 'fetch did not finish');
    assert.equal(code, 1);
    assert.match(stderr, /the answer is larger than 4194304 bytes; not reading further/);
    assert.equal(fs.existsSync(path.join(TMP, 'endless.pb.gz')), false);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
