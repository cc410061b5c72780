'use strict';
// Cost of one Profile.Add + Profile.Remove pair with the caller 10 JS frames deep — the
// price a library pays per tracked resource (open/close). Target: <= 2 µs per pair.
// Usage: node bench/profile-add.js [pairs]
const { performance } = require('node:perf_hooks');
const sp = require('..');
const { captureStack } = require('../dist/stack');

const PAIRS = Number(process.argv[2]) || 200_000;
const DEPTH = 10;
const p = sp.NewProfile('bench.profile-add');
const values = Array.from({ length: 1024 }, (_, i) => ({ i }));

function atDepth(n, fn) {
  // Each level is a real frame: the sum keeps V8 from turning the recursion into a loop.
  return n <= 0 ? fn() : atDepth(n - 1, fn) + 0;
}

function pairs(count) {
  for (let i = 0; i < count; i++) {
    const v = values[i & 1023];
    p.Add(v, 1);
    p.Remove(v);
  }
  return 0;
}

function measure(count, body = pairs) {
  const t0 = performance.now();
  atDepth(LEVELS, () => body(count));
  return ((performance.now() - t0) * 1e6) / count;
}

function captureOnly(count) {
  let n = 0;
  for (let i = 0; i < count; i++) n += captureStack(1).length;
  return n;
}

function median3(f) {
  const runs = [f(), f(), f()].sort((a, b) => a - b);
  return { median: runs[1], runs };
}

let LEVELS = 0;

// From an immediate, so the stack is the benchmark's own frames plus processImmediate,
// not the CommonJS loader's.
setImmediate(function bench() {
  // Calibrate the recursion so pairs(), the caller of Add, sits DEPTH frames deep.
  const probe = () => captureStack(0).length / 2;
  const base = atDepth(0, probe);
  LEVELS = Math.max(0, DEPTH - base);
  const depth = atDepth(LEVELS, probe);

  measure(Math.min(PAIRS, 20_000));
  const pair = median3(() => measure(PAIRS));
  const cap = median3(() => measure(PAIRS, captureOnly));
  console.log(`Add+Remove pair, caller at stack depth ${depth}: ${pair.median.toFixed(0)} ns ` +
    `(runs ${pair.runs.map((r) => r.toFixed(0)).join('/')} ns; ${PAIRS} pairs each)`);
  console.log(`  of which captureStack alone: ${cap.median.toFixed(0)} ns`);
  console.log(pair.median <= 2000 ? '  within the 2 µs target' : '  ABOVE the 2 µs target');
});
