'use strict';
// Conformance with the reference client: @pyroscope/nodejs (a devDependency) and
// sigprof/pyroscope push to the same local recorder, each from its own process with the
// same config, and what they send is compared. What differs on purpose is listed in
// DELIBERATE with the reason; everything else must match.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const zlib = require('node:zlib');
const { execFile } = require('node:child_process');
const { Profile } = require('pprof-format');
const { startRecorder } = require('./pyroscope-recorder');

const CLIENT = path.join(__dirname, 'fixtures', 'pyroscope-client.js');

const DELIBERATE = {
  'CPU sample types': 'reference: samples/count + wall/nanoseconds (V8 wall-time sampler); sigprof: samples/count + cpu/nanoseconds, Go\'s CPU profile shape — sigprof samples CPU time with SIGPROF, and Pyroscope stores it as process_cpu as it does for Go',
  sampleRate: 'reference sends ceil(1e6 / samplingDurationMs) (17 for the 60 s default: its duration is used where the interval was meant); sigprof sends the CPU sampling rate in Hz (100)',
  'identity tags': 'reference adds otel.scope.name=com.grafana.pyroscope/nodejs and its version; sigprof names itself (otel.scope.name=sigprof) and adds service_name, hostname and pid (the issue\'s process identity); both add process.runtime.name/version; the user\'s tags are the same and win on a clash in both',
  'request count': 'reference sends no heap profile at stop() (its heap profiler returns null there); sigprof sends the last interval of both',
};

