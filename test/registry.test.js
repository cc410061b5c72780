'use strict';
// The profiles registry: NewProfile/Lookup/Profiles, custom profiles' Add/Remove/Count,
// skip semantics, WriteTo at debug 0 (pprof proto, also through go tool pprof) and 1
// (Go's legacy text), and that failures change nothing.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Writable } = require('node:stream');
const sp = require('..');
const { MemoryWritable, decode, samples, haveGo, goPprof } = require('./helpers');

let seq = 0;
const fresh = (what) => sp.NewProfile(`test.registry/${what}.${++seq}`);

async function text(p, debug = 1) {
  const w = new MemoryWritable();
  await p.WriteTo(w, debug);
  return w.buffer().toString('utf8');
}

async function proto(p) {
  const w = new MemoryWritable();
  await p.WriteTo(w, 0);
  return w.buffer();
}

/** Parses Go's count-profile text into { name, total, records: [{ count, addrs, frames: [{addr, name, off, where}] }] }. */
function parseCountText(s) {
  const lines = s.split('\n');
  const head = /^(\S+) profile: total (\d+)$/.exec(lines[0]);
  assert.ok(head, `header line: ${JSON.stringify(lines[0])}`);
  const records = [];
  let cur = null;
  for (const line of lines.slice(1)) {
    let m;
    if ((m = /^(\d+) @((?: 0x[0-9a-f]+)+)$/.exec(line))) {
      cur = { count: Number(m[1]), addrs: m[2].trim().split(' '), frames: [], labels: null };
      records.push(cur);
    } else if ((m = /^# labels: (.*)$/.exec(line))) {
      cur.labels = m[1];
    } else if ((m = /^#\t+(0x[0-9a-f]+)\t+(.+)\+(0x[0-9a-f]+)\t+(.*)$/.exec(line))) {
      cur.frames.push({ addr: m[1], name: m[2], off: m[3], where: m[4] });
    } else {
      assert.strictEqual(line, '', `unexpected line ${JSON.stringify(line)}`);
    }
  }
  return { name: head[1], total: Number(head[2]), records };
}

test('camelCase aliases are the same function objects', () => {
  assert.strictEqual(sp.newProfile, sp.NewProfile);
  assert.strictEqual(sp.lookup, sp.Lookup);
  assert.strictEqual(sp.profiles, sp.Profiles);
  assert.strictEqual(sp.setHandlesProfile, sp.SetHandlesProfile);
  assert.strictEqual(sp.setBlockProfileRate, sp.SetBlockProfileRate);
  const p = fresh('aliases');
  assert.strictEqual(p.name, p.Name);
  assert.strictEqual(p.count, p.Count);
  assert.strictEqual(p.add, p.Add);
  assert.strictEqual(p.remove, p.Remove);
  assert.strictEqual(p.writeTo, p.WriteTo);
  assert.strictEqual(p.name(), p.Name());
});

test('NewProfile registers; Lookup finds the same object; unknown names give null', () => {
  const p = sp.NewProfile('test.registry/lookup');
  assert.ok(p instanceof sp.Profile);
  assert.strictEqual(p.Name(), 'test.registry/lookup');
  assert.strictEqual(sp.Lookup('test.registry/lookup'), p);
  assert.strictEqual(sp.lookup('test.registry/lookup'), p);
  assert.strictEqual(sp.Lookup('test.registry/no-such-profile'), null);
  assert.strictEqual(sp.Lookup(42), null);
  assert.strictEqual(p.Count(), 0);
  assert.throws(() => new sp.Profile(Symbol('x'), 'forged', null), TypeError);
});

test('Profiles lists built-ins and custom profiles, sorted by name', () => {
  const p = fresh('listed');
  const names = sp.Profiles().map((x) => x.Name());
  assert.deepStrictEqual(names, [...names].sort());
  for (const n of ['block', 'eventloop', 'goroutine', 'handles', 'mutex', 'threadcreate', p.Name()]) {
    assert.ok(names.includes(n), `${n} in ${names}`);
  }
  assert.strictEqual(sp.Lookup('goroutine').aliasOf, 'handles');
  assert.strictEqual(sp.Lookup('block').aliasOf, 'eventloop');
  assert.strictEqual(p.aliasOf, undefined);
});

test('NewProfile refuses taken and invalid names without changing the registry', () => {
  const p = fresh('taken');
  const before = sp.Profiles();
  assert.throws(() => sp.NewProfile(p.Name()), (e) => e.code === 'ERR_PROFILE_EXISTS' && e.code === sp.ERR_PROFILE_EXISTS);
  assert.throws(() => sp.NewProfile('goroutine'), (e) => e.code === 'ERR_PROFILE_EXISTS');
  assert.throws(() => sp.NewProfile('mutex'), (e) => e.code === 'ERR_PROFILE_EXISTS');
  for (const bad of ['', undefined, null, 42, {}, Symbol('s')]) {
    assert.throws(() => sp.NewProfile(bad), TypeError);
  }
  assert.strictEqual(sp.Lookup(p.Name()), p);
  assert.deepStrictEqual(sp.Profiles(), before);
  assert.strictEqual(sp.Lookup('goroutine').aliasOf, 'handles');
});

test('Add/Remove/Count with any Map key; Remove of an absent value does nothing', () => {
  const p = fresh('count');
  const obj = {};
  const keys = [obj, 'str', 1, NaN, undefined, null, Symbol('k'), () => {}];
  for (const k of keys) p.Add(k, 1);
  assert.strictEqual(p.Count(), keys.length);
  p.Remove(obj);
  p.Remove(NaN);
  assert.strictEqual(p.Count(), keys.length - 2);
  p.Remove({});
  p.Remove('absent');
  p.Remove(obj);
  assert.strictEqual(p.Count(), keys.length - 2);
  p.Add(obj, 1);
  assert.strictEqual(p.Count(), keys.length - 1);
});

test('duplicate Add throws ERR_PROFILE_VALUE_EXISTS and keeps the first stack', async () => {
  const p = fresh('dup');
  const v = {};
  function firstAdder() { p.Add(v, 1); }
  function secondAdder() { p.Add(v, 1); }
  firstAdder();
  assert.throws(() => secondAdder(), (e) => e.code === 'ERR_PROFILE_VALUE_EXISTS' && e instanceof sp.SigprofError);
  assert.strictEqual(p.Count(), 1);
  const t = parseCountText(await text(p));
  assert.strictEqual(t.records.length, 1);
  assert.strictEqual(t.records[0].frames[0].name, 'firstAdder');
});

test('Add validates skip before recording anything', () => {
  const p = fresh('skip-arg');
  for (const bad of [-1, 1.5, '1', undefined, null, NaN]) {
    assert.throws(() => p.Add({}, bad), TypeError);
  }
  assert.strictEqual(p.Count(), 0);
});

test('Add and Remove throw on built-in profiles and leave them alone', () => {
  for (const name of ['handles', 'goroutine', 'threadcreate', 'eventloop', 'block', 'mutex']) {
    const b = sp.Lookup(name);
    const before = b.Count();
    assert.throws(() => b.Add({}, 1), (e) => e.code === 'ERR_PROFILE_BUILTIN');
    assert.throws(() => b.Remove({}), (e) => e.code === 'ERR_PROFILE_BUILTIN');
    if (name === 'mutex' || name === 'threadcreate') assert.strictEqual(b.Count(), before);
  }
});

test('skip is counted from Add: 0 = Add, 1 = its caller, 2 = the caller of that', async () => {
  const p = fresh('skip');
  function outerCaller(v, skip) { return innerAdder(v, skip); }
  function innerAdder(v, skip) { p.Add(v, skip); }
  outerCaller('s0', 0);
  outerCaller('s1', 1);
  outerCaller('s2', 2);
  const t = parseCountText(await text(p));
  const tops = t.records.map((r) => r.frames[0].name).sort();
  assert.strictEqual(tops.length, 3);
  assert.ok(/(^|\.)Add$/.test(tops[0]), `skip 0 starts at Add itself, got ${tops[0]}`);
  assert.deepStrictEqual(tops.slice(1), ['innerAdder', 'outerCaller']);
  const s1 = t.records.find((r) => r.frames[0].name === 'innerAdder');
  assert.strictEqual(s1.frames[1].name, 'outerCaller');
  assert.match(s1.frames[0].where, /registry\.test\.js:\d+$/);
});

test('a skip past the stack records a placeholder frame, not an empty sample', async () => {
  const p = fresh('deep-skip');
  p.Add('x', 10000);
  const t = parseCountText(await text(p));
  assert.strictEqual(t.records[0].frames[0].name, 'sigprof.lostProfileEvent');
});

test('debug=1: Go legacy count text, most frequent stack first, consistent synthetic addresses', async () => {
  const p = fresh('text');
  function hotSite(v) { p.Add(v, 1); }
  function coldSite(v) { p.Add(v, 1); }
  function driver() {
    for (let i = 0; i < 5; i++) hotSite({ i });
    for (let i = 0; i < 2; i++) coldSite({ i });
  }
  driver();
  const s = await text(p, 1);
  const t = parseCountText(s);
  assert.strictEqual(t.name, p.Name());
  assert.strictEqual(t.total, 7);
  assert.deepStrictEqual(t.records.map((r) => [r.count, r.frames[0].name]), [[5, 'hotSite'], [2, 'coldSite']]);
  for (const r of t.records) {
    // Each @ address is the address printed on the matching frame line.
    assert.deepStrictEqual(r.addrs, r.frames.map((f) => f.addr));
    for (const f of r.frames) assert.strictEqual(Number(f.off) > 0, true);
  }
  // Addresses identify frames across the whole output: same frame, same address; a
  // different frame (another function, or another line of the same one), another address.
  const byAddr = new Map();
  const byFrame = new Map();
  for (const r of t.records) {
    for (const f of r.frames) {
      const id = `${f.name} ${f.where}`;
      if (byAddr.has(f.addr)) assert.strictEqual(byAddr.get(f.addr), id);
      if (byFrame.has(id)) assert.strictEqual(byFrame.get(id), f.addr);
      byAddr.set(f.addr, id);
      byFrame.set(id, f.addr);
    }
  }
  // Both stacks pass through driver and everything below it, so those frames are shared.
  const shared = t.records[0].frames.slice(-2).map((f) => f.addr);
  assert.deepStrictEqual(t.records[1].frames.slice(-2).map((f) => f.addr), shared);
  // Equal input, equal output.
  assert.strictEqual(await text(p, 1), s);
  // debug 2 on a custom profile is the same text.
  assert.strictEqual(await text(p, 2), s);
});

test('debug=0: gzipped pprof with Go count-profile types, readable by pprof-format', async () => {
  const p = fresh('proto');
  function protoSite(v) { p.Add(v, 1); }
  for (let i = 0; i < 3; i++) protoSite(i);
  const prof = decode(await proto(p));
  const st = prof.stringTable.strings;
  assert.deepStrictEqual(prof.sampleType.map((t) => [st[Number(t.type)], st[Number(t.unit)]]), [[p.Name(), 'count']]);
  assert.deepStrictEqual([st[Number(prof.periodType.type)], st[Number(prof.periodType.unit)]], [p.Name(), 'count']);
  assert.strictEqual(Number(prof.period), 1);
  const ss = samples(prof);
  assert.strictEqual(ss.length, 1);
  assert.deepStrictEqual(ss[0].values, [3]);
  assert.strictEqual(ss[0].frames[0].name, 'protoSite');
  assert.match(ss[0].frames[0].file, /registry\.test\.js$/);
});

test('debug=0 through go tool pprof -top', { skip: !haveGo() && 'go not installed' }, async () => {
  const p = fresh('gotool');
  function goToolSite(v) { p.Add(v, 1); }
  for (let i = 0; i < 4; i++) goToolSite(i);
  const file = path.join(os.tmpdir(), `sigprof-registry-${process.pid}.pb.gz`);
  fs.writeFileSync(file, await proto(p));
  try {
    const out = goPprof(['-top', file]);
    assert.match(out, new RegExp(`Type: ${p.Name().replace(/[.\\/]/g, '\\$&')}`));
    assert.match(out, /Showing nodes accounting for 4, 100% of 4 total/);
    const row = out.split('\n').find((l) => /\bgoToolSite\b/.test(l));
    assert.ok(row, out);
    assert.match(row, /^\s*4\s+100%\s+100%\s+4\s+100%\s+goToolSite$/);
  } finally {
    fs.rmSync(file, { force: true });
  }
});

test('WriteTo snapshots at the call: a Remove right after does not change that output', async () => {
  const p = fresh('snapshot');
  p.Add('a', 1);
  p.Add('b', 1);
  const w = new MemoryWritable();
  const done = p.WriteTo(w, 1);
  p.Remove('a');
  p.Remove('b');
  await done;
  assert.strictEqual(parseCountText(w.buffer().toString()).total, 2);
  assert.strictEqual(p.Count(), 0);
});

test('WriteTo rejects for bad writers, bad debug values and stream errors; the profile is unchanged', async () => {
  const p = fresh('errors');
  p.Add('kept', 1);
  for (const bad of [null, undefined, 42, {}, { write() {} }]) {
    await assert.rejects(p.WriteTo(bad, 1), TypeError);
  }
  await assert.rejects(p.WriteTo(new MemoryWritable(), 'one'), TypeError);
  await assert.rejects(p.WriteTo(new MemoryWritable(), 1.5), TypeError);

  const failing = new Writable({ write(_c, _e, cb) { cb(Object.assign(new Error('disk full'), { code: 'ENOSPC' })); } });
  failing.on('error', () => {});
  await assert.rejects(p.WriteTo(failing, 1), (e) => e.code === 'ENOSPC');

  const destroyed = new MemoryWritable();
  destroyed.destroy();
  await assert.rejects(p.WriteTo(destroyed, 0));

  assert.strictEqual(p.Count(), 1);
  assert.strictEqual(parseCountText(await text(p)).total, 1);
});

test('WriteTo leaves the stream open unless asked; several profiles can share one stream', async () => {
  const a = fresh('stream-a');
  const b = fresh('stream-b');
  a.Add(1, 1);
  b.Add(1, 1);
  const w = new MemoryWritable();
  await a.WriteTo(w, 1);
  assert.strictEqual(w.writableEnded, false);
  await b.writeTo(w, 1, { end: true });
  assert.strictEqual(w.writableEnded, true);
  const s = w.buffer().toString();
  assert.ok(s.startsWith(`${a.Name()} profile: total 1\n`));
  assert.ok(s.includes(`\n${b.Name()} profile: total 1\n`));
});

test('WriteTo(process.stdout) writes and does not end stdout', () => {
  const script = `
    const sp = require(${JSON.stringify(path.join(__dirname, '..'))});
    const p = sp.NewProfile('stdout.test');
    function stdoutSite() { p.Add('v', 1); }
    stdoutSite();
    p.WriteTo(process.stdout, 1).then(() => {
      process.stdout.write('still open: ' + !process.stdout.writableEnded + '\\n');
    }, (e) => { console.error(e); process.exitCode = 1; });
  `;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  const [profileText, tail] = out.split(/(?=still open)/);
  assert.strictEqual(parseCountText(profileText).records[0].frames[0].name, 'stdoutSite');
  assert.strictEqual(tail, 'still open: true\n');
});
