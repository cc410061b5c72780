'use strict';
// How the package installs and finds its binary: node-gyp-build's prebuild matching, the
// install script's choice, the error when nothing loads, and what the tarball carries.
const { test } = require('node:test');
const assert = require('node:assert');
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const repo = path.join(__dirname, '..');
const built = path.join(repo, 'build', 'Release', 'sigprof.node');
const abi = process.versions.modules;
const pkgJson = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));

/** A copy of the installed package's runtime files, without build/ or prebuilds/. */
function layPackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-pkg-'));
  for (const f of ['dist', 'package.json', 'install.js']) fs.cpSync(path.join(repo, f), path.join(dir, f), { recursive: true });
  // Its dependencies (node-gyp-build, pprof-format) as an app's node_modules would hold them.
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function addPrebuild(dir) {
  const to = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`, `sigprof.abi${abi}.glibc.node`);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(built, to);
  return to;
}

const PROFILE = `
const sigprof = require(process.argv[1]);
const { Writable } = require('node:stream');
const chunks = [];
const w = new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } });
try {
  sigprof.StartCPUProfile(w);
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message }));
  process.exit(0);
}
sigprof.StopCPUProfile().then(() => console.log(JSON.stringify({ bytes: Buffer.concat(chunks).length })));
`;

function runProfile(dir, env = {}) {
  const r = spawnSync(process.execPath, ['-e', PROFILE, dir], { encoding: 'utf8', env: { ...process.env, SIGPROF_ADDON: '', ...env } });
  assert.strictEqual(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

test('with no binary for this Node, the error names platform, arch, ABI and libc and says `npm rebuild sigprof`', () => {
  const dir = layPackage();
  const out = runProfile(dir);
  assert.strictEqual(out.code, 'ERR_NATIVE_UNAVAILABLE');
  assert.match(out.message, new RegExp(`platform ${process.platform}, arch ${process.arch}, Node ${process.versions.node.replace(/\./g, '\\.')} \\(ABI ${abi}\\), glibc \\d`));
  assert.match(out.message, /`npm rebuild sigprof`/);
  assert.match(out.message, /C\+\+ toolchain/);
});

test('a prebuild tagged as prebuildify names it (sigprof.abiN.glibc.node) is found and profiles', () => {
  const dir = layPackage();
  addPrebuild(dir);
  const out = runProfile(dir);
  assert.ok(out.bytes > 0, JSON.stringify(out));
});

test('a prebuild for another ABI is not loaded', () => {
  const dir = layPackage();
  const other = addPrebuild(dir).replace(`abi${abi}`, 'abi1');
  fs.renameSync(path.join(path.dirname(other), `sigprof.abi${abi}.glibc.node`), other);
  const out = runProfile(dir);
  assert.strictEqual(out.code, 'ERR_NATIVE_UNAVAILABLE');
});

test('SIGPROF_ADDON is the only candidate when set: a bad path fails, naming it, even with a good build present', () => {
  const dir = layPackage();
  addPrebuild(dir);
  const out = runProfile(dir, { SIGPROF_ADDON: path.join(dir, 'nope.node') });
  assert.strictEqual(out.code, 'ERR_NATIVE_UNAVAILABLE');
  assert.ok(out.message.includes(path.join(dir, 'nope.node')), out.message);
  assert.ok(runProfile(dir, { SIGPROF_ADDON: built }).bytes > 0);
});

test('install script: a matching prebuild means no build and no output', () => {
  const dir = layPackage();
  addPrebuild(dir);
  // node-gyp pointing nowhere: if the script tried to build, it would fail.
  const r = spawnSync(process.execPath, ['install.js'], { cwd: dir, encoding: 'utf8', env: { ...process.env, npm_config_node_gyp: '/nonexistent/node-gyp.js' } });
  assert.strictEqual(r.status, 0, r.stderr);
  assert.strictEqual(r.stdout + r.stderr, '');
});

test('install script: without a matching prebuild it says why in one line before building', () => {
  const dir = layPackage();
  const r = spawnSync(process.execPath, ['install.js'], { cwd: dir, encoding: 'utf8', env: { ...process.env, npm_config_node_gyp: '/nonexistent/node-gyp.js' } });
  assert.notStrictEqual(r.status, 0, 'the (impossible) build must fail');
  const first = r.stderr.split('\n')[0];
  assert.match(first, new RegExp(`^sigprof: building the native addon from source for ${process.platform}-${process.arch}, Node ${process.versions.node.replace(/\./g, '\\.')} \\(ABI ${abi}\\), glibc [\\d.]+ because no prebuilt binary ships for ${process.platform}-${process.arch}; this needs a C\\+\\+ toolchain`));
});

test('package.json: what a registry and an install need; only runtime dependencies', () => {
  assert.ok(pkgJson.repository && pkgJson.repository.url);
  assert.ok(Array.isArray(pkgJson.keywords) && pkgJson.keywords.length > 0);
  assert.strictEqual(pkgJson.engines.node, '>=20');
  assert.deepStrictEqual(pkgJson.os, ['linux']);
  assert.deepStrictEqual(pkgJson.cpu, ['x64', 'arm64']);
  assert.deepStrictEqual(Object.keys(pkgJson.dependencies).sort(), ['node-gyp-build', 'pprof-format']);
  assert.strictEqual(pkgJson.binary, undefined, 'binary.napi_versions would switch cmake-js to Node-API headers');
});

test('npm pack lists what runs and the prebuilds, nothing else', () => {
  // --ignore-scripts: prepack's build already ran as pretest.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repo, encoding: 'utf8' });
  const files = JSON.parse(out)[0].files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'install.js', 'binding.gyp', 'register.js', 'bin/sigprof.js', 'dist/index.js', 'dist/flame-assets.json', 'esm/index.mjs', 'native/addon.cc']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  const stray = files.filter((f) => /^(test|bench|scripts|examples|\.ci|docs|build)\//.test(f) || /fixture/.test(f) || f === 'CMakeLists.txt');
  assert.deepStrictEqual(stray, []);
  const prebuilds = fs.existsSync(path.join(repo, 'prebuilds'))
    ? fs.readdirSync(path.join(repo, 'prebuilds'), { recursive: true }).filter((f) => f.endsWith('.node')).map((f) => `prebuilds/${f}`)
    : [];
  assert.deepStrictEqual(files.filter((f) => f.startsWith('prebuilds/')).sort(), prebuilds.sort());
  assert.deepStrictEqual(files.filter((f) => /\.node$/.test(f) && !f.startsWith('prebuilds/')), []);
});
