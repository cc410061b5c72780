'use strict';
/**
 * Shared benchmark harness.
 *
 * Parent side (`runComparison`): for each repetition, runs every variant once, each in a
 * fresh child process (`node <script> --variant NAME ...`), in an order rotated by one
 * each repetition, so slow drifts of a noisy machine hit every variant alike. For every
 * metric it prints, per variant, the median over repetitions of the paired ratio
 * (variant ÷ baseline of the same repetition) and the min/max of those ratios, plus the
 * median of the raw values.
 *
 * Child side (`childMain`): a benchmark script calls it when it sees `--variant`; the
 * child measures its own workload and reports one JSON line on stdout.
 *
 * Profiler helpers (`loadProfiler` / `startProfiler` / `stopProfiler`) are shared by the
 * children so every benchmark starts and stops sigprof and @datadog/pprof the same way.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Writable } = require('node:stream');

const RESULT_TAG = '@@BENCH_RESULT ';
const ROOT = path.join(__dirname, '..');

// ---------------------------------------------------------------- argument handling

/** `--name value` / `--name=value` from argv, else env BENCH_<NAME>, else the default. */
function opt(name, def) {
  const argv = process.argv;
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === `--${name}` && i + 1 < argv.length) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  if (env !== undefined && env !== '') return env;
  return def;
}

function numOpt(name, def) {
  const v = Number(opt(name, def));
  if (!Number.isFinite(v)) throw new Error(`--${name} must be a number`);
  return v;
}

// ---------------------------------------------------------------- statistics

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Linear-interpolated quantile (q in [0, 1]) of the finite values. */
function quantile(xs, q) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i), hi = Math.ceil(i);
  return s[lo] + (s[hi] - s[lo]) * (i - lo);
}

/**
 * Distribution-free confidence interval of the median (default 95%): the order
 * statistics x(k) and x(n+1-k), with k the largest rank such that a Binomial(n, 1/2)
 * falls below it with probability at most (1 - level) / 2. No normality assumed, so it
 * holds for the skewed ratios a noisy machine produces. [NaN, NaN] when n is too small.
 */
function medianCI(xs, level = 0.95) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = s.length;
  const tail = (1 - level) / 2;
  let logC = 0; // log C(n, j)
  let cdf = 0;  // P(X <= j - 1)
  let k = 0;
  for (let j = 0; j < n; j++) {
    if (j > 0) logC += Math.log((n - j + 1) / j);
    const next = cdf + Math.exp(logC - n * Math.LN2);
    if (next > tail) break;
    cdf = next;
    k = j + 1; // P(X < k) = P(X <= j) <= tail
  }
  if (k === 0) return [NaN, NaN];
  return [s[k - 1], s[n - k]];
}

function fmt(x, digits = 3) {
  if (!Number.isFinite(x)) return '—';
  return x.toFixed(digits);
}

function fmtNum(x) {
  if (!Number.isFinite(x)) return '—';
  if (Math.abs(x) >= 1000) return x.toFixed(0);
  if (Math.abs(x) >= 100) return x.toFixed(1);
  return x.toFixed(2);
}

function table(header, rows) {
  const all = [header, ...rows].map((r) => r.map(String));
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  const sep = '|' + w.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : '-'.repeat(n + 1) + ':')).join('|') + '|';
  return [line(all[0]), sep, ...all.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------- parent side

function runChild(script, variant, extraArgs, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, '--variant', variant, ...extraArgs], {
      cwd: ROOT,
      env: { ...process.env, BENCH_CHILD: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_TAG));
      if (code !== 0 || !line) {
        resolve({ error: `variant ${variant} exited code=${code} signal=${signal}\n${err.slice(-2000)}${out.slice(-1000)}` });
        return;
      }
      resolve(JSON.parse(line.slice(RESULT_TAG.length)));
    });
  });
}

/**
 * spec: {
 *   title, script (absolute path of the benchmark), variants: [name...], baseline: name,
 *   reps, extraArgs: [] (passed to each child), timeoutMs,
 *   metrics: [{ key, label, unit, better: 'lower'|'higher' }],
 * }
 * Returns { ratios: {variant: {metric: {median,min,max,n}}}, raw }.
 */
