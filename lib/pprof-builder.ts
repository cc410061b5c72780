/**
 * Builds pprof `Profile` messages from symbolized stacks. Every profile sigprof writes
 * (CPU, heap, custom, built-in) goes through here so functions, locations and strings
 * are deduplicated the same way and the output reads the same in every pprof consumer.
 */
import { Profile, StringTable, ValueType, Function as PFunction, Location, Line, Sample, Label } from 'pprof-format';

/** One symbolized frame. `line` is the line executing in that frame; `startLine` the function's first line. */
export interface Frame {
  name: string;
  file: string;
  line: number;
  startLine?: number;
  column?: number;
}

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
  private readonly functions = new Map<string, PFunction>();
  private readonly locations = new Map<string, Location>();
  private readonly samples: CompactSample[] = [];
  // Each Function and Location is encoded (by pprof-format) when it is created, so that
  // a profile built up over minutes does not pay for all of it when it is written.
  private readonly encodedFunctions: Uint8Array[] = [];
  private readonly encodedLocations: Uint8Array[] = [];
  private readonly opts: BuilderOptions;

  constructor(opts: BuilderOptions) {
    this.opts = opts;
  }

  private fn(f: Frame): PFunction {
    const key = `${f.name}\0${f.file}\0${f.startLine ?? 0}`;
    let fn = this.functions.get(key);
    if (!fn) {
      fn = new PFunction({
        id: this.functions.size + 1,
        name: this.strings.dedup(f.name),
        systemName: this.strings.dedup(f.name),
        filename: this.strings.dedup(f.file),
        startLine: f.startLine ?? 0,
      });
      this.functions.set(key, fn);
      this.encodedFunctions.push(fn.encode());
    }
    return fn;
  }

  /**
   * A location is one (function, line) pair; pprof consumers aggregate `-lines` views by it.
   * `inlinedAbove` lets a caller express inlined frames as extra Lines of one Location.
   */
  location(frame: Frame): Location {
    const key = `${frame.name}\0${frame.file}\0${frame.startLine ?? 0}\0${frame.line}\0${frame.column ?? 0}`;
    let loc = this.locations.get(key);
    if (!loc) {
      const fn = this.fn(frame);
      loc = new Location({
        id: this.locations.size + 1,
        // Synthetic but stable addresses: tools that key on addresses (legacy text,
        // `-raw`) still see one address per location.
        address: 0x1000 + (this.locations.size + 1) * 0x10,
        line: [new Line({ functionId: fn.id, line: frame.line, column: frame.column ?? 0 })],
      });
      this.locations.set(key, loc);
      this.encodedLocations.push(loc.encode());
    }
    return loc;
  }

  private readonly locationIds = new Map<number | string, number>();

  /**
   * Location id for a caller-defined key (e.g. a numeric function id + position), making
   * the Frame only the first time: hot paths avoid building a string key per frame.
   */
  locationIdFor(key: number | string, frame: () => Frame): number {
    let id = this.locationIds.get(key);
    if (id === undefined) {
      id = Number(this.location(frame()).id);
      this.locationIds.set(key, id);
    }
    return id;
  }

  /** `frames` are leaf first, like pprof samples. */
  addSample(frames: Frame[], values: number[], labels?: LabelSpec[]): void {
    this.addSampleIds(frames.map((f) => Number(this.location(f).id)), values, labels);
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
      location: [...this.locations.values()],
      function: [...this.functions.values()],
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
