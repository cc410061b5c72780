'use strict';
// examples/blobstore: the Go custom-profiles article's program in JS. 1000 blobs are
// opened from asynchronous tasks, every fifth is closed, so 800 stay open, all opened by
// the task function (the function that called Open, as main.main.func1 in the article).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { decode, samples, haveGo, goPprof } = require('./helpers');

const MAIN = path.join(__dirname, '..', 'examples', 'blobstore', 'main.js');

test('blobstore example: 800 open blobs, all attributed to the function that called Open', async (t) => {
  const file = path.join(os.tmpdir(), `sigprof-blobstore-${process.pid}.pb.gz`);
  t.after(() => fs.rmSync(file, { force: true }));
  const out = execFileSync(process.execPath, [MAIN, file], { encoding: 'utf8' });

  const lines = out.split('\n');
  assert.strictEqual(lines[0], 'open blobs: 800');
  assert.strictEqual(lines[1], 'blobstore.Open profile: total 800');
  // Every record's first frame is blobTask in main.js; Open and Add are skipped.
  const firstFrames = out.split('\n\n').map((r) => r.split('\n').find((l) => l.startsWith('#\t'))).filter(Boolean);
  assert.ok(firstFrames.length >= 1);
  for (const f of firstFrames) assert.match(f, /^#\t0x[0-9a-f]+\tblobTask\+0x[0-9a-f]+\t+.*examples\/blobstore\/main\.js:\d+$/);
  assert.doesNotMatch(out, /blobstore\.js|\tOpen\+|\.Add\+/);

  const prof = decode(fs.readFileSync(file));
  const st = prof.stringTable.strings;
  assert.deepStrictEqual(prof.sampleType.map((x) => `${st[Number(x.type)]}/${st[Number(x.unit)]}`), ['blobstore.Open/count']);
  const ss = samples(prof);
  assert.strictEqual(ss.reduce((n, s) => n + s.values[0], 0), 800);
  for (const s of ss) {
    assert.strictEqual(s.frames[0].name, 'blobTask');
    assert.match(s.frames[0].file, /examples\/blobstore\/main\.js$/);
  }

  if (haveGo()) {
    const top = goPprof(['-top', file]);
    assert.match(top, /Type: blobstore\.Open/);
    assert.match(top, /Showing nodes accounting for 800, 100% of 800 total/);
    const rows = top.split('\n').filter((l) => /^\s+\d+\s+[\d.]+%/.test(l));
    assert.match(rows[0], /^\s+800\s+100%\s+100%\s+800\s+100%\s+blobTask$/);
  }
});
