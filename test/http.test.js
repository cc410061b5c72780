'use strict';
// sigprof/http: routing, parameters, errors, the index, deltas, and the three ways to
// mount the handler. Everything runs in this process against loopback servers, so the
// tests can change the profiler's state (a running CPU profile, custom profiles) and
// know exactly what the server saw.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const zlib = require('node:zlib');
const { Profile } = require('pprof-format');
const sigprof = require('../dist/index.js');
const { listen, handler } = require('../dist/http.js');
const { samplerReaders } = require('../dist/cpu.js');
const { MemoryWritable, decode, samples } = require('./helpers');

/** One request; resolves with status, headers and the whole body. */
function request(url, { method = 'GET', body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // A handler that never answers fails the test instead of hanging it.
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${url}: no answer within 20 s`)));
    req.end(body);
  });
}

async function withServer(make, fn) {
  const server = make();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`, server);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const sampleTypes = (p) => p.sampleType.map((t) => `${p.stringTable.strings[Number(t.type)]}/${p.stringTable.strings[Number(t.unit)]}`);
const signed = (v) => (typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : v);

test('listen: loopback by default, every endpoint answers, nosniff everywhere', async () => {
  const server = await listen({ port: 0 });
  try {
    assert.strictEqual(server.address().address, '127.0.0.1');
    const base = `http://127.0.0.1:${server.address().port}/debug/pprof`;

    const heap = await request(`${base}/heap`);
    assert.strictEqual(heap.status, 200);
    assert.strictEqual(heap.headers['content-type'], 'application/octet-stream');
    assert.strictEqual(heap.headers['content-disposition'], 'attachment; filename="heap"');
    assert.strictEqual(heap.headers['x-content-type-options'], 'nosniff');
    assert.ok(sampleTypes(decode(heap.body)).includes('inuse_space/bytes'));

    const text = await request(`${base}/heap?debug=1`);
    assert.strictEqual(text.status, 200);
    assert.strictEqual(text.headers['content-type'], 'text/plain; charset=utf-8');
    assert.strictEqual(text.headers['content-disposition'], undefined);
    assert.match(text.body.toString(), /^heap profile: \d+: \d+ \[\d+: \d+\] @ heap\/\d+$/m);

    const allocs = await request(`${base}/allocs?gc=1`);
    assert.strictEqual(allocs.status, 200);
    assert.strictEqual(allocs.headers['content-disposition'], 'attachment; filename="allocs"');
    decode(allocs.body);

    const raw = await request(`${base}/goroutine?gz=0`);
    assert.strictEqual(raw.status, 200);
    assert.deepStrictEqual(sampleTypes(Profile.decode(raw.body)), ['goroutine/count']);

    const cmdline = await request(`${base}/cmdline`);
    assert.strictEqual(cmdline.status, 200);
    assert.strictEqual(cmdline.headers['content-type'], 'text/plain; charset=utf-8');
    assert.strictEqual(cmdline.body.toString(), process.argv.join('\0'));

    // Go's format, naming nothing: go tool pprof POSTs the addresses of address-only
    // Locations here, and a 405 made `go tool pprof -top <url>` fail.
    const symbol = await request(`${base}/symbol`);
    assert.strictEqual(symbol.status, 200);
    assert.strictEqual(symbol.body.toString(), 'num_symbols: 1\n');
    const posted = await request(`${base}/symbol`, { method: 'POST', body: '0x7f0012345678+0x401000' });
    assert.strictEqual(posted.status, 200);
    assert.strictEqual(posted.headers['content-type'], 'text/plain; charset=utf-8');
    assert.strictEqual(posted.body.toString(), 'num_symbols: 1\n');
    const junk = await request(`${base}/symbol`, { method: 'POST', body: 'rm -rf' });
    assert.strictEqual(junk.status, 400);
    assert.strictEqual((await request(`${base}/symbol`, { method: 'PUT' })).status, 405);

    const redirect = await request(`${base}`);
    assert.strictEqual(redirect.status, 301);
    assert.strictEqual(redirect.headers.location, '/debug/pprof/');

    const outside = await request(`http://127.0.0.1:${server.address().port}/debug/pprofile`);
    assert.strictEqual(outside.status, 404);
    assert.strictEqual(outside.body.toString(), '404 page not found\n');

    for (const r of [heap, text, allocs, raw, cmdline, symbol, redirect, outside]) {
      assert.strictEqual(r.headers['x-content-type-options'], 'nosniff');
    }
  } finally {
    server.close();
  }
});

test('listen: refuses bad options, reports a port in use', async () => {
  await assert.rejects(listen({ port: -1 }), /port must be an integer from 0 to 65535/);
  await assert.rejects(listen({ port: 1.5 }), /port must be an integer/);
  await assert.rejects(listen({ host: '' }), /host must be a non-empty string/);
  await assert.rejects(listen({ port: 0, prefix: 'debug' }), /prefix must be a path starting with "\/"/);
  const first = await listen({ port: 0 });
  try {
    await assert.rejects(listen({ port: first.address().port }), { code: 'EADDRINUSE' });
  } finally {
    first.close();
  }
});

test('errors: unknown profile, bad parameters, methods, each with its reason', async () => {
  await withServer(() => http.createServer(handler()), async (base) => {
    const cases = [
      ['/debug/pprof/nope', 404, /^Unknown profile\n$/],
      ['/debug/pprof/trace', 404, /not provided/],
      ['/debug/pprof/heap?debug=x', 400, /invalid value for "debug"/],
      ['/debug/pprof/heap?debug=-1', 400, /invalid value for "debug"/],
      ['/debug/pprof/heap?seconds=1&debug=1', 400, /seconds and debug params are incompatible/],
      ['/debug/pprof/heap?secondz=5', 400, /unknown parameter "secondz" for \/heap \(accepted: debug, gc, gz, seconds\)/],
      ['/debug/pprof/goroutine?gc=1', 400, /unknown parameter "gc" for \/goroutine/],
      ['/debug/pprof/profile?seconds=abc', 400, /invalid value for "seconds": must be a positive integer/],
      ['/debug/pprof/profile?seconds=-3', 400, /invalid value for "seconds"/],
      ['/debug/pprof/profile?seconds=0', 400, /invalid value for "seconds"/],
      ['/debug/pprof/profile?seconds=1.5', 400, /invalid value for "seconds"/],
      ['/debug/pprof/profile?seconds=99999999', 400, /at most 2147483/],
      ['/debug/pprof/profile?debug=1', 400, /unknown parameter "debug" for \/profile \(accepted: seconds, gz\)/],
      ['/debug/pprof/heap?seconds=1&seconds=2', 400, /given more than once/],
      ['/debug/pprof/heap?gz=2', 400, /invalid value for "gz"/],
      ['/debug/pprof/heap?debug=1&gz=0', 400, /debug=0/],
      ['/debug/pprof/cmdline?x=1', 400, /unknown parameter "x" for \/cmdline \(it takes no parameters\)/],
      ['/debug/pprof/?debug=1', 400, /unknown parameter "debug" for the index/],
      ['/debug/pprof/%E0%A4%A', 400, /malformed percent-encoding/],
    ];
    for (const [path, status, re] of cases) {
      const r = await request(base + path);
      assert.strictEqual(r.status, status, path);
      assert.match(r.body.toString(), re, path);
      assert.strictEqual(r.headers['content-type'], 'text/plain; charset=utf-8', path);
      assert.strictEqual(r.headers['x-go-pprof'], '1', path);
      assert.strictEqual(r.headers['x-content-type-options'], 'nosniff', path);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await request(`${base}/debug/pprof/heap`, { method });
      assert.strictEqual(r.status, 405, method);
      assert.strictEqual(r.headers.allow, 'GET, HEAD');
    }
  });
});

test('HEAD: the headers a GET would have, without taking the profile', async () => {
  await withServer(() => http.createServer(handler()), async (base) => {
    const heap = await request(`${base}/debug/pprof/heap`, { method: 'HEAD' });
    assert.strictEqual(heap.status, 200);
    assert.strictEqual(heap.headers['content-type'], 'application/octet-stream');
    assert.strictEqual(heap.body.length, 0);
    // A 30 s CPU capture would not answer at once, nor leave the profiler idle.
    const cpu = await request(`${base}/debug/pprof/profile`, { method: 'HEAD' });
    assert.strictEqual(cpu.status, 200);
    assert.strictEqual(cpu.headers['content-disposition'], 'attachment; filename="profile"');
    assert.strictEqual(samplerReaders(), 0);
    const bad = await request(`${base}/debug/pprof/heap?debug=z`, { method: 'HEAD' });
    assert.strictEqual(bad.status, 400);
  });
});

test('profile: answers 200 while the program\'s CPU profile runs, and to two captures at once (each a reader of the one sampler)', async () => {
  await withServer(() => http.createServer(handler()), async (base, server) => {
    const w = new MemoryWritable();
    sigprof.StartCPUProfile(w);
    try {
      const r = await request(`${base}/debug/pprof/profile?seconds=1`);
      assert.strictEqual(r.status, 200, r.body.toString());
      assert.strictEqual(r.headers['content-disposition'], 'attachment; filename="profile"');
      assert.deepStrictEqual(sampleTypes(decode(r.body)), ['samples/count', 'cpu/nanoseconds']);
      // The capture must not have stopped or written into the program's own profile.
      assert.strictEqual(sigprof.CPUProfileStats().running, true);
      assert.strictEqual(w.buffer().length, 0);
    } finally {
      await sigprof.StopCPUProfile();
    }
    decode(w.buffer());

    // Listeners run in order, so once this one fired the handler has started the capture.
    const started = new Promise((resolve) => server.once('request', resolve));
    const first = request(`${base}/debug/pprof/profile?seconds=1`);
    await started;
    const second = await request(`${base}/debug/pprof/profile?seconds=1`);
    const ok = await first;
    for (const r of [ok, second]) {
      assert.strictEqual(r.status, 200, r.body.toString());
      assert.strictEqual(r.headers['content-type'], 'application/octet-stream');
      assert.deepStrictEqual(sampleTypes(decode(r.body)), ['samples/count', 'cpu/nanoseconds']);
    }
    assert.strictEqual(samplerReaders(), 0);
  });
});

test('profile: a client that goes away stops the capture at once', async () => {
  await withServer(() => http.createServer(handler()), async (base, server) => {
    const closed = new Promise((resolve) => {
      server.once('request', (req, res) => {
        // Listeners run in order: the handler's reader has joined the sampler by now.
        assert.strictEqual(samplerReaders(), 1);
        res.once('close', resolve);
        client.destroy();
      });
    });
    const client = http.get(`${base}/debug/pprof/profile?seconds=30`, { agent: false });
    client.on('error', () => {});
    await closed;
    // The handler's own 'close' listener ran first; its reader leaves in a microtask.
    await new Promise((resolve) => setImmediate(resolve));
    assert.strictEqual(samplerReaders(), 0);
  });
});

test('seconds longer than the server lets a connection stay silent: 400 (Go compares with WriteTimeout)', async () => {
  await withServer(() => {
    const s = http.createServer(handler());
    s.timeout = 5000;
    return s;
  }, async (base) => {
    for (const path of ['/debug/pprof/profile', '/debug/pprof/profile?seconds=5', '/debug/pprof/heap?seconds=7']) {
      const r = await request(base + path);
      assert.strictEqual(r.status, 400, path);
      assert.match(r.body.toString(), /exceeds the server's timeout: \d+ s requested, but the connection is dropped after 5000 ms/, path);
    }
    assert.strictEqual(samplerReaders(), 0);
  });
});

// Both functions are the profile's stacks: their names are what the delta is checked by.
const deltaProfile = sigprof.NewProfile('httptest.delta');
const steady = [];
function addBeforeWindowSteady() {
  for (let i = 0; i < 2; i++) { const v = {}; steady.push(v); deltaProfile.Add(v, 1); }
}
const leaving = [];
function addBeforeWindowLeaving() {
  for (let i = 0; i < 3; i++) { const v = {}; leaving.push(v); deltaProfile.Add(v, 1); }
}
function addDuringWindow() {
  for (let i = 0; i < 5; i++) deltaProfile.Add({}, 1);
}

test('?seconds=N on a count profile: the second snapshot minus the first, per stack', async () => {
  addBeforeWindowSteady();
  addBeforeWindowLeaving();
  const h = handler();
  await withServer(() => http.createServer((req, res) => {
    h(req, res);
    // The handler took the first snapshot synchronously; this is inside the window.
    if (req.url.includes('?seconds=')) {
      addDuringWindow();
      deltaProfile.Remove(leaving.pop());
    }
  }), async (base) => {
    const r = await request(`${base}/debug/pprof/httptest.delta?seconds=1`);
    assert.strictEqual(r.status, 200, r.body.toString());
    assert.strictEqual(r.headers['content-disposition'], 'attachment; filename="httptest.delta-delta"');
    const p = decode(r.body);
    assert.deepStrictEqual(sampleTypes(p), ['httptest.delta/count']);
    assert.ok(Number(p.durationNanos) >= 1e9, `duration ${p.durationNanos}`);
    const byLeaf = new Map();
    samples(p).forEach((s, i) => byLeaf.set(s.frames[0].name, (byLeaf.get(s.frames[0].name) ?? 0) + signed(p.sample[i].value[0])));
    assert.deepStrictEqual(Object.fromEntries(byLeaf), { addDuringWindow: 5, addBeforeWindowLeaving: -1 });
    // The full profile still has everything.
    const full = samples(decode((await request(`${base}/debug/pprof/httptest.delta`)).body));
    assert.strictEqual(full.reduce((n, s) => n + s.values[0], 0), 2 + 2 + 5);
  });
});

const retained = [];
function allocateDuringHeapWindow() {
  for (let i = 0; i < 400; i++) retained.push(new Array(5000).fill(i));
}

test('?seconds=N on heap: in-use growth attributed to the code that allocated during the window', async () => {
  const h = handler();
  await withServer(() => http.createServer((req, res) => {
    h(req, res);
    if (req.url.includes('?seconds=')) allocateDuringHeapWindow();
  }), async (base) => {
    // gc=1: heap profiles are as of the last GC (Go's semantics), and nothing guarantees a
    // GC inside a 1 s window; without one the window's growth is legitimately 0 (seen once
    // in 5 suite runs). With it, the closing profile includes everything allocated.
    const r = await request(`${base}/debug/pprof/heap?seconds=1&gc=1`);
    assert.strictEqual(r.status, 200, r.body.toString());
    assert.strictEqual(r.headers['content-disposition'], 'attachment; filename="heap-delta"');
    const p = decode(r.body);
    const types = sampleTypes(p);
    const inuse = types.indexOf('inuse_space/bytes');
    assert.ok(inuse >= 0, types.join(','));
    let during = 0;
    const ss = samples(p);
    ss.forEach((s, i) => {
      if (s.frames.some((f) => f.name === 'allocateDuringHeapWindow')) during += signed(p.sample[i].value[inuse]);
    });
    // ~16 MB retained (400 arrays of 5000 small integers), sampled every 512 KiB on average.
    assert.ok(during > 4 * 1024 * 1024, `in-use growth attributed to allocateDuringHeapWindow: ${during} bytes`);
  });
  retained.length = 0;
});

test('index: lists every profile with its count and description; every link answers', async () => {
  const idx = sigprof.NewProfile('httptest/index.Open <b>');
  idx.Add({}, 0);
  idx.Add({}, 0);
  const h = handler({ prefix: '/custom/pp/' });
  await withServer(() => http.createServer(h), async (base) => {
    const r = await request(`${base}/custom/pp/`);
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers['content-type'], 'text/html; charset=utf-8');
    const html = r.body.toString();
    assert.doesNotMatch(html, /<b>/, 'names are HTML-escaped');
    const rows = [...html.matchAll(/<tr><td>([^<]*)<\/td><td><a href="([^"]*)">([^<]*)<\/a><\/td><\/tr>/g)].map((m) => ({ count: m[1], href: m[2].replace(/&#38;/g, '&'), name: m[3] }));
    const unescape = (s) => s.replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)));
    const names = rows.map((x) => unescape(x.name));
    for (const p of sigprof.Profiles()) assert.ok(names.includes(p.Name()), `${p.Name()} listed`);
    assert.ok(names.includes('profile') && names.includes('cmdline'));
    assert.strictEqual(rows[names.indexOf('httptest/index.Open <b>')].count, '2');
    for (const p of sigprof.Profiles()) {
      const desc = p.description || 'Custom profile';
      assert.ok(unescape(html).includes(`${p.Name()}:</span> ${desc}`), `description of ${p.Name()}`);
    }
    // Relative links resolve under whatever prefix the handler has.
    for (const row of rows) {
      if (row.href === 'profile') continue; // a 30 s capture
      const u = new URL(row.href, `${base}/custom/pp/`);
      assert.ok(u.pathname.startsWith('/custom/pp/'), u.href);
      const res = await request(u);
      assert.strictEqual(res.status, 200, `${u.href}: ${res.body.toString().slice(0, 200)}`);
    }
    const dump = await request(new URL('goroutine?debug=2', `${base}/custom/pp/`));
    assert.strictEqual(dump.status, 200);
    assert.match(html, /href="goroutine\?debug=2"/);

    // The sole listener answers outside its prefix; the default prefix is not served.
    const other = await request(`${base}/debug/pprof/heap`);
    assert.strictEqual(other.status, 404);
    assert.strictEqual(other.body.toString(), '404 page not found\n');
  });
});

