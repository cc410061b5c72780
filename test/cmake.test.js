'use strict';
// The cmake-js build (CMakeLists.txt, `npm run build:cmake`) builds the same addon as
// binding.gyp: it compiles warning-free, carries binding.gyp's flags, loads, and profiles.
// One test: the build takes about a minute here.
const { test } = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const repo = path.join(__dirname, '..');
let cmakeJs = null;
try { cmakeJs = require.resolve('cmake-js/package.json', { paths: [repo] }); } catch { /* skipped below */ }
const haveCmake = spawnSync('cmake', ['--version']).status === 0;
const skip = !cmakeJs ? 'cmake-js is not installed (it is a devDependency: npm install)'
  : !haveCmake ? 'cmake is not on PATH' : false;

test('npm run build:cmake builds an addon that loads and takes CPU, heap and custom profiles', { skip, timeout: 600_000 }, () => {
  const gyp = fs.readFileSync(path.join(repo, 'binding.gyp'), 'utf8');
  const cmake = fs.readFileSync(path.join(repo, 'CMakeLists.txt'), 'utf8');
  const flags = [.../"cflags_cc":\s*\[([^\]]*)\]/.exec(gyp)[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]);
  assert.ok(flags.includes('-Wextra'), `binding.gyp cflags_cc read: ${flags}`);
  for (const f of flags) assert.ok(cmake.includes(f), `CMakeLists.txt has binding.gyp's ${f}`);

  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-cmake-'));
  // The build script finds headers next to this node (or $npm_config_nodedir).
  const r = spawnSync(process.execPath, [path.join(repo, 'scripts', 'build-cmake.js'), '--out', out], { cwd: repo, encoding: 'utf8' });
  const log = r.stdout + r.stderr;
  assert.strictEqual(r.status, 0, log.slice(-3000));
  assert.doesNotMatch(log, /warning:/, 'warning-free with -Wall -Wextra');
  assert.doesNotMatch(log, /download/i, 'no headers downloaded');
  const addon = path.join(out, 'Release', 'sigprof.node');
  assert.ok(fs.existsSync(addon), `${addon} exists`);

  // The install-matrix smoke test, with this addon as the only candidate.
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-cmake-app-'));
  fs.mkdirSync(path.join(app, 'node_modules'));
  fs.symlinkSync(repo, path.join(app, 'node_modules', 'sigprof'));
  const s = spawnSync(process.execPath, [path.join(repo, 'scripts', 'matrix-smoke.js'), app], { encoding: 'utf8', env: { ...process.env, SIGPROF_ADDON: addon } });
  assert.strictEqual(s.status, 0, s.stderr);
  const res = JSON.parse(s.stdout);
  assert.ok(res.cpu.hotLeaf * 2 > res.cpu.samples);
  fs.rmSync(out, { recursive: true, force: true });
});
