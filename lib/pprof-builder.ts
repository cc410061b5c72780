/**
 * Builds pprof `Profile` messages from symbolized stacks. Every profile sigprof writes
 * (CPU, heap, custom, built-in) goes through here so functions, locations and strings
 * are deduplicated the same way and the output reads the same in every pprof consumer.
 */
import { Profile, StringTable, ValueType, Function as PFunction, Location, Line, Sample, Label, Mapping } from 'pprof-format';

/** One symbolized frame. `line` is the line executing in that frame; `startLine` the function's first line. */
export interface Frame {
  name: string;
  file: string;
  line: number;
  startLine?: number;
  column?: number;
  /** Native code: the runtime address and the object file it is in. */
  address?: number;
  mapping?: MappingSpec;
  /** Address only, for pprof to symbolize from the mapping's file (native code we could not name). */
  noLine?: boolean;
}

/** A loaded object file (pprof Mapping): its executable segment as in /proc/self/maps. */
export interface MappingSpec { id: number; file: string; buildId: string; start: number; limit: number; offset: number }

export interface ValueTypeSpec { type: string; unit: string }

export interface BuilderOptions {
  sampleTypes: ValueTypeSpec[];
  periodType?: ValueTypeSpec;
  period?: number;
  defaultSampleType?: string;
  timeNanos?: bigint | number;
  durationNanos?: bigint | number;
  comments?: string[];
}

export type LabelSpec = { key: string; str?: string; num?: number; unit?: string };

export class PprofBuilder {
  readonly strings = new StringTable();
  // Functions and Locations are kept as plain records and encoded by hand when created
  // (a generic protobuf encoder per object costs more than everything else a new stack
  // does), so that a profile built up over minutes does not pay for them when written.
  private readonly functions = new Map<string, FunctionRecord>();
  private readonly locations = new Map<string, LocationRecord>();
  private readonly samples: CompactSample[] = [];
  private readonly encodedFunctions: Uint8Array[] = [];
  private readonly encodedLocations: Uint8Array[] = [];
  private readonly mappings = new Map<number, MappingSpec & { unnamed: boolean }>();
  private readonly opts: BuilderOptions;

  constructor(opts: BuilderOptions) {
    this.opts = opts;
  }

  private fn(f: Frame): FunctionRecord {
    const key = `${f.name}\0${f.file}\0${f.startLine ?? 0}`;
    let fn = this.functions.get(key);
    if (!fn) {
      const name = this.strings.dedup(f.name);
      fn = { id: this.functions.size + 1, name, filename: this.strings.dedup(f.file), startLine: f.startLine ?? 0 };
      this.functions.set(key, fn);
      this.encodedFunctions.push(encodeFunction(fn));
    }
    return fn;
  }

  /** A location is one (function, line) pair; pprof consumers aggregate `-lines` views by it. Returns its id. */
  location(frame: Frame): number {
    const key = `${frame.name}\0${frame.file}\0${frame.startLine ?? 0}\0${frame.line}\0${frame.column ?? 0}\0${frame.address ?? ''}`;
    let loc = this.locations.get(key);
    if (!loc) {
      const id = this.locations.size + 1;
      let mappingId = 0;
      if (frame.mapping && frame.address) {
        let m = this.mappings.get(frame.mapping.id);
        if (!m) this.mappings.set(frame.mapping.id, (m = { ...frame.mapping, unnamed: false }));
        if (frame.noLine) m.unnamed = true;
        mappingId = m.id;
      }
      const fn = frame.noLine && mappingId ? null : this.fn(frame);
      // Native frames keep their real address in their object's mapping. Elsewhere
      // synthetic but stable addresses: tools that key on addresses (legacy text,
      // `-raw`) still see one address per location.
      const address = mappingId ? frame.address! : 0x1000 + id * 0x10;
      loc = { id, mappingId, address, functionId: fn ? fn.id : 0, line: frame.line, column: frame.column ?? 0 };
      this.locations.set(key, loc);
      this.encodedLocations.push(encodeLocation(loc));
    }
    return loc.id;
  }

  private readonly locationIds = new Map<number | string, number>();

