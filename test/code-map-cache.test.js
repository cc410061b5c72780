'use strict';
// The code map caches where an address was found (native/code_map.cc, FindLiveLocked).
// Code that is replaced at a reused address or moved by compaction must not keep its
// name: each phase of test/fixtures/code-churn.js runs its own freshly compiled function
// under its own label, so a sample naming another phase's function is a stale lookup.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const fixture = path.join(__dirname, 'fixtures', 'code-churn.js');

for (const flags of [[], ['--stress-compaction']]) {
  test(`no stale function names under code churn ${flags.join(' ') || '(default GC)'}`, () => {
    const r = spawnSync(process.execPath, ['--expose-gc', ...flags, fixture, '30', '25'], { encoding: 'utf8' });
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    // 30 phases × 25 ms of thread CPU at 1 kHz: ~750 labelled samples expected; a tenth
    // of that is far outside what sampling noise allows.
    assert.ok(out.labelled >= 75, `only ${out.labelled} labelled samples`);
    // Phases are spent in their churn_k; anything below half would mean frames lost.
    assert.ok(out.right >= out.labelled / 2, `${out.right} of ${out.labelled} labelled samples name their phase's function`);
    assert.strictEqual(out.wrong, 0, `samples naming another phase's function:\n${out.wrongExamples.join('\n')}`);
  });
}
