'use strict';
/**
 * Bundles the flame graph's browser code (d3, d3-flame-graph: devDependencies) into
 * dist/flame-assets.json, which `sigprof flame` inlines into its HTML. Run by `npm run build:js`
 * (so by prepare and prepack): the published package carries one ~300 KB file instead of
 * 30-odd d3 packages that a service which only profiles would install and never run.
 * The licences of both go along and into every generated page.
 */
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
function read(pkg, file) {
  return fs.readFileSync(path.join(root, 'node_modules', pkg, file), 'utf8');
}
function version(pkg) {
  return JSON.parse(read(pkg, 'package.json')).version;
}
const assets = {
  d3: { version: version('d3'), js: read('d3', 'dist/d3.min.js'), license: read('d3', 'LICENSE') },
  flameGraph: {
    version: version('d3-flame-graph'),
    js: read('d3-flame-graph', 'dist/d3-flamegraph.umd.min.js'),
    css: read('d3-flame-graph', 'dist/d3-flamegraph.css'),
    license: read('d3-flame-graph', 'LICENSE'),
  },
};
const out = path.join(root, 'dist', 'flame-assets.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(assets));
console.error(`bundle-flame: ${path.relative(root, out)} (d3 ${assets.d3.version}, d3-flame-graph ${assets.flameGraph.version}, ${fs.statSync(out).size} bytes)`);
