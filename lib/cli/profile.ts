/**
 * Reading pprof files into a plain, resolved form (strings looked up, ids followed) so the
 * reports below never touch protobuf ids. Accepts gzipped and raw encodings, ours and Go's.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Profile } from 'pprof-format';
import { CliError } from './args';

export interface LineInfo {
  name: string;
  systemName: string;
  file: string;
  startLine: number;
  line: number;
  /** False for a Line without a Function (only an address is known). */
  hasFunction: boolean;
}

export interface LocationInfo {
  address: number;
  mappingFile: string;
  /** Innermost (inlined callee) first, as in the proto. */
  lines: LineInfo[];
}

export interface SampleInfo {
  /** Leaf first. */
  locations: LocationInfo[];
  values: number[];
}

export interface ValueTypeInfo { type: string; unit: string }

export interface LoadedProfile {
  sampleTypes: ValueTypeInfo[];
  defaultSampleType: string;
  samples: SampleInfo[];
  timeNanos: number;
  durationNanos: number;
  periodType?: ValueTypeInfo;
  period: number;
  comments: string[];
  /** File of the first mapping, which pprof reports as `File:`. */
  mainFile: string;
  buildId: string;
}

/** int64 fields arrive as unsigned bigints when large; negative values (diff profiles) must stay negative. */
const num = (v: number | bigint | undefined): number => (v === undefined ? 0 : typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : v);

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Decodes and checks a pprof payload; `what` names it in error messages. */
export function decodeProfile(buf: Buffer, what: string): LoadedProfile {
  if (buf.length === 0) throw new CliError(`${what} is empty, not a pprof profile`);
  let raw: Buffer = buf;
  if (isGzip(buf)) {
    try {
      raw = zlib.gunzipSync(buf);
    } catch (e) {
      throw new CliError(`${what} is not a pprof profile: gzip data is corrupt (${(e as Error).message})`);
    }
  }
  let p: Profile;
  try {
    p = Profile.decode(raw);
  } catch (e) {
    throw new CliError(`${what} is not a pprof profile (${(e as Error).message})`);
  }
  return resolve(p, what);
}

export function loadProfileFile(file: string): LoadedProfile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new CliError(`${file}: no such file`);
    if (err.code === 'EISDIR') throw new CliError(`${file}: is a directory, not a pprof file`);
    throw new CliError(`${file}: ${err.message}`);
  }
  return decodeProfile(buf, file);
}

/**
 * A protobuf decoder accepts many byte strings that are not profiles (any text starting
 * with a plausible tag byte, for instance), so the structure is checked the way pprof's
 * own CheckValid does before anything trusts it.
 */
function resolve(p: Profile, what: string): LoadedProfile {
  const bad = (why: string): never => {
    throw new CliError(`${what} is not a pprof profile (${why})`);
  };
  const strings = p.stringTable?.strings ?? [];
  if (strings.length === 0 || strings[0] !== '') bad('its string table does not start with ""');
  const str = (i: number | bigint | undefined, field: string): string => {
    const n = num(i);
    if (!Number.isInteger(n) || n < 0 || n >= strings.length) bad(`${field} refers to string ${n} of ${strings.length}`);
    return strings[n];
  };
  if (!p.sampleType || p.sampleType.length === 0) bad('it has no sample types');
  const sampleTypes = p.sampleType.map((t) => ({ type: str(t.type, 'sample_type'), unit: str(t.unit, 'sample_type') }));

  const mappings = new Map<number, { file: string; buildId: string }>();
  for (const m of p.mapping ?? []) {
    mappings.set(num(m.id), { file: str(m.filename, 'mapping'), buildId: str(m.buildId, 'mapping') });
  }
  const functions = new Map<number, { name: string; systemName: string; file: string; startLine: number }>();
  for (const f of p.function ?? []) {
    const id = num(f.id);
    if (id === 0) bad('a function has id 0');
    functions.set(id, {
      name: str(f.name, 'function'),
      systemName: str(f.systemName, 'function'),
      file: str(f.filename, 'function'),
      startLine: num(f.startLine),
    });
  }
  const locations = new Map<number, LocationInfo>();
  for (const l of p.location ?? []) {
    const id = num(l.id);
    if (id === 0) bad('a location has id 0');
    const mid = num(l.mappingId);
    const mapping = mid ? mappings.get(mid) : undefined;
    if (mid && !mapping) bad(`location ${id} refers to missing mapping ${mid}`);
    const lines: LineInfo[] = (l.line ?? []).map((ln) => {
      const fid = num(ln.functionId);
      const fn = fid ? functions.get(fid) : undefined;
      if (fid && !fn) bad(`location ${id} refers to missing function ${fid}`);
      return {
        name: fn?.name ?? '',
        systemName: fn?.systemName ?? '',
        file: fn?.file ?? '',
        startLine: fn?.startLine ?? 0,
        line: num(ln.line),
        hasFunction: !!fn,
      };
    });
    locations.set(id, { address: num(l.address), mappingFile: mapping?.file ?? '', lines });
  }
  const samples: SampleInfo[] = (p.sample ?? []).map((s, i) => {
    if ((s.value ?? []).length !== sampleTypes.length) {
      bad(`sample ${i} has ${(s.value ?? []).length} values for ${sampleTypes.length} sample types`);
    }
    return {
      values: s.value.map(num),
      locations: (s.locationId ?? []).map((lid) => {
        const loc = locations.get(num(lid));
        if (!loc) bad(`sample ${i} refers to missing location ${num(lid)}`);
        return loc as LocationInfo;
      }),
    };
  });
  const first = p.mapping?.[0];
  return {
    sampleTypes,
    defaultSampleType: str(p.defaultSampleType, 'default_sample_type'),
    samples,
    timeNanos: num(p.timeNanos),
    durationNanos: num(p.durationNanos),
    periodType: p.periodType ? { type: str(p.periodType.type, 'period_type'), unit: str(p.periodType.unit, 'period_type') } : undefined,
    period: num(p.period),
    comments: (p.comment ?? []).map((c) => str(c, 'comment')),
    mainFile: first ? str(first.filename, 'mapping') : '',
    buildId: first ? str(first.buildId, 'mapping') : '',
  };
}

/**
 * pprof's rule: empty → the default_sample_type, else the last type; a number is an
 * index; a name matches the type, also without an `inuse_` prefix (legacy heap names).
 */
export function sampleIndex(p: LoadedProfile, want: string | undefined): number {
  if (want === undefined || want === '') {
    if (p.defaultSampleType) {
      const i = p.sampleTypes.findIndex((t) => t.type === p.defaultSampleType);
      if (i >= 0) return i;
    }
    return p.sampleTypes.length - 1;
  }
  if (/^\d+$/.test(want)) {
    const i = Number(want);
    if (i >= p.sampleTypes.length) {
      throw new CliError(`sample index ${want} is outside the range [0..${p.sampleTypes.length - 1}]`);
    }
    return i;
  }
  const noInuse = want.startsWith('inuse_') ? want.slice('inuse_'.length) : want;
  const i = p.sampleTypes.findIndex((t) => t.type === want || t.type === noInuse);
  if (i < 0) {
    throw new CliError(`sample index ${JSON.stringify(want)} not found; this profile has: ${p.sampleTypes.map((t) => t.type).join(', ')}`);
  }
  return i;
}
