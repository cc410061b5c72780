'use strict';
// sigprof/http against the clients people point at /debug/pprof: go tool pprof, plain
// HTTP fetches (node:http, curl), a pull-mode scraper's request pattern, and the
// blobstore example served over HTTP. go and curl parts are skipped only when the tool
// is not installed.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { execFile, spawn, spawnSync } = require('node:child_process');
const sigprof = require('../dist/index.js');
const { listen } = require('../dist/http.js');
const { decode, samples, haveGo } = require('./helpers');

const GO = haveGo();
const CURL = spawnSync('curl', ['--version']).status === 0;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-http-'));
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/**
 * The server lives in this process, so the client must not block the event loop:
 * go tool pprof runs asynchronously (execFileSync would deadlock against our own server).
 */
function goPprofAsync(args) {
  return new Promise((resolve, reject) => {
    execFile('go', ['tool', 'pprof', ...args], { encoding: 'utf8', env: { ...process.env, PPROF_TMPDIR: TMP }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`go tool pprof ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** go tool pprof -top rows: flat, flat%, sum%, cum, cum%, name. */
function topRows(out) {
  return out.split('\n').map((l) => l.match(/^\s*(\S+)\s+([\d.]+)%\s+([\d.]+)%\s+(\S+)\s+([\d.]+)%\s+(.*)$/)).filter(Boolean)
    .map((m) => ({ flatPct: Number(m[2]), name: m[6].trim() }));
}

/**
 * CPU for the capture to see, in slices so the server (same thread) still answers.
 * setImmediate calls this function itself, so it is the physical frame on the stack and
 * cannot disappear into an inlining caller.
 */
let burning = false;
function burnForHttpCapture() {
  if (!burning) return;
  let s = 0;
  const end = Date.now() + 20;
  while (Date.now() < end) for (let i = 0; i < 1000; i++) s += Math.sqrt(i + s);
  globalThis.sink = s;
  setImmediate(burnForHttpCapture);
}
async function whileBurning(promise) {
  burning = true;
  setImmediate(burnForHttpCapture);
  try {
    return await promise;
  } finally {
    burning = false;
  }
}

let server;
let base;
test.before(async () => {
  // Stacks in the goroutine (handles) profile need tracking on before the server exists.
  sigprof.SetHandlesProfile(true);
  server = await listen({ port: 0 });
  base = `http://127.0.0.1:${server.address().port}/debug/pprof`;
});
test.after(() => {
  server.close();
  sigprof.SetHandlesProfile(false);
});

test('go tool pprof -top on /profile?seconds=2 shows where the CPU went', { skip: !GO && 'go is not installed' }, async () => {
  const { stdout } = await whileBurning(goPprofAsync(['-top', `${base}/profile?seconds=2`]));
  assert.match(stdout, /^Type: cpu$/m);
  assert.match(stdout, /^Duration: 2(\.\d+)?s,/m);
  const rows = topRows(stdout);
  const burn = rows.find((r) => r.name === 'burnForHttpCapture');
  assert.ok(burn, stdout);
  assert.ok(burn.flatPct > 50, `burnForHttpCapture has ${burn.flatPct}% flat\n${stdout}`);
});

/**
 * What the heap test retains, so its profile does not depend on what else happens to be
 * live. 256 arrays of 65,568 bytes at the default rate R = 512 KiB: each is sampled with
 * p = 1 - exp(-65568/524288) = 0.1176, so P(none sampled) = (1 - p)^256 = e^-32 ≈ 1.3e-14.
 * (The test used to rely on what the suite happened to retain since sigprof loaded, about
 * 2 sampling intervals: the profile was empty about 1 run in 10, as e^-2 predicts.)
 */
const retainedForHeap = [];
function retainForHeapTop() { for (let i = 0; i < 256; i++) retainedForHeap.push(new Array(8192).fill(i)); }

test('go tool pprof -top on /heap and -raw on /goroutine', { skip: !GO && 'go is not installed' }, async () => {
  assert.strictEqual(sigprof.runtime.MemProfileRate, 512 * 1024);
  retainForHeapTop();
  // gc=1: the profile is as of the last GC, and this makes that GC come after the arrays.
  const heap = await goPprofAsync(['-top', `${base}/heap?gc=1`]);
  assert.match(heap.stdout, /^Type: inuse_space$/m);
  assert.ok(topRows(heap.stdout).some((r) => r.name === 'retainForHeapTop'), heap.stdout);
  assert.strictEqual(retainedForHeap.length, 256);

  const g = await goPprofAsync(['-raw', `${base}/goroutine`]);
  assert.match(g.stdout, /^goroutine\/count$/m);
  // The listening server is a handle whose creation stack runs through listen() in this file.
  assert.match(g.stdout, /http-clients\.test\.js/);
  assert.match(g.stdout, /type:\[TCPSERVERWRAP\]/);
});

test('goroutine?debug=2 is a plain-text stack dump (node:http and curl)', async (t) => {
  const r = await get(`${base}/goroutine?debug=2`);
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.headers['content-type'], 'text/plain; charset=utf-8');
  const text = r.body.toString();
  assert.match(text, /^handle \d+ \[TCPSERVERWRAP, [^\]]+\]:$/m);
  assert.match(text, /^\t.*http-clients\.test\.js:\d+(:\d+)?$/m);
  if (!CURL) return t.diagnostic('curl not installed: skipped the curl fetch');
  const curl = await new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-D', '-', `${base}/goroutine?debug=2`], { encoding: 'utf8', timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  assert.match(curl, /^HTTP\/1\.1 200 OK\r$/m);
  assert.match(curl, /^X-Content-Type-Options: nosniff\r$/im);
  assert.match(curl, /^handle \d+ \[TCPSERVERWRAP/m);
});

test('a pull-mode scraper: profile?seconds=N, allocs, block, goroutine, mutex are all valid pprof', async () => {
  const expect = {
    'profile?seconds=1': ['samples/count', 'cpu/nanoseconds'],
    allocs: null,
    block: ['contentions/count', 'delay/nanoseconds'],
    goroutine: ['goroutine/count'],
    mutex: ['contentions/count', 'delay/nanoseconds'],
  };
  for (const [p, types] of Object.entries(expect)) {
    const r = await whileBurning(get(`${base}/${p}`));
    assert.strictEqual(r.status, 200, `${p}: ${r.body.toString().slice(0, 200)}`);
    assert.strictEqual(r.headers['content-type'], 'application/octet-stream', p);
    const prof = decode(r.body);
    const st = prof.stringTable.strings;
    const got = prof.sampleType.map((x) => `${st[Number(x.type)]}/${st[Number(x.unit)]}`);
    if (types) assert.deepStrictEqual(got, types, p);
    else assert.ok(got.includes('inuse_space/bytes'), `${p}: ${got}`);
    samples(prof);
  }
});

test('examples/blobstore/serve.js: go tool pprof sees the 800 open blobs and who opened them', async (t) => {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'blobstore', 'serve.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^open blobs: 800; serving (http:\/\/127\.0\.0\.1:\d+\/debug\/pprof\/)$/m);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve.js exited (${code}) before serving: ${out}`)));
  });
  if (GO) {
    const { stdout } = await goPprofAsync(['-top', `${url}blobstore.Open`]);
    assert.match(stdout, /^Type: blobstore\.Open$/m);
    assert.match(stdout, /Showing nodes accounting for 800, 100% of 800 total/);
    const rows = topRows(stdout);
    assert.deepStrictEqual(rows[0], { flatPct: 100, name: 'blobTask' });
  } else {
    t.diagnostic('go not installed: checked with pprof-format only');
  }
  const r = await get(`${url}blobstore.Open`);
  assert.strictEqual(r.status, 200);
  const ss = samples(decode(r.body));
  assert.strictEqual(ss.reduce((n, s) => n + s.values[0], 0), 800);
  for (const s of ss) {
    // serve.js reuses main.js's task loop, so blobTask is in main.js.
    assert.strictEqual(s.frames[0].name, 'blobTask');
    assert.match(s.frames[0].file, /examples\/blobstore\/main\.js$/);
  }
});
