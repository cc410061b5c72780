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
  private readonly samples: Sample[] = [];
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
    }
    return loc;
  }

  /** `frames` are leaf first, like pprof samples. */
  addSample(frames: Frame[], values: number[], labels?: LabelSpec[]): void {
    const locationId = frames.map((f) => this.location(f).id);
    const label = labels?.map((l) => new Label({
      key: this.strings.dedup(l.key),
      str: l.str !== undefined ? this.strings.dedup(l.str) : 0,
      num: l.num ?? 0,
      numUnit: l.unit !== undefined ? this.strings.dedup(l.unit) : 0,
    }));
    this.samples.push(new Sample({ locationId, value: values, label }));
  }

  build(): Profile {
    const o = this.opts;
    const sampleType = o.sampleTypes.map((t) => new ValueType({ type: this.strings.dedup(t.type), unit: this.strings.dedup(t.unit) }));
    const profile = new Profile({
      sampleType,
      sample: this.samples,
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

  /** Encoded and gzipped, as `go tool pprof` expects a .pb.gz. */
  async encodeGzip(): Promise<Buffer> {
    const { gzip } = await import('node:zlib');
    const raw = await this.build().encodeAsync();
    return new Promise((resolve, reject) => gzip(raw, (err, out) => (err ? reject(err) : resolve(out))));
  }
}

export function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
