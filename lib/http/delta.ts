/**
 * Delta profiles for `/debug/pprof/<name>?seconds=N` (Go >= 1.16): two debug=0 snapshots
 * taken N seconds apart, the first subtracted from the second per identical stack.
 *
 * Both snapshots are decoded back from the bytes the profile itself wrote rather than
 * taken from the sources' internals, so every profile, custom ones included, gets deltas
 * without knowing about them, and a delta reads exactly like the profile it came from.
 */
import * as zlib from 'node:zlib';
import { Profile } from 'pprof-format';
import { PprofBuilder, type Frame, type LabelSpec, type ValueTypeSpec } from '../pprof-builder';

type Num = number | bigint | undefined;

/** int64 fields come back as unsigned bigints once negative or large. */
const num = (v: Num): number => (v === undefined ? 0 : typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : v);

interface DecodedSample {
  key: string;
  frames: Frame[];
  labels: LabelSpec[];
  values: number[];
}

export interface DecodedProfile {
  sampleTypes: ValueTypeSpec[];
  periodType?: ValueTypeSpec;
  period: number;
  defaultSampleType: string;
  comments: string[];
  timeNanos: bigint;
  samples: DecodedSample[];
}

/** Gzipped or raw pprof bytes to stacks of plain frames. */
export function decodePprof(buf: Buffer): DecodedProfile {
  const raw = buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b ? zlib.gunzipSync(buf) : buf;
  const p = Profile.decode(raw);
  const strings = p.stringTable?.strings ?? [''];
  const str = (i: Num): string => strings[num(i)] ?? '';
  const fns = new Map<number, { name: string; file: string; startLine: number }>();
  for (const f of p.function ?? []) fns.set(num(f.id), { name: str(f.name), file: str(f.filename), startLine: num(f.startLine) });
  const locs = new Map<number, Frame[]>();
  for (const l of p.location ?? []) {
    // A location with several lines is inlining, innermost first: the same leaf-first
    // order a sample's frames have, so flattening keeps the stack's meaning.
    const frames = (l.line ?? []).map((ln): Frame => {
      const fn = fns.get(num(ln.functionId));
      return { name: fn?.name ?? '', file: fn?.file ?? '', startLine: fn?.startLine ?? 0, line: num(ln.line), column: num(ln.column) };
    });
    locs.set(num(l.id), frames.length > 0 ? frames : [{ name: `0x${num(l.address).toString(16)}`, file: '', line: 0 }]);
  }
  const samples = (p.sample ?? []).map((s): DecodedSample => {
    const frames = (s.locationId ?? []).flatMap((id) => locs.get(num(id)) ?? []);
    const labels = (s.label ?? []).map((l): LabelSpec => {
      const spec: LabelSpec = { key: str(l.key) };
      if (num(l.str) !== 0) spec.str = str(l.str);
      else spec.num = num(l.num);
      if (num(l.numUnit) !== 0) spec.unit = str(l.numUnit);
      return spec;
    });
    return { key: sampleKey(frames, labels), frames, labels, values: (s.value ?? []).map(num) };
  });
  return {
    sampleTypes: (p.sampleType ?? []).map((t) => ({ type: str(t.type), unit: str(t.unit) })),
    periodType: p.periodType ? { type: str(p.periodType.type), unit: str(p.periodType.unit) } : undefined,
    period: num(p.period),
    defaultSampleType: str(p.defaultSampleType),
    comments: (p.comment ?? []).map(str),
    timeNanos: BigInt(num(p.timeNanos)),
    samples,
  };
}

/**
 * What a reader sees of a sample: its frames (function, file, first line, line, column)
 * and labels. Two snapshots number their functions and locations independently, so ids
 * cannot be compared.
 */
function sampleKey(frames: Frame[], labels: LabelSpec[]): string {
  let k = frames.map((f) => `${f.name}\0${f.file}\0${f.startLine ?? 0}\0${f.line}\0${f.column ?? 0}`).join('\n');
  const ls = labels.map((l) => `${l.key}\0${l.str ?? ''}\0${l.num ?? ''}\0${l.unit ?? ''}`).sort();
  if (ls.length) k += `\n\0${ls.join('\n')}`;
  return k;
}

export class DeltaShapeError extends Error {}

/**
 * `after - before` per stack, as Go does (scale the first by -1, merge): values that went
 * down come out negative (an in-use heap that shrank, closed handles), and stacks whose
 * every value is unchanged are left out.
 */
export function subtractProfiles(before: DecodedProfile, after: DecodedProfile, durationNanos: number, comment: string): PprofBuilder {
  const shape = (p: DecodedProfile) => p.sampleTypes.map((t) => `${t.type}/${t.unit}`).join(',');
  if (shape(before) !== shape(after)) {
    throw new DeltaShapeError(`the profile's sample types changed between the two snapshots (${shape(before)} → ${shape(after)}), so they cannot be subtracted`);
  }
  const width = after.sampleTypes.length;
  const acc = new Map<string, { frames: Frame[]; labels: LabelSpec[]; values: number[] }>();
  const add = (s: DecodedSample, sign: number) => {
    let e = acc.get(s.key);
    if (!e) acc.set(s.key, (e = { frames: s.frames, labels: s.labels, values: new Array<number>(width).fill(0) }));
    for (let i = 0; i < width; i++) e.values[i] += sign * (s.values[i] ?? 0);
  };
  // The later snapshot goes first so the output keeps its sample order.
  for (const s of after.samples) add(s, 1);
  for (const s of before.samples) add(s, -1);
  const b = new PprofBuilder({
    sampleTypes: after.sampleTypes,
    periodType: after.periodType,
    period: after.period,
    defaultSampleType: after.defaultSampleType || undefined,
    timeNanos: after.timeNanos,
    durationNanos: Math.max(0, Math.round(durationNanos)),
    comments: [...after.comments, comment],
  });
  for (const e of acc.values()) {
    if (e.values.every((v) => v === 0)) continue;
    b.addSample(e.frames, e.values, e.labels.length ? e.labels : undefined);
  }
  return b;
}