function run(which, config) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLIENT, which], { env: { ...process.env, CONFIG: JSON.stringify(config), RUN_MS: '1300' }, timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`${which} client failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

function parseName(name) {
  const m = /^([^{]*)\{(.*)\}$/.exec(name);
  assert.ok(m, `name ${name} is app{k=v,...}`);
  return { app: m[1], tags: Object.fromEntries(m[2].split(',').filter(Boolean).map((kv) => kv.split('='))) };
}

function sampleTypes(body) {
  assert.deepStrictEqual([...body.subarray(0, 2)], [0x1f, 0x8b], 'body is gzip');
  const p = Profile.decode(zlib.gunzipSync(body));
  return p.sampleType.map((t) => `${p.stringTable.strings[Number(t.type)]}/${p.stringTable.strings[Number(t.unit)]}`);
}

/** Splits one client's requests by profile type, from the decoded body. */
function byKind(requests) {
  const cpu = [];
  const heap = [];
  for (const r of requests) {
    const types = sampleTypes(r.body);
    (types.some((t) => t.endsWith('space/bytes')) ? heap : cpu).push({ ...r, types });
  }
  return { cpu, heap };
}

async function both(config) {
  const rec = await startRecorder('ok');
  try {
    const cfg = { ...config, serverAddress: rec.url };
    await run('reference', cfg);
    const reference = rec.requests.splice(0);
    await run('sigprof', cfg);
    const sigprof = rec.requests.splice(0);
    return { reference, sigprof };
  } finally {
    await rec.close();
  }
}

test('sigprof/pyroscope sends what @pyroscope/nodejs sends (bearer token, tenant)', async () => {
  const { reference, sigprof } = await both({ appName: 'conf', tags: { region: 'eu', shard: 3 }, flushIntervalMs: 500, authToken: 'tok-123', tenantID: 'acme' });
  assert.ok(reference.length >= 3, `reference sent ${reference.length}`);
  assert.ok(sigprof.length >= 4, `sigprof sent ${sigprof.length}`);
  const ref = byKind(reference);
  const ours = byKind(sigprof);
  for (const [who, k] of [['reference', ref], ['sigprof', ours]]) {
    assert.ok(k.cpu.length >= 1 && k.heap.length >= 1, `${who}: one request per profile type per interval (${k.cpu.length} cpu, ${k.heap.length} heap)`);
  }
  for (const r of [...reference, ...sigprof]) {
    assert.strictEqual(r.method, 'POST');
    assert.strictEqual(r.path, '/ingest');
    assert.strictEqual(r.query.format, 'pprof');
    assert.strictEqual(r.query.spyName, 'nodespy');
    assert.match(r.query.from, /^\d+$/);
    assert.match(r.query.until, /^\d+$/);
    assert.ok(Number(r.query.until) >= Number(r.query.from));
    assert.ok(Math.abs(Number(r.query.until) - Date.now() / 1000) < 120, 'unix seconds');
    assert.strictEqual(r.headers['content-type'], 'application/octet-stream');
    assert.strictEqual(r.headers.authorization, 'Bearer tok-123');
    assert.strictEqual(r.headers['x-scope-orgid'], 'acme');
    const { app, tags } = parseName(r.query.name);
    assert.strictEqual(app, 'conf');
    assert.strictEqual(tags.region, 'eu');
    assert.strictEqual(tags.shard, '3');
    assert.strictEqual(tags['process.runtime.name'], 'nodejs');
    assert.strictEqual(tags['process.runtime.version'], process.versions.node);
  }
  // The same query parameters, in the same order; sampleRate on CPU only (DELIBERATE.sampleRate for its value).
  const keys = (r) => r.queryKeys.join(',');
  assert.deepStrictEqual([...new Set(ref.cpu.map(keys))], ['format,from,name,spyName,until,sampleRate']);
  assert.deepStrictEqual([...new Set(ours.cpu.map(keys))], ['format,from,name,spyName,until,sampleRate']);
  assert.deepStrictEqual([...new Set(ref.heap.map(keys))], ['format,from,name,spyName,until']);
  assert.deepStrictEqual([...new Set(ours.heap.map(keys))], ['format,from,name,spyName,until']);
  assert.strictEqual(ours.cpu[0].query.sampleRate, '100');
  assert.strictEqual(ref.cpu[0].query.sampleRate, '17', DELIBERATE.sampleRate);
  // Sample types: the heap ones match (in-use objects and bytes, as Go names them), the CPU ones differ (DELIBERATE).
  assert.deepStrictEqual(ref.cpu[0].types.slice(0, 2), ['samples/count', 'wall/nanoseconds']);
  for (const r of ours.cpu) assert.deepStrictEqual(r.types, ['samples/count', 'cpu/nanoseconds']);
  assert.deepStrictEqual(ref.heap[0].types, ['inuse_objects/count', 'inuse_space/bytes']);
  for (const r of ours.heap) assert.deepStrictEqual(r.types, ['inuse_objects/count', 'inuse_space/bytes']);
  // DELIBERATE['identity tags'].
  const refTags = parseName(reference[0].query.name).tags;
  const ourTags = parseName(sigprof[0].query.name).tags;
  assert.strictEqual(refTags['otel.scope.name'], 'com.grafana.pyroscope/nodejs');
  assert.strictEqual(ourTags['otel.scope.name'], 'sigprof');
  assert.strictEqual(ourTags.service_name, 'conf');
  assert.strictEqual(ourTags.pid, String(Number(ourTags.pid)));
  assert.ok(ourTags.hostname);
  // Consecutive CPU intervals: each starts where the previous ended (no gap).
  for (let i = 1; i < ours.cpu.length; i++) assert.ok(Number(ours.cpu[i].query.from) <= Number(ours.cpu[i - 1].query.until) + 1);
});

test('basic auth and no tenant: the same Authorization header, no X-Scope-OrgID, from either client', async () => {
  const { reference, sigprof } = await both({ appName: 'conf', flushIntervalMs: 500, basicAuthUser: 'user', basicAuthPassword: 'p:ss' });
  assert.ok(reference.length > 0 && sigprof.length > 0);
  const expected = `Basic ${Buffer.from('user:p:ss').toString('base64')}`;
  for (const r of [...reference, ...sigprof]) {
    assert.strictEqual(r.headers.authorization, expected);
    assert.strictEqual(r.headers['x-scope-orgid'], undefined);
  }
});

test('PYROSCOPE_* environment variables alone configure it, as for @pyroscope/nodejs', async () => {
  const rec = await startRecorder('ok');
  try {
    await new Promise((resolve, reject) => {
      execFile(process.execPath, ['--require', path.join(__dirname, '..', 'pyroscope.js'), '-e', 'const t = Date.now(); (function f() { let x = 0; for (let i = 0; i < 1e6; i++) x += i; if (Date.now() - t < 700) setImmediate(f); })();'], {
        env: { ...process.env, PYROSCOPE_SERVER_ADDRESS: rec.url, PYROSCOPE_APPLICATION_NAME: 'envapp', PYROSCOPE_AUTH_TOKEN: 'envtok', PYROSCOPE_FLUSH_INTERVAL_MS: '300' },
        timeout: 30_000,
      }, (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve()));
    });
    assert.ok(rec.requests.length >= 2, `${rec.requests.length} requests`);
    for (const r of rec.requests) {
      assert.strictEqual(parseName(r.query.name).app, 'envapp');
      assert.strictEqual(r.headers.authorization, 'Bearer envtok');
    }
    // The last interval is sent when the program ends on its own (beforeExit).
    assert.ok(byKind(rec.requests).cpu.length >= 2);
  } finally {
    await rec.close();
  }
});
