'use strict';
// Builds and runs the C++ unit test of the SPSC ring buffer (native/ring_buffer.h).
const test = require('node:test');
const assert = require('node:assert');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

test('SPSC ring: FIFO, refuses when full, lossless under a concurrent producer and consumer', () => {
  const bin = path.join(os.tmpdir(), `sigprof-ring-test-${process.pid}`);
  execFileSync('g++', ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-fsanitize=thread',
    '-o', bin, path.join(__dirname, 'native', 'ring_test.cc')], { stdio: 'inherit' });
  const out = execFileSync(bin, { encoding: 'utf8' });
  assert.match(out, /^ok 2000000 items/);
});