test('middleware: next() outside the prefix, mounted Express-style via originalUrl, plain-function false', async () => {
  const h = handler();
  let nextCalls = 0;
  await withServer(() => http.createServer((req, res) => {
    if (req.url.startsWith('/mounted')) {
      // Express's app.use('/debug/pprof', h) strips the mount path from req.url.
      req.originalUrl = req.url.slice('/mounted'.length);
      req.url = req.originalUrl.slice('/debug/pprof'.length) || '/';
      if (!h(req, res, () => { nextCalls++; res.end('next'); })) res.end('not handled');
      return;
    }
    if (req.url.startsWith('/plain')) {
      req.url = req.url.slice('/plain'.length);
      const handled = h(req, res);
      if (!handled) res.end('plain: not mine');
      return;
    }
    h(req, res, () => { nextCalls++; res.end('next'); });
  }), async (base, server) => {
    // Two listeners: the handler must not answer outside the prefix on its own.
    server.on('request', () => {});
    assert.strictEqual((await request(`${base}/`)).body.toString(), 'next');
    assert.strictEqual((await request(`${base}/debug/pprofx`)).body.toString(), 'next');
    assert.strictEqual(nextCalls, 2);
    const inside = await request(`${base}/debug/pprof/heap?debug=1`);
    assert.strictEqual(inside.status, 200);
    assert.match(inside.body.toString(), /^heap profile:/);
    assert.strictEqual(nextCalls, 2);

    const mounted = await request(`${base}/mounted/debug/pprof/goroutine?debug=1`);
    assert.strictEqual(mounted.status, 200);
    assert.match(mounted.body.toString(), /^goroutine profile: total \d+/);
    const redirect = await request(`${base}/mounted/debug/pprof?x=1`);
    assert.strictEqual(redirect.status, 301);
    assert.strictEqual(redirect.headers.location, '/debug/pprof/?x=1');

    const plain = await request(`${base}/plain/somewhere`);
    assert.strictEqual(plain.status, 200);
    assert.strictEqual(plain.body.toString(), 'plain: not mine');
    assert.strictEqual(plain.headers['x-content-type-options'], undefined, 'nothing set on requests that are not ours');
    const plainIn = await request(`${base}/plain/debug/pprof/mutex?debug=1`);
    assert.match(plainIn.body.toString(), /^--- mutex:/);
  });
});

test('handler: gz=0 gives the uncompressed protobuf of the same profile', async () => {
  const p = sigprof.NewProfile('httptest.gz');
  p.Add({}, 0);
  await withServer(() => http.createServer(handler()), async (base) => {
    const gz = await request(`${base}/debug/pprof/httptest.gz`);
    const raw = await request(`${base}/debug/pprof/httptest.gz?gz=0`);
    assert.strictEqual(raw.body[0] === 0x1f && raw.body[1] === 0x8b, false);
    assert.deepStrictEqual(samples(Profile.decode(raw.body)), samples(Profile.decode(zlib.gunzipSync(gz.body))));
  });
});

test('ESM: sigprof/http exports the same functions as the CommonJS build', async () => {
  const esm = await import('../esm/http.mjs');
  const cjs = require('../dist/http.js');
  assert.strictEqual(esm.listen, cjs.listen);
  assert.strictEqual(esm.handler, cjs.handler);
  assert.strictEqual(esm.default, cjs);
  // Through the package's own exports map, as users import it.
  assert.strictEqual((await import('sigprof/http')).listen, cjs.listen);
  assert.strictEqual(require('sigprof/http'), cjs);
});