  /**
   * Location id for a caller-defined key (e.g. a numeric function id + position), making
   * the Frame only the first time: hot paths avoid building a string key per frame.
   */
  locationIdFor(key: number | string, frame: () => Frame): number {
    let id = this.locationIds.get(key);
    if (id === undefined) {
      id = this.location(frame());
      this.locationIds.set(key, id);
    }
    return id;
  }

  /** `frames` are leaf first, like pprof samples. */
  addSample(frames: Frame[], values: number[], labels?: LabelSpec[]): void {
    this.addSampleIds(frames.map((f) => this.location(f)), values, labels);
  }

  /**
   * Like addSample, with location ids from location()/locationIdFor(). `packedIds`, from
   * packIds(locationId), lets a caller that adds the same stack at every write (a CPU
   * profile's aggregates) encode the ids once, ahead of time.
   */
  addSampleIds(locationId: number[], values: number[], labels?: LabelSpec[], packedIds?: Uint8Array): void {
    const label = labels?.map((l) => new Label({
      key: this.strings.dedup(l.key),
      str: l.str !== undefined ? this.strings.dedup(l.str) : 0,
      num: l.num ?? 0,
      numUnit: l.unit !== undefined ? this.strings.dedup(l.unit) : 0,
    }));
    this.samples.push({ locationId, values, label, packedIds });
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  /** For values known only at the end (a CPU profile's duration). */
  setDuration(durationNanos: number): void {
    this.opts.durationNanos = durationNanos;
  }

  build(withSamples = true): Profile {
    const o = this.opts;
    const sampleType = o.sampleTypes.map((t) => new ValueType({ type: this.strings.dedup(t.type), unit: this.strings.dedup(t.unit) }));
    const profile = new Profile({
      sampleType,
      sample: withSamples ? this.samples.map((x) => new Sample({ locationId: x.locationId, value: x.values, label: x.label })) : [],
      location: [...this.locations.values()].map((l) => new Location({
        id: l.id,
        mappingId: l.mappingId,
        address: l.address,
        line: l.functionId ? [new Line({ functionId: l.functionId, line: l.line, column: l.column })] : [],
      })),
      mapping: [...this.mappings.values()].map((m) => new Mapping({
        id: m.id,
        memoryStart: m.start,
        memoryLimit: m.limit,
        fileOffset: m.offset,
        filename: this.strings.dedup(m.file),
        buildId: this.strings.dedup(m.buildId),
        hasFunctions: !m.unnamed,
      })),
      function: [...this.functions.values()].map((f) => new PFunction({
        id: f.id, name: f.name, systemName: f.name, filename: f.filename, startLine: f.startLine,
      })),
      stringTable: this.strings,
      timeNanos: o.timeNanos ?? 0,
      durationNanos: o.durationNanos ?? 0,
      periodType: o.periodType ? new ValueType({ type: this.strings.dedup(o.periodType.type), unit: this.strings.dedup(o.periodType.unit) }) : undefined,
      period: o.period ?? 0,
      defaultSampleType: o.defaultSampleType ? this.strings.dedup(o.defaultSampleType) : 0,
      comment: (o.comments ?? []).map((c) => this.strings.dedup(c)),
    });
    return profile;
  }

  /**
   * The serialized Profile. pprof-format encodes everything but the samples; samples are
   * appended by a specialised encoder (field 2 may appear anywhere in a protobuf
   * message), because a generic per-field encoder costs tens of ms for the thousands of
   * stacks of a long CPU profile, and StopCPUProfile should not.
   */
  encode(): Uint8Array {
    const samples = this.samples;
    const rest = this.buildHeader().encode();
    const w = new ByteWriter(rest.length + samples.length * 64 + this.encodedLocations.length * 24 + this.encodedFunctions.length * 16);
    w.bytes(rest);
    for (const loc of this.encodedLocations) {
      w.byte(0x22); // Profile.location
      w.varint(loc.length);
      w.bytes(loc);
    }
    for (const fn of this.encodedFunctions) {
      w.byte(0x2a); // Profile.function
      w.varint(fn.length);
      w.bytes(fn);
    }
    for (const x of samples) {
      if (x.label?.length || x.values.some((v) => v < 0 || !Number.isSafeInteger(v))) {
        const one = new Sample({ locationId: x.locationId, value: x.values, label: x.label }).encode();
        w.byte(0x12);
        w.varint(one.length);
        w.bytes(one);
        continue;
      }
      const locLen = x.packedIds ? x.packedIds.length : packedSize(x.locationId);
      const valLen = packedSize(x.values);
      const inner = (locLen ? 1 + varintSize(locLen) + locLen : 0) + (valLen ? 1 + varintSize(valLen) + valLen : 0);
      w.byte(0x12); // Profile.sample
      w.varint(inner);
      if (locLen) {
        w.byte(0x0a); // Sample.location_id, packed
        w.varint(locLen);
        if (x.packedIds) w.bytes(x.packedIds);
        else for (const id of x.locationId) w.varint(id);
      }
      if (valLen) {
        w.byte(0x12); // Sample.value, packed
        w.varint(valLen);
        for (const v of x.values) w.varint(v);
      }
    }
    return w.result();
  }

  /** Everything but samples, locations and functions (the string table included). */
  private buildHeader(): Profile {
    const p = this.build(false);
    p.location = [];
    p.function = [];
    return p;
  }

  /** Encoded and gzipped, as `go tool pprof` expects a .pb.gz (fastest level, as Go writes them). */
  async encodeGzip(): Promise<Buffer> {
    const zlib = await import('node:zlib');
    const raw = this.encode();
    return new Promise((resolve, reject) =>
      zlib.gzip(raw, { level: zlib.constants.Z_BEST_SPEED }, (err, out) => (err ? reject(err) : resolve(out))));
  }
}

interface FunctionRecord { id: number; name: number; filename: number; startLine: number }
interface LocationRecord { id: number; mappingId: number; address: number; functionId: number; line: number; column: number }

// proto3 field encodings with zero fields omitted, as pprof-format (and Go) write them.
// Every value here is a non-negative integer below 2^53 (negative ones would need
// 10-byte varints; none are produced). Small messages are written into one scratch array
// and copied out at their exact size: a Buffer per message costs more than encoding it.
const scratch = new Uint8Array(128);
let at = 0;

function varintAt(v: number): void {
  while (v >= 128) {
    scratch[at++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  scratch[at++] = v;
}

function field(tag: number, v: number): void {
  if (v > 0) {
    scratch[at++] = tag;
    varintAt(v);
  }
}

function encodeFunction(f: FunctionRecord): Uint8Array {
  at = 0;
  field(0x08, f.id);        // Function.id
  field(0x10, f.name);      // Function.name
  field(0x18, f.name);      // Function.system_name
  field(0x20, f.filename);  // Function.filename
  field(0x28, f.startLine); // Function.start_line
  return scratch.slice(0, at);
}

function encodeLocation(l: LocationRecord): Uint8Array {
  at = 0;
  field(0x08, l.id);        // Location.id
  field(0x10, l.mappingId); // Location.mapping_id
  field(0x18, l.address);   // Location.address
  if (!l.functionId) return scratch.slice(0, at);
  scratch[at++] = 0x22;   // Location.line: one Line, at most 3 × 11 bytes
  const lenAt = at++;
  field(0x08, l.functionId); // Line.function_id
  field(0x10, l.line);       // Line.line
  field(0x18, l.column);     // Line.column
  scratch[lenAt] = at - lenAt - 1;
  return scratch.slice(0, at);
}

interface CompactSample { locationId: number[]; values: number[]; label?: Label[]; packedIds?: Uint8Array }

/** Location ids as the payload of a packed protobuf field. */
export function packIds(ids: number[]): Uint8Array {
  const w = new ByteWriter(ids.length * 3);
  for (const id of ids) w.varint(id);
  return new Uint8Array(w.result());
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function packedSize(values: number[]): number {
  let n = 0;
  for (const v of values) n += varintSize(v);
  return n;
}

/** Append-only protobuf byte writer for non-negative integers below 2^53. */
class ByteWriter {
  private buf: Buffer;
  private pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, size));
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    this.ensure(10);
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
