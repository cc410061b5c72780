'use strict';
/**
 * What source maps cost: an app of N TypeScript modules (default 1,000), each compiled by
 * esbuild to its own .js + external .map, each recording a custom-profile entry and
 * burning a little CPU. Variants, each in a fresh child, order rotated per repetition:
 *   off   SetSourceMaps(false): generated frames (the baseline)
 *   maps  sigprof reads each script's sourceMappingURL and parses the map itself
 *   node  process.setSourceMapsEnabled(true) before the app loads: Node's own maps
 *   lru4  as maps, with the cache capped at 4 MiB (every write reads most maps again)
 * Reported per child, in CPU ms of the JS thread: the first custom-profile write (every map loaded then), a second
 * write (maps cached), a heap profile write, StopCPUProfile of a profile touching every
 * module, RSS and V8 heap growth from before the first write to after the last (after a full GC),
 * and sigprof's estimate of the maps it holds.
 *
 *   node bench/sourcemaps.js                     # 1,000 modules, 5 repetitions
 *   node bench/sourcemaps.js --modules 200 --reps 3
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const lib = require('./lib');

const MODULES = lib.numOpt('modules', 1000);
const REPS = lib.numOpt('reps', 5);
const CPU_MS = lib.numOpt('cpu-ms', 2000);

function moduleSource(i) {
  // ~40 lines of TypeScript, so each map has a few hundred segments like real code.
  const lines = [`// generated module ${i}`, `interface Recorder { Add(value: unknown, skip: number): void }`, ''];
  for (let k = 0; k < 6; k++) {
    lines.push(`function step${k}_${i}(x: number): number {`, `  const y: number = (x * ${31 + k} + ${i}) % 1000003;`, `  return y > ${k * 1000} ? y - ${k} : y + ${k};`, '}', '');
  }
  lines.push(`export function handler${i}(rounds: number): number {`, '  let acc = 0;', '  for (let r = 0; r < rounds; r++) {');
  for (let k = 0; k < 6; k++) lines.push(`    acc = step${k}_${i}(acc + r);`);
  lines.push('  }', '  return acc;', '}', '');
  lines.push(`export function record${i}(p: Recorder, v: unknown): void {`, '  p.Add(v, 1);', '}', '');
  return lines.join('\n');
}

function generateApp(dir) {
  const stamp = path.join(dir, `.done-${MODULES}`);
  if (fs.existsSync(stamp)) return;
  const esbuild = require('esbuild');
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'dist'), { recursive: true });
  for (let i = 0; i < MODULES; i++) {
    const src = moduleSource(i);
    fs.writeFileSync(path.join(dir, 'src', `mod${i}.ts`), src);
    const out = esbuild.transformSync(src, { loader: 'ts', format: 'cjs', sourcemap: 'external', sourcefile: `../src/mod${i}.ts` });
    fs.writeFileSync(path.join(dir, 'dist', `mod${i}.js`), `${out.code}//# sourceMappingURL=mod${i}.js.map\n`);
    fs.writeFileSync(path.join(dir, 'dist', `mod${i}.js.map`), out.map);
  }
  fs.writeFileSync(stamp, '');
}

async function child(variant) {
  const v8 = require('node:v8');
  v8.setFlagsFromString('--expose-gc');
  const gc = require('node:vm').runInNewContext('gc');
  const sigprof = require('../dist/index.js');
  if (variant === 'node') process.setSourceMapsEnabled(true);
  sigprof.SetSourceMaps(variant === 'lru4' ? { enabled: true, cacheBytes: 4 << 20 } : variant !== 'off');
  const dir = lib.opt('app');
  const mods = [];
  for (let i = 0; i < MODULES; i++) mods.push(require(path.join(dir, 'dist', `mod${i}.js`)));
  const custom = sigprof.NewProfile('bench.sourcemaps');
  for (let i = 0; i < MODULES; i++) mods[i][`record${i}`](custom, i);
  for (let i = 0; i < MODULES; i++) mods[i][`handler${i}`](50);
  const { Writable } = require('node:stream');
  const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  // This thread's CPU time, not wall time: on a shared machine another process's time
  // slice is not the cost of writing (file reads are syscalls, counted here).
  const ms = async (fn) => { const t = lib.threadCpuNs(); await fn(); return (lib.threadCpuNs() - t) / 1e6; };
  const writeColdMs = await ms(() => custom.WriteTo(sink(), 0));
  const writeWarmMs = await ms(() => custom.WriteTo(sink(), 0));
  const heapMs = await ms(() => sigprof.WriteHeapProfile(sink()));
  sigprof.StartCPUProfile(sink());
  const t0 = lib.threadCpuNs();
  let acc = 0;
  // Every module in turn, for CPU_MS of this thread's CPU time, so the profile has frames in all of them.
  while (lib.threadCpuNs() - t0 < CPU_MS * 1e6) for (let i = 0; i < MODULES; i++) acc += mods[i][`handler${i}`](20);
  const cpuStopMs = await ms(() => sigprof.StopCPUProfile());
  gc();
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  const st = sigprof.SourceMapStats();
  return {
    metrics: { writeColdMs, writeWarmMs, heapMs, cpuStopMs, rssGrowthMB: (rss1 - rss0) / 1048576, rssMB: rss1 / 1048576, heapGrowthMB: (heap1 - heap0) / 1048576 },
    extra: { cachedMB: st.cachedBytes / 1048576, loadedMaps: st.loadedMaps, nodeMaps: st.nodeMaps, acc: acc % 10 },
  };
}

async function main() {
  const dir = path.join(os.tmpdir(), 'sigprof-bench-sourcemaps');
  generateApp(dir);
  await lib.runComparison({
    title: `source maps: ${MODULES} modules, each with its own .map (esbuild)`,
    script: __filename,
    variants: ['off', 'maps', 'node', 'lru4'],
    baseline: 'off',
    reps: REPS,
    extraArgs: ['--app', dir, '--modules', String(MODULES), '--cpu-ms', String(CPU_MS)],
    metrics: [
      { key: 'writeColdMs', label: 'first custom write', unit: 'ms' },
      { key: 'writeWarmMs', label: 'second custom write', unit: 'ms' },
      { key: 'heapMs', label: 'heap write', unit: 'ms' },
      { key: 'cpuStopMs', label: 'StopCPUProfile', unit: 'ms' },
      { key: 'rssGrowthMB', label: 'RSS growth', unit: 'MB' },
      { key: 'rssMB', label: 'RSS after', unit: 'MB' },
      { key: 'heapGrowthMB', label: 'V8 heap growth after GC', unit: 'MB' },
    ],
    extraColumns: [{ title: 'sigprof source map stats', keys: ['cachedMB', 'loadedMaps', 'nodeMaps'] }],
  });
}

if (lib.isChild()) lib.childMain(child);
else main().catch((err) => { console.error(err); process.exitCode = 1; });
