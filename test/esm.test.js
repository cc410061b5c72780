'use strict';
// ESM and CommonJS give the same API, down to the function objects.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

test('import and require expose the same names and objects', async () => {
  const cjs = require('..');
  const esm = await import(pathToFileURL(path.join(__dirname, '..', 'esm', 'index.mjs')).href);
  const named = Object.keys(esm).filter((k) => k !== 'default').sort();
  assert.deepStrictEqual(named, Object.keys(cjs).sort(), 'esm/index.mjs lists every CommonJS export');
  for (const k of named) assert.strictEqual(esm[k], cjs[k], k);
  assert.strictEqual(esm.default, cjs);
});

test('the package resolves by name both ways', async () => {
  const { execFileSync } = require('node:child_process');
  const root = path.join(__dirname, '..');
  // Resolve through package.json "exports" as a user would (self-reference by name).
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    "import { StartCPUProfile } from 'sigprof'; import { createRequire } from 'node:module'; const r = createRequire(import.meta.url); console.log(typeof StartCPUProfile, r('sigprof').StartCPUProfile === StartCPUProfile);"],
  { cwd: root, encoding: 'utf8' });
  assert.strictEqual(out.trim(), 'function true');
});
