'use strict';
/**
 * The machine's floor for signal-based sampling: builds bench/signal-floor.cc with g++
 * and measures what a SIGPROF with an empty handler costs the interrupted thread, for
 * signals sent by another thread (V8's sampler; sigprof above 200 Hz) and from a
 * CPU-time timer on the thread itself (sigprof at ≤ 200 Hz). Any profiler that walks
 * the stack in a signal handler pays this before its own work.
 *
 *   node bench/signal-floor.js [--reps 40] [--cases thread:1000,thread:100,timer:100]
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const lib = require('./lib');

const REPS = lib.numOpt('reps', 40);
const CASES = String(lib.opt('cases', 'thread:1000,thread:100,timer:100')).split(',');

const exe = path.join(os.tmpdir(), `sigprof-signal-floor-${process.pid}`);
execFileSync('g++', ['-O2', '-Wall', '-Wextra', '-o', exe, path.join(__dirname, 'signal-floor.cc'), '-lpthread'], { stdio: 'inherit' });
try {
  console.log(`# signal floor: CPU-bound C++ loop, blocks with and without SIGPROF (empty handler), ${REPS} reps, thread CPU time`);
  console.log('| source | rate | CPU ratio: median [95% CI] | cost per signal (µs) |');
  console.log('|---|--:|--:|--:|');
  for (const c of CASES) {
    const [source, hz] = c.split(':');
    const out = JSON.parse(execFileSync(exe, [hz, source, String(REPS)], { encoding: 'utf8' }));
    const [lo, hi] = lib.medianCI(out.ratios);
    console.log(`| ${source === 'timer' ? 'CPU-time timer on the thread' : 'tgkill from another thread'} | ${hz} Hz | ${lib.quantile(out.ratios, 0.5).toFixed(4)} [${lo.toFixed(4)}–${hi.toFixed(4)}] | ${out.perSignalUs.toFixed(1)} |`);
  }
} finally {
  fs.rmSync(exe, { force: true });
}
