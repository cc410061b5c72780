'use strict';
// Builds and runs the C++ unit test of the frame-window finder (native/frame_windows.cc)
// under ASan and UBSan: byte patterns from real V8 code, and the edges of each rule.
const test = require('node:test');
const assert = require('node:assert');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

test('frame windows: prologue and epilogue windows of V8 code, nothing claimed elsewhere', { skip: process.arch !== 'x64' && 'x86_64 patterns only' }, () => {
  const bin = path.join(os.tmpdir(), `sigprof-frame-windows-test-${process.pid}`);
  execFileSync('g++', ['-std=c++17', '-O1', '-g', '-Wall', '-Wextra', '-Werror', '-fsanitize=address,undefined',
    '-fno-sanitize-recover=undefined', '-o', bin, path.join(__dirname, 'native', 'frame_windows_test.cc'),
    path.join(__dirname, '..', 'native', 'frame_windows.cc')], { stdio: 'inherit' });
  try {
    const out = execFileSync(bin, { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    assert.match(out, /^ok frame windows/m, out);
  } finally {
    require('node:fs').rmSync(bin, { force: true });
  }
});
