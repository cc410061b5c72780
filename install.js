'use strict';
/**
 * npm's install script: use the prebuilt binary for this platform/arch/ABI/libc when one is
 * shipped and loads, else build the addon from source with node-gyp, saying why first
 * (the build takes about a minute and needs a C++ toolchain, so silence looks like a hang).
 *
 * A git checkout (a .git next to this file) always builds from source: developers test
 * what they just changed, not a prebuild left in prebuilds/. So does
 * `npm install --build-from-source` (npm_config_build_from_source), as with node-gyp-build.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = __dirname;

function target() {
  let libc = 'libc unknown';
  try {
    const h = process.report.getReport().header;
    libc = h.glibcVersionRuntime ? `glibc ${h.glibcVersionRuntime}` : 'not glibc (musl?)';
  } catch { /* keep unknown */ }
  return `${process.platform}-${process.arch}, Node ${process.versions.node} (ABI ${process.versions.modules}), ${libc}`;
}

/**
 * Does a prebuild match and load? Loaded here rather than in a child node: under qemu-user
 * (how arm64 is tested) a child cannot exec the emulated node. A binary that fails to load
 * throws (wrong ABI, missing glibc symbol); it does not crash.
 */
function prebuildLoads() {
  process.env.PREBUILDS_ONLY = '1';   // read by node-gyp-build when it is first required
  try {
    require(require('node-gyp-build').path(root));
    return true;
  } catch {
    return false;
  } finally {
    delete process.env.PREBUILDS_ONLY;
  }
}

function reason() {
  if (fs.existsSync(path.join(root, '.git'))) return 'this is a git checkout';
  if (process.env.npm_config_build_from_source === 'true') return '--build-from-source was given';
  if (prebuildLoads()) return null;
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return `no prebuilt binary ships for ${process.platform}-${process.arch}`;
  const have = fs.readdirSync(dir).filter((f) => f.endsWith('.node')).map((f) => f.split('.').slice(1, -1).join('.'));
  return `none of the prebuilt binaries for ${process.platform}-${process.arch} (${have.join(', ') || 'none'}) loads here`;
}

const why = reason();
if (why === null) process.exit(0);
console.error(`sigprof: building the native addon from source for ${target()} because ${why}; this needs a C++ toolchain (g++, make, python3) and takes about a minute.`);
// npm tells scripts where its bundled node-gyp is; otherwise use one on PATH.
const gyp = process.env.npm_config_node_gyp;
const r = gyp
  ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit' })
  : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
if (r.error) console.error(`sigprof: could not run node-gyp: ${r.error.message}`);
process.exit(r.status ?? 1);
