/**
 * Reading pprof files into a plain, resolved form (strings looked up, ids followed) so the
 * reports below never touch protobuf ids. Accepts gzipped and raw encodings, ours and Go's.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Profile } from 'pprof-format';
import { CliError, UsageError } from './args';

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

/**
 * Largest decompressed profile the CLI reads by default (--max-size raises it). Real
 * profiles are far smaller (a big Go heap profile is tens of MB); the cap is what stops a
 * gzip bomb or /dev/zero from taking the machine's memory and minutes of CPU.
 */
export const DEFAULT_MAX_SIZE = 256 * 1024 * 1024;
/** How much of the start is checked for protobuf shape before the rest is read. */
const HEAD_BYTES = 64 * 1024;

const SIZE_RE = /^(\d+)([kKmMgG]i?[bB]?|[bB])?$/;

/** `--max-size`: bytes, or with a k/M/G suffix (powers of 1024). */
export function parseSize(cmd: string, flag: string, v: string): number {
  const m = SIZE_RE.exec(v);
  const mult = !m?.[2] || /^[bB]$/.test(m[2]) ? 1 : 1024 ** ('kmg'.indexOf(m[2][0].toLowerCase()) + 1);
  const n = m ? Number(m[1]) * mult : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`sigprof ${cmd}: --${flag} must be a size in bytes, optionally with a k, M or G suffix, e.g. 512M (got ${JSON.stringify(v)})`);
  }
  return n;
}

function humanSize(n: number): string {
  for (const [unit, f] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['k', 1024]] as const) if (n >= f && n % f === 0) return `${n / f}${unit}`;
  return `${n} bytes`;
}

function tooBig(what: string, maxSize: number, detail = ''): CliError {
  return new CliError(`${what} is larger than the ${humanSize(maxSize)} limit once decompressed${detail}; not reading further (raise it with --max-size, e.g. --max-size ${humanSize(maxSize * 4)})`);
}

// Wire types of the top-level fields of profile.proto's Profile (2: length-delimited,
// 0: varint; comment is a repeated int64, packed or not).
const PROFILE_WIRE: Record<number, readonly number[]> = {
  1: [2], 2: [2], 3: [2], 4: [2], 5: [2], 6: [2], 7: [0], 8: [0], 9: [0], 10: [0], 11: [2], 12: [0], 13: [0, 2], 14: [0], 15: [0],
};

/**
 * Walks the top-level fields of `buf` (only a profile's start if `complete` is false) and
 * throws at the first byte that cannot belong to a pprof Profile: a field number or wire
 * type Profile does not have (zeros, text and random bytes fail within their first
 * bytes), or a field declaring more bytes than `maxSize`. Cheap (one step per field,
 * nothing decoded), so it runs before reading more than the start of the input and
 * before the full decode.
 */
