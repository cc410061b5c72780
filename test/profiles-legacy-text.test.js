'use strict';
// lib/legacy-text.ts: the tab alignment is checked against Go's own text/tabwriter with
// runtime/pprof's settings, and the record/frame line shapes against printStackRecord's.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { haveGo } = require('./helpers');
const lt = require('../dist/legacy-text');

const GO_TABWRITER = `package main

import (
	"io"
	"os"
	"text/tabwriter"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	tw := tabwriter.NewWriter(os.Stdout, 1, 8, 1, '\\t', 0)
	tw.Write(in)
	tw.Flush()
}
`;

const CASES = [
  ['heap profile: total 3', '3 @ 0x1 0x2', '#\t0x1\tf+0x1\ta.js:1', '#\t0x2\tlongerFunctionName+0x10\t/some/where/b.js:22', '', '1 @ 0x3', '#\t0x3\tg+0x1\tc.js:3', ''],
  ['#\t0x1\tx\ty', 'no tabs here', '#\t0x400010\ta-very-long-name-that-spans-more-than-sixteen+0x10\tf.js:1', '#\t0x2\tb\tf.js:2', '#\t\t\t', ''],
  ['a\tb', 'aa\tbb\tcc', 'aaaaaaaaaaaaaaaaaaaa\tb', 'x', 'é\tü\t', ''],
];

test('tabAlign matches Go text/tabwriter(minwidth 1, tabwidth 8, padding 1, padchar \\t)', { skip: !haveGo() && 'go not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-tw-'));
  try {
    const src = path.join(dir, 'tw.go');
    fs.writeFileSync(src, GO_TABWRITER);
    const bin = path.join(dir, 'tw');
    execFileSync('go', ['build', '-o', bin, src], { env: { ...process.env, GOCACHE: path.join(dir, 'cache') } });
    for (const lines of CASES) {
      const input = lines.join('\n') + '\n';
      const want = execFileSync(bin, { input, encoding: 'utf8' });
      assert.strictEqual(lt.tabAlign(lines), want, JSON.stringify(lines));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tabAlign pads a column block to its widest cell + 1, in whole tabs', () => {
  const out = lt.tabAlign(['#\t0x1\tf+0x1\ta.js:1', '#\t0x2\tlongername+0x1\tb.js:2']);
  assert.strictEqual(out, '#\t0x1\tf+0x1\t\ta.js:1\n#\t0x2\tlongername+0x1\tb.js:2\n');
});

test('count profile text: header, records most first, frame lines', () => {
  const f = (name, line) => ({ name, file: '/x.js', line });
  const s = lt.formatCountProfile('demo', [
    { frames: [f('b', 2), f('main', 9)], count: 1 },
    { frames: [f('a', 1), f('main', 8)], count: 3, labels: { type: 'T', k: 'v' } },
  ]);
  const lines = s.split('\n');
  assert.strictEqual(lines[0], 'demo profile: total 4');
  assert.match(lines[1], /^3 @ 0x[0-9a-f]+ 0x[0-9a-f]+$/);
  assert.strictEqual(lines[2], '# labels: {"k":"v", "type":"T"}');
  assert.match(lines[3], /^#\t0x[0-9a-f]+\ta\+0x[0-9a-f]+\t+\/x\.js:1$/);
  assert.match(lines[4], /^#\t0x[0-9a-f]+\tmain\+0x[0-9a-f]+\t+\/x\.js:8$/);
  assert.strictEqual(lines[5], '');
  assert.match(lines[6], /^1 @ /);
  // main:8 and main:9 are two locations of one function: same entry, different addresses.
  const a8 = /0x[0-9a-f]+/.exec(lines[4])[0];
  const a9 = /0x[0-9a-f]+/.exec(lines[8])[0];
  assert.notStrictEqual(a8, a9);
  const entry = (l) => parseInt(/0x[0-9a-f]+/.exec(l)[0], 16) - parseInt(/\+(0x[0-9a-f]+)/.exec(l)[1], 16);
  assert.strictEqual(entry(lines[4]), entry(lines[8]));
});

test('contention text: Go block/mutex shape with nanosecond cycles', () => {
  const s = lt.formatContentionProfile('contention', [
    { frames: [{ name: 'slow', file: '/y.js', line: 3 }], count: 2, delayNs: 5e6 },
    { frames: [{ name: 'slower', file: '/y.js', line: 7 }], count: 1, delayNs: 9e6 },
  ]);
  const lines = s.split('\n');
  assert.deepStrictEqual(lines.slice(0, 2), ['--- contention:', 'cycles/second=1000000000']);
  assert.match(lines[2], /^9000000 1 @ 0x[0-9a-f]+$/);
  assert.match(lines[3], /^#\t0x[0-9a-f]+\tslower\+0x[0-9a-f]+\t\/y\.js:7$/);
  assert.match(lines[5], /^5000000 2 @ /);
});
