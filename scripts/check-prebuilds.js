'use strict';
/**
 * Which prebuilt binaries the package will carry. prepack prints the list (a pack for a test
 * may carry only some); prepublishOnly passes --all and fails unless every supported
 * platform x ABI is there, so a release never ships without one (build them with
 * `npm run prebuild`).
 */
const fs = require('node:fs');
const path = require('node:path');

const SUPPORTED = { 'linux-x64': [115, 127, 137, 147], 'linux-arm64': [115, 127, 137, 147] };
const root = path.join(__dirname, '..');
const missing = [];
const present = [];
for (const [dir, abis] of Object.entries(SUPPORTED)) {
  for (const abi of abis) {
    const file = path.join('prebuilds', dir, `sigprof.abi${abi}.glibc.node`);
    (fs.existsSync(path.join(root, file)) ? present : missing).push(file);
  }
}
console.error(`check-prebuilds: ${present.length} prebuilt binaries: ${present.map((f) => f.replace('prebuilds/', '')).join(', ') || 'none'}`);
if (missing.length && process.argv.includes('--all')) {
  console.error(`check-prebuilds: missing ${missing.join(', ')}; run \`npm run prebuild\``);
  process.exit(1);
}
