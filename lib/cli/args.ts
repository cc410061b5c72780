/**
 * Flag parsing shared by every sigprof command. Hand-written rather than a library so
 * the CLI has no runtime dependency beyond what the profiler already needs, and so every
 * mistake ends in the same one-line `sigprof <cmd>: ...` message and exit status.
 */

/** A mistake on the command line: printed as one line, exit status 2 (like Go's flag package). */
export class UsageError extends Error {
  readonly exitCode = 2;
}

/** Something went wrong doing the work (missing file, bad profile, network): exit status 1. */
export class CliError extends Error {
  readonly exitCode = 1;
}

export interface FlagSpec {
  /** Canonical long name without dashes, e.g. `sample-index`. */
  name: string;
  /** Other spellings accepted, with their dashes, e.g. `-n`, `--sample_index`. */
  aliases?: string[];
  /** Takes a value (`--x v` or `--x=v`) rather than being a boolean switch. */
  value?: boolean;
}

export interface Parsed {
  flags: Map<string, string | true>;
  positionals: string[];
  /** Everything after a literal `--`, untouched; undefined when there was no `--`. */
  rest?: string[];
}

export function parseArgs(cmd: string, argv: string[], specs: FlagSpec[]): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(`--${s.name}`, s);
    for (const a of s.aliases ?? []) byName.set(a, s);
  }
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  let rest: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    // A lone "-" is a positional by convention (stdin/stdout), never a flag.
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(key);
    if (!spec) throw new UsageError(`sigprof ${cmd}: unknown flag ${key} (see sigprof ${cmd} --help)`);
    if (!spec.value) {
      if (eq > 0) throw new UsageError(`sigprof ${cmd}: flag ${key} takes no value`);
      flags.set(spec.name, true);
      continue;
    }
    let value: string;
    if (eq > 0) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`sigprof ${cmd}: flag ${key} needs a value`);
      value = argv[++i];
    }
    flags.set(spec.name, value);
  }
  return { flags, positionals, rest };
}

export function flagString(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagInt(cmd: string, p: Parsed, name: string, min: number): number | undefined {
  const v = flagString(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min) {
    throw new UsageError(`sigprof ${cmd}: --${name} must be an integer >= ${min} (got ${JSON.stringify(v)})`);
  }
  return Number(v);
}

/**
 * NODE_OPTIONS splits on spaces unless a value is double-quoted (with \" and \\ escapes).
 * Shared by `sigprof run`, which adds the preload, and the preload, which removes it.
 */
export function quoteNodeOption(s: string): string {
  return /[\s"\\]/.test(s) ? `"${s.replace(/(["\\])/g, '\\$1')}"` : s;
}