async function runComparison(spec) {
  const { title, script, variants, baseline, reps, metrics } = spec;
  const extraArgs = spec.extraArgs || [];
  const timeoutMs = spec.timeoutMs || 10 * 60_000;
  if (!variants.includes(baseline)) throw new Error('baseline must be one of the variants');
  const raw = Object.fromEntries(variants.map((v) => [v, []])); // raw[v][rep] = result | null
  const t0 = Date.now();
  console.log(`# ${title}`);
  console.log(`# node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`# ${reps} repetitions × ${variants.length} variants, each run in a fresh child process, order rotated each repetition`);
  for (let r = 0; r < reps; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length]);
    const parts = [];
    for (const v of order) {
      const res = await runChild(script, v, extraArgs, timeoutMs);
      if (res.error) {
        console.error(`! rep ${r + 1}: ${res.error}`);
        raw[v][r] = null;
        parts.push(`${v}=FAILED`);
        continue;
      }
      raw[v][r] = res;
      const m0 = metrics[0];
      parts.push(`${v}=${fmtNum(res.metrics[m0.key])}${m0.unit ?? ''}`);
    }
    console.log(`rep ${String(r + 1).padStart(2)}/${reps}  ${parts.join('  ')}`);
  }

  const ratios = {};
  for (const v of variants) {
    ratios[v] = {};
    for (const m of metrics) {
      const rs = [];
      for (let r = 0; r < reps; r++) {
        const a = raw[v][r];
        const b = raw[baseline][r];
        if (a && b && Number.isFinite(a.metrics[m.key]) && b.metrics[m.key] > 0) rs.push(a.metrics[m.key] / b.metrics[m.key]);
      }
      const values = raw[v].filter(Boolean).map((x) => x.metrics[m.key]);
      ratios[v][m.key] = { median: median(rs), min: Math.min(...rs), max: Math.max(...rs), n: rs.length, value: median(values) };
    }
  }

  console.log('');
  for (const m of metrics) {
    const dir = m.better === 'higher' ? '<1 means worse' : '>1 means slower';
    console.log(`## ${m.label}: ratio = variant ÷ ${baseline} of the same repetition (${dir})`);
    const rows = variants.map((v) => {
      const s = ratios[v][m.key];
      return [v, `${fmtNum(s.value)}${m.unit ? ' ' + m.unit : ''}`, fmt(s.median, 4), fmt(s.min, 4), fmt(s.max, 4), `${s.n}`];
    });
    console.log(table(['variant', `median ${m.label}`, 'median ratio', 'min', 'max', 'pairs'], rows));
    console.log('');
  }
  if (spec.extraColumns) {
    // Per-variant extra figures the children reported (e.g. sigprof's own stats).
    for (const col of spec.extraColumns) {
      const rows = variants.map((v) => [v, ...col.keys.map((k) => fmtNum(median(raw[v].filter(Boolean).map((x) => x.extra?.[k]))))]);
      console.log(`## ${col.title} (median over repetitions)`);
      console.log(table(['variant', ...col.keys], rows));
      console.log('');
    }
  }
  console.log(`# total ${((Date.now() - t0) / 1000).toFixed(1)} s, loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  return { ratios, raw };
}

// ---------------------------------------------------------------- child side

/**
 * Variant names understood by the profiler helpers:
 *   unprofiled            no profiler loaded at all
 *   sigprof-<hz>hz        sigprof, SetCPUProfileRate(hz), loaded before the workload code
 *   datadog-<us>us        @datadog/pprof time profiler with intervalMicros = us
 */
function parseVariant(name) {
  let m;
  if (name === 'unprofiled') return { kind: 'none' };
  // Loaded but not profiling: what the always-on code listener and heap sampler cost.
  if (name === 'sigprof-loaded') return { kind: 'sigprof-loaded' };
  if ((m = /^sigprof-(\d+)hz$/.exec(name))) return { kind: 'sigprof', hz: Number(m[1]) };
  if ((m = /^datadog-(\d+)us$/.exec(name))) return { kind: 'datadog', intervalMicros: Number(m[1]) };
  throw new Error(`unknown variant ${name}`);
}

/** Loads the profiler module for a variant (call before the workload's code is compiled). */
function loadProfiler(variant) {
  const v = parseVariant(variant);
  if (v.kind === 'sigprof' || v.kind === 'sigprof-loaded') v.mod = require(ROOT);
  else if (v.kind === 'datadog') v.mod = require('@datadog/pprof');
  return v;
}

/** A Writable that counts and discards. */
function sink() {
  const w = new Writable({ write(chunk, _enc, cb) { w.bytes += chunk.length; cb(); } });
  w.bytes = 0;
  return w;
}

function startProfiler(v) {
  if (v.kind === 'sigprof') {
    v.mod.SetCPUProfileRate(v.hz);
    v.out = sink();
    v.mod.StartCPUProfile(v.out);
  } else if (v.kind === 'datadog') {
    v.mod.time.start({ intervalMicros: v.intervalMicros });
  }
}

/** Stops the profiler; returns a few figures about the profile (not part of the timing). */
async function stopProfiler(v) {
  if (v.kind === 'sigprof') {
    await v.mod.StopCPUProfile();
    const s = v.mod.CPUProfileStats();
    return { samples: s.samples, dropped: s.dropped, deliveredHz: s.deliveredHz, handlerNsMean: s.handlerNsMean, handlerNsMax: s.handlerNsMax, profileBytes: v.out.bytes, mode: s.mode };
  }
  if (v.kind === 'datadog') {
    const prof = v.mod.time.stop();
    return { samples: prof.sample.length };
  }
  return {};
}

/**
 * CPU time of the calling thread in ns (Linux /proc/thread-self/schedstat: time on CPU,
 * ns resolution). Unlike wall time it does not grow when other processes take the
 * core away, so it is the steadier figure on a shared machine; it includes signal
 * handlers that run on this thread, not a profiler's helper threads.
 */
function threadCpuNs() {
  return Number(fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]);
}

function report(result) {
  process.stdout.write(RESULT_TAG + JSON.stringify(result) + '\n');
}

/** Runs `fn(variantName)` (which resolves to { metrics, extra }) and reports its result. */
function childMain(fn) {
  const variant = opt('variant');
  Promise.resolve()
    .then(() => fn(variant))
    .then((res) => { report(res); })
    .catch((err) => { console.error(err && err.stack || err); process.exitCode = 1; });
}

function isChild() {
  return opt('variant') !== undefined;
}

/** Sends `msg` to a forked child and resolves with its first message whose op is `reply`. */
function childRequest(child, msg, reply) {
  return new Promise((resolve) => {
    const on = (m) => { if (m.op === reply) { child.off('message', on); resolve(m); } };
    child.on('message', on);
    child.send(msg);
  });
}

module.exports = {
  childRequest,
  opt, numOpt, median, quantile, medianCI, fmt, fmtNum, table,
  runComparison, childMain, isChild, threadCpuNs,
  parseVariant, loadProfiler, startProfiler, stopProfiler, sink, ROOT,
};
