'use strict';
// Issue 9 item 6: concurrent heap requests share one computation and forced GCs are
// rate-limited. Counts, not times: the bound follows from the rule in lib/http.ts (a
// heap/allocs result is reused by requests that arrive while it is computed or within
// SHARE_MS of its start; a forced GC runs at most once per GC_MIN_INTERVAL_MS), so over a
// burst lasting E ms there are at most 1 + floor(E / 1000) computations and forced GCs.
// Before the fix every request computed (and GC'd) on its own: 200 of each.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const sigprof = require('..');
const { handler, SHARE_MS, GC_MIN_INTERVAL_MS } = require('../dist/http.js');

const retained = [];
function retainSome() {
  for (let i = 0; i < 20_000; i++) retained.push({ i, s: `value ${i}` });
}
retainSome();

function countWriteTo(profile) {
  const calls = [];
  const original = profile.WriteTo;
  profile.WriteTo = function (w, debug, opts) {
    calls.push({ debug, gc: !!opts?.gc });
    return original.call(this, w, debug, opts);
  };
  return { calls, restore: () => { delete profile.WriteTo; } };
}

async function burst(base, path, n) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    http.get(`${base}${path}`, { agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  })));
  agent.destroy();
  return { results, elapsed: Date.now() - t0 };
}

async function withServer(fn) {
  const server = http.createServer(handler());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`);
  } finally {
    server.close();
  }
}

for (const path of ['/debug/pprof/heap?gc=1', '/debug/pprof/heap', '/debug/pprof/allocs?gc=1&debug=1']) {
  test(`200 concurrent ${path}: one computation per second at most, every answer the same`, async () => {
    assert.equal(SHARE_MS, 1000);
    assert.equal(GC_MIN_INTERVAL_MS, 1000);
    const name = path.includes('allocs') ? 'allocs' : 'heap';
    const counter = countWriteTo(sigprof.Lookup(name));
    try {
      await withServer(async (base) => {
        const { results, elapsed } = await burst(base, path, 200);
        for (const r of results) assert.equal(r.status, 200);
        const bound = 1 + Math.floor(elapsed / 1000);
        assert.ok(counter.calls.length >= 1 && counter.calls.length <= bound, `${counter.calls.length} computations for 200 requests in ${elapsed} ms (bound ${bound})`);
        const gcs = counter.calls.filter((c) => c.gc).length;
        assert.ok(gcs <= bound, `${gcs} forced GCs (bound ${bound})`);
        // Answers from one computation are the same bytes.
        const distinct = new Set(results.map((r) => r.body.toString('base64')));
        assert.ok(distinct.size <= counter.calls.length, `${distinct.size} distinct bodies from ${counter.calls.length} computations`);
      });
    } finally {
      counter.restore();
    }
  });
}

test('forced GCs are rate-limited across heap and allocs', async () => {
  const heap = countWriteTo(sigprof.Lookup('heap'));
  const allocs = countWriteTo(sigprof.Lookup('allocs'));
  try {
    // The tests above leave results that are shared for SHARE_MS after they started
    // (heap?gc=1 among them): wait them out, so each request below is a new computation.
    await new Promise((r) => setTimeout(r, SHARE_MS + 100));
    await withServer(async (base) => {
      const t0 = Date.now();
      await burst(base, '/debug/pprof/heap?gc=1', 1);
      await burst(base, '/debug/pprof/allocs?gc=1', 1);
      await burst(base, '/debug/pprof/heap?gc=1&debug=1', 1);
      const elapsed = Date.now() - t0;
      const gcs = [...heap.calls, ...allocs.calls].filter((c) => c.gc).length;
      assert.equal(heap.calls.length + allocs.calls.length, 3, 'different profiles or formats are not shared');
      // Three ?gc=1 requests in `elapsed` ms: a GC at most once per second (plus the first).
      assert.ok(gcs <= 1 + Math.floor(elapsed / 1000), `${gcs} forced GCs in ${elapsed} ms`);
    });
  } finally {
    heap.restore();
    allocs.restore();
  }
});
