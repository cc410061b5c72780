'use strict';
// Issue 9 item 10: a program under `sigprof run` behaves exactly as it does alone: same
// output, same exit status or terminating signal, process.exit untouched. Each case runs
// the program both ways and compares, so the expectation is the program's own behaviour.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'sigprof.js');
const FAKE_API = path.join(__dirname, 'fixtures', 'fake-api');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'sigprof-run-fidelity-'));
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

function run(argv, env = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: TMP, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function writeApp(name, src) {
  const f = path.join(TMP, name);
  fs.writeFileSync(f, src);
  return f;
}

/** Runs `app` alone and under `sigprof run`, with what happened to `marker` each time. */
function both(app, runFlags, env = {}) {
  const marker = path.join(TMP, `${path.basename(app)}.marker`);
  fs.rmSync(marker, { force: true });
  const alone = run([process.execPath, app, marker]);
  alone.marker = fs.existsSync(marker);
  fs.rmSync(marker, { force: true });
  const under = run([process.execPath, BIN, 'run', ...runFlags, '--', 'node', app, marker], env);
  under.marker = fs.existsSync(marker);
  return { alone, under };
}

function assertSame({ alone, under }) {
  assert.equal(under.status, alone.status, `exit status: alone ${alone.status}, under run ${under.status}\n${under.stderr}`);
  assert.equal(under.signal, alone.signal, `signal: alone ${alone.signal}, under run ${under.signal}\n${under.stderr}`);
  assert.equal(under.stdout, alone.stdout);
  assert.equal(under.marker, alone.marker, `code after the exit ${alone.marker ? 'ran' : 'did not run'} alone, ${under.marker ? 'ran' : 'did not run'} under run`);
}

const CATCH_EXIT = [
  'const fs = require("fs");',
  'console.log("before");',
  'try { process.exit(6); } catch {}',
  // Alone, nothing below runs: process.exit does not return.
  'fs.writeFileSync(process.argv[2], "code after process.exit ran");',
  'console.log("after");',
].join('\n');

for (const [name, env] of [['the stand-in API', { SIGPROF_API: FAKE_API }], ['the real profiler', {}]]) {
  test(`run (${name}): process.exit(6) inside try/catch exits at once with 6, and the profile is written`, () => {
    const app = writeApp(`catch-exit-${env.SIGPROF_API ? 'fake' : 'real'}.js`, CATCH_EXIT);
    const cpu = path.join(TMP, `catch-exit-${env.SIGPROF_API ? 'fake' : 'real'}.pb.gz`);
    const r = both(app, ['--cpu', cpu], env);
    assert.equal(r.alone.status, 6);
    assert.equal(r.alone.marker, false);
    assertSame(r);
    assert.match(r.under.stderr, /CPU profile written to/);
    assert.ok(zlib.gunzipSync(fs.readFileSync(cpu)).length > 0);
  });
}

test('run: process.exit is the program\'s own function, not a wrapper', () => {
  const app = writeApp('exit-identity.js', 'console.log(process.exit.toString().length, process.exit.name, process.listenerCount("uncaughtException"));\n');
  assertSame(both(app, ['--cpu', path.join(TMP, 'identity.pb.gz')], { SIGPROF_API: FAKE_API }));
});

test('run: process.exitCode, an exit inside an exit handler, and an uncaught exception keep their status', () => {
  for (const [name, src] of [
    ['exitcode.js', 'process.exitCode = 3; setTimeout(() => console.log("drained"), 5);\n'],
    ['exit-in-exit.js', 'process.on("exit", () => { process.exitCode = 9; }); process.exit(2);\n'],
    ['uncaught.js', 'setTimeout(() => { throw new Error("boom"); }, 5);\n'],
    ['uncaught-handled.js', 'process.on("uncaughtException", () => { console.log("handled"); }); setTimeout(() => { throw new Error("boom"); }, 5); setTimeout(() => console.log("went on"), 20);\n'],
  ]) {
    const app = writeApp(name, src);
    const r = both(app, ['--cpu', path.join(TMP, `${name}.pb.gz`)], { SIGPROF_API: FAKE_API });
    assertSame(r);
    assert.match(r.under.stderr, /CPU profile written to/, name);
  }
});

test('run: a program that kills itself with a signal dies of that signal under run too (stand-in API)', () => {
  // The stand-in installs no SIGPROF handler: this checks the CLI's side, which is that
  // sigprof run ends the way its child did.
  for (const sig of ['SIGPROF', 'SIGUSR2', 'SIGTERM']) {
    const app = writeApp(`self-${sig}.js`, `console.log("x"); process.kill(process.pid, "${sig}"); setTimeout(() => console.log("survived"), 200);\n`);
    const r = both(app, ['--cpu', path.join(TMP, `self-${sig}.pb.gz`)], { SIGPROF_API: FAKE_API });
    assert.equal(r.alone.signal, sig);
    assertSame(r);
  }
});

// sigprof samples on a real-time signal of its own and installs nothing on SIGPROF.
test('run: a program that sends itself SIGPROF dies of it as it does alone (real profiler)', () => {
  const app = writeApp('self-sigprof-real.js', 'let e = Date.now() + 100; while (Date.now() < e); process.kill(process.pid, "SIGPROF"); setTimeout(() => console.log("survived"), 200);\n');
  const r = both(app, ['--cpu', path.join(TMP, 'self-sigprof-real.pb.gz')]);
  assert.equal(r.alone.signal, 'SIGPROF');
  assertSame(r);
});
