'use strict';
// Builds and runs the C++ unit test of native symbol lookup (native/native_symbols.cc)
// against a naive reading of the same ELF tables, under ASan and UBSan.
const test = require('node:test');
const assert = require('node:assert');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

test('native symbols: the bucket index names what a scan of the whole table names; Mappings agree with /proc/self/maps', () => {
  const bin = path.join(os.tmpdir(), `sigprof-symbols-test-${process.pid}`);
  execFileSync('g++', ['-std=c++17', '-O1', '-g', '-Wall', '-Wextra', '-Werror', '-fsanitize=address,undefined',
    '-fno-sanitize-recover=undefined', '-o', bin, path.join(__dirname, 'native', 'symbols_test.cc'),
    path.join(__dirname, '..', 'native', 'native_symbols.cc'), '-ldl'], { stdio: 'inherit' });
  try {
    const out = execFileSync(bin, { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    // Thousands of addresses in at least three objects (this binary, libc, libm, libstdc++).
    const m = /^ok (\d+) addresses in (\d+) objects, (\d+) named/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) >= 5000 && Number(m[2]) >= 3 && Number(m[3]) >= 1000, out);
  } finally {
    require('node:fs').rmSync(bin, { force: true });
  }
});
