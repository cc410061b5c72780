'use strict';
// Shared test helpers: thread CPU time, profile decoding, go tool pprof.
const fs = require('node:fs');
const zlib = require('node:zlib');
const { execFileSync, spawnSync } = require('node:child_process');
const { Writable } = require('node:stream');
const { Profile } = require('pprof-format');

/** CPU time of the calling thread in ns, from the scheduler (exact, unlike tick-based stat). */
function threadCpuNs() {
  const f = fs.readFileSync('/proc/thread-self/schedstat', 'utf8');
  return Number(f.split(' ')[0]);
}

class MemoryWritable extends Writable {
  constructor() { super(); this.chunks = []; }
  _write(chunk, _enc, cb) { this.chunks.push(chunk); cb(); }
  buffer() { return Buffer.concat(this.chunks); }
}

/**
 * Profiles `work` (called repeatedly) at `hz` until it has used `cpuMs` of this thread's
 * CPU time; resolves to the decoded samples and the sum of what `work` returned (a sink).
 */
async function profileThreadCpu(sp, hz, cpuMs, work) {
  sp.SetCPUProfileRate(hz);
  const w = new MemoryWritable();
  sp.StartCPUProfile(w);
  const t0 = threadCpuNs();
  let sink = 0;
  while (threadCpuNs() - t0 < cpuMs * 1e6) sink += work();
  await sp.StopCPUProfile();
  return { samples: samples(decode(w.buffer())), sink };
}

function decode(buf) {
  return Profile.decode(zlib.gunzipSync(buf));
}

/** Frames (leaf first) of each sample as {name, file, line, startLine} (+ address for address-only native frames). */
function samples(profile) {
  const st = profile.stringTable.strings;
  const fns = new Map(profile.function.map((f) => [Number(f.id), f]));
  const locs = new Map(profile.location.map((l) => [Number(l.id), l]));
  return profile.sample.map((s) => ({
    values: s.value.map(Number),
    frames: s.locationId.map((id) => {
      const loc = locs.get(Number(id));
      const line = loc.line[0];
      // Native code sigprof could not name: an address in its object, for pprof to symbolize.
      if (!line) {
        const m = profile.mapping.find((x) => Number(x.id) === Number(loc.mappingId));
        return { name: `0x${Number(loc.address).toString(16)}`, file: m ? st[Number(m.filename)] : '', line: 0, startLine: 0, address: Number(loc.address) };
      }
      const fn = fns.get(Number(line.functionId));
      return { name: st[Number(fn.name)], file: st[Number(fn.filename)], line: Number(line.line), startLine: Number(fn.startLine) };
    }),
  }));
}

function haveGo() {
  return spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
}

function goPprof(args) {
  return execFileSync('go', ['tool', 'pprof', ...args], { encoding: 'utf8', env: { ...process.env, PPROF_TMPDIR: require('node:os').tmpdir() } });
}

module.exports = { threadCpuNs, MemoryWritable, decode, samples, profileThreadCpu, haveGo, goPprof };
