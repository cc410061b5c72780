/**
 * Value formatting that matches `go tool pprof` character for character, so a table
 * from `sigprof top` can be diffed against pprof's and people read the same numbers.
 */

interface Unit { name: string; aliases: string[]; factor: number }
interface UnitFamily { units: Unit[]; fallback: Unit }

const BYTE: Unit = { name: 'B', aliases: ['b', 'byte'], factor: 1 };
const SECOND: Unit = { name: 's', aliases: ['s', 'sec', 'second'], factor: 1e9 };

const FAMILIES: UnitFamily[] = [
  {
    units: [
      BYTE,
      { name: 'kB', aliases: ['kb', 'kbyte', 'kilobyte'], factor: 2 ** 10 },
      { name: 'MB', aliases: ['mb', 'mbyte', 'megabyte'], factor: 2 ** 20 },
      { name: 'GB', aliases: ['gb', 'gbyte', 'gigabyte'], factor: 2 ** 30 },
      { name: 'TB', aliases: ['tb', 'tbyte', 'terabyte'], factor: 2 ** 40 },
      { name: 'PB', aliases: ['pb', 'pbyte', 'petabyte'], factor: 2 ** 50 },
    ],
    fallback: BYTE,
  },
  {
    units: [
      { name: 'ns', aliases: ['ns', 'nanosecond'], factor: 1 },
      { name: 'us', aliases: ['μs', 'us', 'microsecond'], factor: 1e3 },
      { name: 'ms', aliases: ['ms', 'millisecond'], factor: 1e6 },
      SECOND,
      { name: 'hrs', aliases: ['hour', 'hr'], factor: 3600e9 },
    ],
    fallback: SECOND,
  },
];

/** pprof lowercases and drops a plural "s" (but keeps "ms", "ns", "us"). */
function lookup(unit: string): { family: UnitFamily; unit: Unit } | undefined {
  let u = unit.toLowerCase();
  if (u.length > 2 && u.endsWith('s')) u = u.slice(0, -1);
  for (const family of FAMILIES) {
    const hit = family.units.find((x) => x.aliases.includes(u));
    if (hit) return { family, unit: hit };
  }
  return undefined;
}

function autoScale(family: UnitFamily, base: number): [number, string] {
  let best: Unit | undefined;
  for (const u of family.units) {
    if ((!best || u.factor >= best.factor) && base / u.factor >= 1) best = u;
  }
  if (!best) return [base / family.fallback.factor, family.fallback.name];
  return [base / best.factor, best.name];
}

const PLAIN_UNITS = new Set(['count', 'sample', 'unit', 'minimum', 'auto']);

/**
 * Converts `value` (in `from`) to `to`; `to` = "minimum"/"auto" picks the largest unit
 * that keeps the value >= 1. Units pprof does not know (counts) pass through unscaled.
 */
export function scale(value: number, from: string, to: string): [number, string] {
  if (value < 0) {
    const [v, u] = scale(-value, from, to);
    return [-v, u];
  }
  const src = lookup(from);
  if (src) {
    const base = value * src.unit.factor;
    if (to === 'minimum' || to === 'auto') return autoScale(src.family, base);
    const dst = lookup(to);
    const target = dst && dst.family === src.family ? dst.unit : src.family.fallback;
    return [base / target.factor, target.name];
  }
  return [value, PLAIN_UNITS.has(to) ? '' : to];
}

/**
 * Go's %.{digits}f: JS's toFixed rounds exact ties away from zero, Go to even, and ties
 * are common here (kB values are multiples of 1/1024), so ties are resolved by hand.
 */
export function goFixed(v: number, digits: number): string {
  const neg = v < 0;
  const a = Math.abs(v);
  const m = 10 ** digits;
  const scaled = a * m;
  const floor = Math.floor(scaled);
  const s = scaled - floor === 0.5 ? ((floor % 2 === 0 ? floor : floor + 1) / m).toFixed(digits) : a.toFixed(digits);
  return neg ? `-${s}` : s;
}

/** Go's %.2g for 0 <= |v| < 1 and beyond: two significant digits, exponent form when tiny. */
export function goG2(v: number): string {
  if (v === 0) return '0';
  let [mant, expStr] = Math.abs(v).toExponential(1).split('e');
  const exp = Number(expStr);
  const sign = v < 0 ? '-' : '';
  if (exp < -4 || exp >= 2) {
    mant = mant.replace(/\.?0+$/, '');
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : `${Math.abs(exp)}`;
    return `${sign}${mant}e${exp < 0 ? '-' : '+'}${e}`;
  }
  const s = Math.abs(v).toFixed(Math.max(0, 1 - exp)).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  return sign + s;
}

/** A value with its unit, e.g. "280ms", "4.21kB", "0". */
export function scaledLabel(value: number, from: string, to: string): string {
  const [v, u] = scale(value, from, to);
  let s = goFixed(v, 2);
  if (s.endsWith('.00')) s = s.slice(0, -3);
  if (s === '0' || s === '-0') return '0';
  return s + u;
}

/** pprof's percentage column: always 6 characters wide. */
export function percentage(value: number, total: number): string {
  let ratio = 0;
  if (total !== 0) ratio = Math.abs(value / total) * 100;
  if (ratio >= 99.95 && ratio <= 100.05) return '  100%';
  if (ratio >= 1) return `${goFixed(ratio, 2).padStart(5)}%`;
  return `${goG2(ratio).padStart(5)}%`;
}

/**
 * The unit a whole report is printed in: the one that suits the smallest non-zero
 * value, bumped up when the total is over 100× larger so small rows show as 0.01x.
 */
export function reportUnit(minValue: number, total: number, sampleUnit: string): string {
  if (minValue === 0) minValue = total;
  const [, minUnit] = scale(minValue, sampleUnit, 'minimum');
  const [, maxUnit] = scale(total, sampleUnit, 'minimum');
  let unit = minUnit;
  if (minUnit !== maxUnit && minValue * 100 < total) [, unit] = scale(100 * minValue, sampleUnit, 'minimum');
  return unit !== '' ? unit : sampleUnit;
}
