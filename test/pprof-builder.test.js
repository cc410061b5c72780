'use strict';
// The builder encodes Functions and Locations by hand (speed); pprof-format must read
// back exactly what went in, including values that need multi-byte varints and zeros
// that proto3 omits.
const test = require('node:test');
const assert = require('node:assert');
const { Profile } = require('pprof-format');
const { PprofBuilder } = require('../dist/pprof-builder');

test('hand-encoded functions and locations decode to what was added', () => {
  const b = new PprofBuilder({ sampleTypes: [{ type: 'samples', unit: 'count' }], defaultSampleType: 'samples' });
  const frames = [];
  for (let i = 0; i < 300; i++) {
    frames.push({
      name: `fn${i % 150}`,
      file: i % 3 ? `/src/file${i % 7}.js` : '',
      line: [0, 1, 127, 128, 16383, 16384, 2 ** 31 - 1, 2 ** 40][i % 8],
      startLine: i % 150 === 0 ? 0 : 1000 + (i % 150),
      column: i % 5 === 0 ? 0 : i * 1000,
    });
  }
  const ids = frames.map((f) => b.location(f));
  assert.strictEqual(new Set(ids).size, new Set(frames.map((f) => JSON.stringify(f))).size);
  b.addSampleIds(ids.slice(0, 40), [7]);
  const p = Profile.decode(b.encode());
  const str = (i) => p.stringTable.strings[Number(i)];
  assert.strictEqual(p.location.length, new Set(ids).size);
  const fnById = new Map(p.function.map((f) => [Number(f.id), f]));
  const locById = new Map(p.location.map((l) => [Number(l.id), l]));
  frames.forEach((f, k) => {
    const loc = locById.get(ids[k]);
    assert.ok(loc, `location ${ids[k]}`);
    assert.strictEqual(loc.line.length, 1);
    const ln = loc.line[0];
    assert.strictEqual(Number(ln.line), f.line);
    assert.strictEqual(Number(ln.column), f.column);
    const fn = fnById.get(Number(ln.functionId));
    assert.strictEqual(str(fn.name), f.name);
    assert.strictEqual(str(fn.systemName), f.name);
    assert.strictEqual(str(fn.filename), f.file);
    assert.strictEqual(Number(fn.startLine), f.startLine);
    assert.ok(Number(loc.address) > 0);
  });
  assert.deepStrictEqual(p.sample[0].locationId.map(Number), ids.slice(0, 40));
});

test('hand encoding is byte-identical to pprof-format for the same records', () => {
  const b = new PprofBuilder({ sampleTypes: [{ type: 'samples', unit: 'count' }] });
  b.location({ name: 'f', file: 'a.js', line: 300, startLine: 299, column: 7 });
  b.location({ name: 'g', file: '', line: 2 ** 35, startLine: 0, column: 0 });
  const ours = Buffer.from(b.encode());
  const built = b.build(); // pprof-format objects made from the same records
  for (const msg of [...built.location, ...built.function]) {
    const theirs = Buffer.from(msg.encode());
    assert.ok(ours.includes(theirs), `pprof-format's encoding of ${msg.constructor.name} ${msg.id} appears verbatim`);
  }
});