export function checkProfileShape(buf: Uint8Array, what: string, complete: boolean, maxSize = Infinity): void {
  const bad = (at: number, why: string): never => {
    throw new CliError(`${what} is not a pprof profile (at byte ${at}: ${why})`);
  };
  let i = 0;
  const varint = (): number | undefined => {
    let v = 0;
    let mul = 1;
    for (let k = 0; k < 10; k++) {
      if (i >= buf.length) return undefined;
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    return bad(i, 'a varint longer than 10 bytes');
  };
  while (i < buf.length) {
    const at = i;
    const tag = varint();
    if (tag === undefined) break;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    const allowed = PROFILE_WIRE[field];
    if (!allowed) bad(at, `field number ${field} is not one of Profile's 1..15`);
    if (!allowed.includes(wire)) bad(at, `field ${field} has wire type ${wire}`);
    if (wire === 0) {
      if (varint() === undefined) break;
    } else {
      const len = varint();
      if (len === undefined) break;
      if (i + len > maxSize) throw tooBig(what, maxSize, ` (field ${field} at byte ${at} declares ${len} bytes)`);
      i += len;
    }
  }
  if (complete && i !== buf.length) bad(buf.length, 'truncated: the last field runs past the end');
}

type Source = NodeJS.ReadableStream & { destroy?: (e?: Error) => void };

/**
 * Reads a profile from a stream without trusting its size: gzip is inflated as it
 * arrives, the start is checked for protobuf shape before more is read (so /dev/zero or a
 * zero-filled gzip bomb fails at its first chunk), and reading stops as soon as the
 * decompressed bytes pass `maxSize`. Resolves with the raw (uncompressed) bytes.
 */
export function readProfileStream(src: Source, what: string, maxSize: number, knownSize?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let inBytes = 0;
    let head: Buffer | null = Buffer.alloc(0);
    let gunzip: zlib.Gunzip | null = null;
    let format: 'gzip' | 'raw' | undefined;
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      src.destroy?.();
      gunzip?.destroy();
      reject(e);
    };
    const finish = () => {
      if (settled) return;
      try {
        if (head) checkProfileShape(head, what, true, maxSize);
      } catch (e) {
        return fail(e as Error);
      }
      settled = true;
      resolve(Buffer.concat(chunks, total));
    };
    /** Decompressed (or raw) bytes: counted, and the start checked once there is enough of it. */
    const take = (c: Buffer) => {
      if (settled) return;
      total += c.length;
      if (total > maxSize) return fail(tooBig(what, maxSize));
      chunks.push(c);
      if (head) {
        head = Buffer.concat([head, c]);
        if (head.length >= HEAD_BYTES) {
          try {
            checkProfileShape(head, what, false, maxSize);
          } catch (e) {
            return fail(e as Error);
          }
          head = null;
        }
      }
    };
    src.on('error', (e: NodeJS.ErrnoException) => fail(e.code === 'EISDIR' ? new CliError(`${what}: is a directory, not a pprof file`) : new CliError(`${what}: ${e.message}`)));
    src.on('data', (chunk: Buffer | string) => {
      if (settled) return;
      const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      inBytes += c.length;
      if (format === undefined) {
        format = isGzip(c) ? 'gzip' : 'raw';
        if (format === 'raw' && knownSize !== undefined && knownSize > maxSize) {
          // Refused before it is read, with the better reason if its start is not a profile.
          try {
            checkProfileShape(c.subarray(0, HEAD_BYTES), what, false, maxSize);
          } catch (e) {
            return fail(e as Error);
          }
          return fail(tooBig(what, maxSize));
        }
        if (format === 'gzip') {
          gunzip = zlib.createGunzip();
          gunzip.on('data', take);
          gunzip.on('error', (e) => fail(new CliError(`${what} is not a pprof profile: gzip data is corrupt (${e.message})`)));
          gunzip.on('end', finish);
        }
      }
      // Compressed data this large cannot inflate to less than the limit.
      if (inBytes > maxSize) return fail(tooBig(what, maxSize));
      if (gunzip) {
        // Backpressure: no reading ahead while the inflater has a backlog.
        if (!gunzip.write(c)) {
          src.pause();
          gunzip.once('drain', () => src.resume());
        }
      } else {
        take(c);
      }
    });
    src.on('end', () => {
      if (settled) return;
      if (inBytes === 0) return fail(new CliError(`${what} is empty, not a pprof profile`));
      if (gunzip) gunzip.end(); else finish();
    });
  });
}

/** Decodes and checks a pprof payload held in memory; `what` names it in error messages. */
export function decodeProfile(buf: Buffer, what: string, maxSize = DEFAULT_MAX_SIZE): LoadedProfile {
  if (buf.length === 0) throw new CliError(`${what} is empty, not a pprof profile`);
  let raw: Buffer = buf;
  if (isGzip(buf)) {
    try {
      raw = zlib.gunzipSync(buf, { maxOutputLength: maxSize });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooBig(what, maxSize);
      throw new CliError(`${what} is not a pprof profile: gzip data is corrupt (${(e as Error).message})`);
    }
  } else if (buf.length > maxSize) {
    throw tooBig(what, maxSize);
  }
  return decodeRaw(raw, what, maxSize);
}

function decodeRaw(raw: Buffer, what: string, maxSize: number): LoadedProfile {
  checkProfileShape(raw, what, true, maxSize);
  let p: Profile;
  try {
    p = Profile.decode(raw);
  } catch (e) {
    throw new CliError(`${what} is not a pprof profile (${(e as Error).message})`);
  }
  return resolve(p, what);
}

/** Reads, checks and decodes a profile file (or a device or FIFO) within `maxSize`. */
export async function loadProfileFile(file: string, maxSize = DEFAULT_MAX_SIZE): Promise<LoadedProfile> {
  let fd: number;
  let st: fs.Stats;
  try {
    fd = fs.openSync(file, 'r');
    st = fs.fstatSync(fd);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new CliError(`${file}: no such file`);
    if (err.code === 'EISDIR') throw new CliError(`${file}: is a directory, not a pprof file`);
    throw new CliError(`${file}: ${err.message}`);
  }
  if (st.isDirectory()) {
    fs.closeSync(fd);
    throw new CliError(`${file}: is a directory, not a pprof file`);
  }
  const src = fs.createReadStream('', { fd, highWaterMark: HEAD_BYTES });
  const raw = await readProfileStream(src, file, maxSize, st.isFile() ? st.size : undefined);
  return decodeRaw(raw, file, maxSize);
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
