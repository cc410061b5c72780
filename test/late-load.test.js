'use strict';
// SIGPROF_LATE_LOAD means what it says: frames of this profile lost their lines because
// their functions were compiled before sigprof's code listener was installed. Loading
// sigprof first, the way the README says (first require/import, tsc's output of that,
// node -e), must not warn; profiling a hot function that was compiled before sigprof
// loaded must warn and name it.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const ts = require('typescript');

const root = path.join(__dirname, '..');

// An app directory where `require('sigprof')` / `import 'sigprof'` resolve as they would
// after `npm i sigprof`.
const app = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-late-'));
fs.mkdirSync(path.join(app, 'node_modules'));
fs.symlinkSync(root, path.join(app, 'node_modules', 'sigprof'), 'dir');
test.after(() => fs.rmSync(app, { recursive: true, force: true }));

// The profiled part of every fixture: a hot function, sampled until the profile holds
// 40 samples. `hot` is the leaf of nearly every sample, so it is in the profile with
// certainty; the loop runs at the module's top level, so the module's own code (compiled
// before it could require sigprof) is on every stack too.
// `eager` is a parenthesized function: V8 compiles it together with the module, before
// the module's first statement runs (bundlers and UMD wrappers emit this shape).
const HOT = `
const eager = (function () { return 1; });
function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i) * (i & 7); return s; }
`;
const PROFILE = `
sigprof.StartCPUProfile(fs.createWriteStream('/dev/null'));
let sink = 0;
while (sigprof.CPUProfileStats().samples < 40) sink += hot(2e4);
`;
const REPORT = `
console.log(JSON.stringify({ late: sigprof.CPUProfileStats().lateUserFunctions, sink: sink > 0 && eager() === 1 }));
`;

const CJS = `const sigprof = require('sigprof');
const fs = require('fs');
${HOT}${PROFILE}sigprof.StopCPUProfile().then(() => {${REPORT}});
`;

const ESM = `import * as sigprof from 'sigprof';
import * as fs from 'node:fs';
${HOT}${PROFILE}await sigprof.StopCPUProfile();
${REPORT}`;

// What a TypeScript user writes; tsc turns the CommonJS form into __importStar helpers
// that run (and are compiled) before the require.
const TS = `import * as sigprof from 'sigprof';
import * as fs from 'fs';
${HOT}${PROFILE}
async function main(): Promise<void> {
  await sigprof.StopCPUProfile();
  ${REPORT}
}
main();
`;

function tsc(module) {
  return ts.transpileModule(TS.replace(/let sink = 0;/, 'let sink: number = 0;').replace('function hot(n)', 'function hot(n: number)'), {
    compilerOptions: { module, target: ts.ScriptTarget.ES2022, esModuleInterop: true, strict: true },
  }).outputText;
}

function run(args, file, source) {
  if (file) fs.writeFileSync(path.join(app, file), source);
  const r = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8', timeout: 60_000 });
  assert.strictEqual(r.status, 0, `exit ${r.status}\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop();
  return { stderr: r.stderr, stats: JSON.parse(last) };
}

function assertNoWarning({ stderr, stats }) {
  assert.doesNotMatch(stderr, /SIGPROF_LATE_LOAD/, stderr);
  assert.strictEqual(stats.late, 0, 'lateUserFunctions');
}

test('CommonJS, require("sigprof") on the first line: no late-load warning', () => {
  assertNoWarning(run(['app.js'], 'app.js', CJS));
});

test('ESM, import of sigprof first: no late-load warning', () => {
  assertNoWarning(run(['app.mjs'], 'app.mjs', ESM));
});

test('tsc CommonJS output (its __importStar helpers run before the require): no late-load warning', () => {
  const js = tsc(ts.ModuleKind.CommonJS);
  assert.match(js, /__importStar/, 'the fixture exercises the helpers');
  assertNoWarning(run(['tsc-cjs.js'], 'tsc-cjs.js', js));
});

test('tsc ESM output: no late-load warning', () => {
  assertNoWarning(run(['tsc-esm.mjs'], 'tsc-esm.mjs', tsc(ts.ModuleKind.ES2022)));
});

test('node -e with require("sigprof") first: no late-load warning', () => {
  assertNoWarning(run(['-e', CJS]));
});

test('node --require sigprof/register: no late-load warning', () => {
  assertNoWarning(run(['--require', 'sigprof/register', 'plain.js'], 'plain.js',
    CJS.replace("const sigprof = require('sigprof');", "const sigprof = require('sigprof'); // already loaded")));
});

test('a hot function compiled before sigprof loaded: the warning names it', () => {
  // `hot` runs (and is compiled, likely optimized) before sigprof is required.
  const late = `const fs = require('fs');
${HOT}
let warm = 0;
for (let i = 0; i < 300; i++) warm += hot(2e4);
const sigprof = require('sigprof');
${PROFILE}sigprof.StopCPUProfile().then(() => {${REPORT}});
`;
  const { stderr, stats } = run(['late.js'], 'late.js', late);
  assert.match(stderr, /SIGPROF_LATE_LOAD/, stderr);
  assert.match(stderr, /\bhot\b/, 'the warning names the function');
  assert.ok(stats.late >= 1, `lateUserFunctions ${stats.late}`);
  // Only what lost its lines: the module's own top-level code is not named.
  assert.doesNotMatch(stderr.split('\n').find((l) => /SIGPROF_LATE_LOAD/.test(l)) ?? '', /\(anonymous\)/);
});
