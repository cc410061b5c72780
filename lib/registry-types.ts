/**
 * The contract between the profiles registry (lib/registry.ts) and the modules that
 * maintain built-in profiles (heap, allocs, handles, eventloop, ...). A built-in source
 * owns its data; the registry owns naming, listing, Add/Remove refusal and WriteTo's
 * dispatch on `debug`.
 */
export interface WriteToOptions {
  /** heap/allocs: run a full GC before taking the profile (Go's ?gc=1). */
  gc?: boolean;
}

export interface BuiltinProfileSource {
  readonly name: string;
  /** One line, shown by the /debug/pprof/ index and `Profiles()` listings. */
  readonly description: string;
  /** Current number of records (stacks, objects, resources) in the profile. */
  count(): number;
  /** debug 0 → gzipped pprof proto (Buffer); debug 1 → legacy text; debug ≥ 2 → the most detailed text. */
  render(debug: number, opts?: WriteToOptions): Promise<Buffer | string>;
  /** When set, the name this profile is an alias of (e.g. `block` → `eventloop`). */
  readonly aliasOf?: string;
}
