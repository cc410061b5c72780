/**
 * The profiles registry: Go's runtime/pprof Profile, NewProfile, Lookup and Profiles for
 * Node, plus the built-in profiles Node can honestly provide. Every Go name has a
 * camelCase alias that is the same function object, so either spelling can be compared,
 * stubbed or passed around interchangeably.
 */
import type { Writable } from 'node:stream';
import type { BuiltinProfileSource, WriteToOptions } from './registry-types';
import { SigprofError, invalidArg } from './errors';
import { captureStack, type RawStack } from './stack';
import { currentLabelRecord } from './labels';
import { assertWritable, writeAll, checkTimeoutMs } from './writer';
import { groupStacks, renderCountProfile, validDebug } from './profiles/common';
import { makeHandlesSource, SetHandlesProfile } from './profiles/handles';
import { threadcreateSource } from './profiles/threadcreate';
import { makeEventLoopSource, SetBlockProfileRate } from './profiles/eventloop';
import { mutexSource } from './profiles/mutex';
import { heapProfileSource, allocsProfileSource } from './heap';

export const ERR_PROFILE_EXISTS = 'ERR_PROFILE_EXISTS';
export const ERR_PROFILE_VALUE_EXISTS = 'ERR_PROFILE_VALUE_EXISTS';
export const ERR_PROFILE_BUILTIN = 'ERR_PROFILE_BUILTIN';

export interface ProfileWriteOptions extends WriteToOptions {
  /**
   * End the stream once the profile is written. Default false, as Go's WriteTo never
   * closes its writer: several profiles can go to one stream. process.stdout/stderr are
   * never ended.
   */
  end?: boolean;
  /**
   * Give up (reject) if the stream has not taken the data within this time. An integer
   * from 1 to 2^31-1 ms (default 30,000); anything else is a RangeError
   * (ERR_OUT_OF_RANGE).
   */
  timeoutMs?: number;
}

const INTERNAL = Symbol('sigprof.registry');
const registry = new Map<string, Profile>();

export class Profile {
  readonly #name: string;
  /** Custom profiles: value → stack and the labels current at Add. Null for built-ins, which own their data. */
  readonly #stacks: Map<unknown, { raw: RawStack; labels?: Record<string, string> }> | null;
  readonly #source: BuiltinProfileSource | null;

  /** @internal Use NewProfile or Lookup. */
  constructor(token: symbol, name: string, source: BuiltinProfileSource | null) {
    if (token !== INTERNAL) throw new TypeError('sigprof: Profile cannot be constructed directly; use NewProfile(name)');
    this.#name = name;
    this.#source = source;
    this.#stacks = source ? null : new Map();
  }

  /** The name Lookup finds this profile under. */
  Name(): string {
    return this.#name;
  }

  /** Records (stacks, resources, objects) currently in the profile. */
  Count(): number {
    return this.#source ? this.#source.count() : this.#stacks!.size;
  }

  /**
   * Records the current stack and the current profile labels (Do, SetGoroutineLabels),
   * associated with `value` (any Map key; held strongly until Remove). `skip` counts frames from Add itself: 0 starts at Add, 1 at Add's caller,
   * 2 at its caller's caller, as runtime.Callers(skip+1) in Go's Add. Throws
   * ERR_PROFILE_VALUE_EXISTS if `value` is already in the profile.
   */
  Add(value: unknown, skip: number): void {
    if (!this.#stacks) throw new SigprofError(ERR_PROFILE_BUILTIN, `sigprof: Add called on built-in profile ${this.#name}`);
    if (typeof skip !== 'number' || !Number.isInteger(skip) || skip < 0) {
      throw invalidArg(`sigprof: Add skip must be a non-negative integer (got ${typeof skip === 'number' ? skip : typeof skip})`);
    }
    if (this.#stacks.has(value)) throw new SigprofError(ERR_PROFILE_VALUE_EXISTS, `sigprof: Profile.Add of duplicate value in ${this.#name}`);
    // Add must stay captureStack's direct caller: skip is relative to this frame.
    // The labels of the current Do/SetGoroutineLabels go with the stack, as in Go.
    this.#stacks.set(value, { raw: captureStack(skip), labels: currentLabelRecord() });
  }

  /** Forgets the stack recorded for `value`; nothing happens if there is none. */
  Remove(value: unknown): void {
    if (!this.#stacks) throw new SigprofError(ERR_PROFILE_BUILTIN, `sigprof: Remove called on built-in profile ${this.#name}`);
    this.#stacks.delete(value);
  }

  /**
   * Writes a snapshot taken at the call: debug 0 → gzipped pprof protobuf; 1 → Go's legacy
   * text with symbolic frames; 2 → the most detailed text the profile has (for custom
   * profiles, the same as 1). Every failure, the stream's included, is a rejection.
   */
  async WriteTo(w: Writable, debug: number, opts: ProfileWriteOptions = {}): Promise<void> {
    assertWritable(w);
    const d = validDebug(debug);
    // Checked before the snapshot: bad input changes nothing (no GC, no write).
    checkTimeoutMs(opts.timeoutMs, 'WriteTo: timeoutMs');
    let data: Buffer | string;
    if (this.#source) {
      data = await this.#source.render(d, opts);
    } else {
      data = await renderCountProfile(this.#name, d, groupStacks([...this.#stacks!.values()]));
    }
    await writeAll(w, data, { end: opts.end ?? false, timeoutMs: opts.timeoutMs });
  }

  /** One line for listings (/debug/pprof/ index); empty for custom profiles. */
  get description(): string {
    return this.#source?.description ?? '';
  }

  /** For Go-compatible aliases (goroutine, block): the profile whose data this shares. */
  get aliasOf(): string | undefined {
    return this.#source?.aliasOf;
  }

  get builtin(): boolean {
    return this.#source !== null;
  }
}

export interface Profile {
  name: Profile['Name'];
  count: Profile['Count'];
  add: Profile['Add'];
  remove: Profile['Remove'];
  writeTo: Profile['WriteTo'];
}
Object.defineProperties(Profile.prototype, {
  name: { value: Profile.prototype.Name, writable: true, configurable: true },
  count: { value: Profile.prototype.Count, writable: true, configurable: true },
  add: { value: Profile.prototype.Add, writable: true, configurable: true },
  remove: { value: Profile.prototype.Remove, writable: true, configurable: true },
  writeTo: { value: Profile.prototype.WriteTo, writable: true, configurable: true },
});

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw invalidArg(`sigprof: profile name must be a non-empty string (got ${typeof name === 'string' ? 'an empty string' : typeof name})`);
  }
}

/**
 * Creates and registers a custom profile. Throws ERR_PROFILE_EXISTS if the name is taken
 * (built-ins included). Use an 'import/path.' style prefix and no spaces, as in Go.
 */
export function NewProfile(name: string): Profile {
  checkName(name);
  if (registry.has(name)) throw new SigprofError(ERR_PROFILE_EXISTS, `sigprof: NewProfile name already in use: ${name}`);
  const p = new Profile(INTERNAL, name, null);
  registry.set(name, p);
  return p;
}

/** The profile registered under `name`, or null. */
export function Lookup(name: string): Profile | null {
  return (typeof name === 'string' && registry.get(name)) || null;
}

/** All registered profiles, built-in and custom, sorted by name. */
export function Profiles(): Profile[] {
  return [...registry.values()].sort((a, b) => (a.Name() < b.Name() ? -1 : a.Name() > b.Name() ? 1 : 0));
}

/** @internal For sigprof modules that provide a built-in profile. */
export function registerBuiltinProfile(source: BuiltinProfileSource): Profile {
  checkName(source.name);
  if (registry.has(source.name)) throw new SigprofError(ERR_PROFILE_EXISTS, `sigprof: profile name already in use: ${source.name}`);
  const p = new Profile(INTERNAL, source.name, source);
  registry.set(source.name, p);
  return p;
}

registerBuiltinProfile(makeHandlesSource('handles'));
registerBuiltinProfile(makeHandlesSource('goroutine', 'handles'));
registerBuiltinProfile(threadcreateSource());
registerBuiltinProfile(makeEventLoopSource('eventloop'));
registerBuiltinProfile(makeEventLoopSource('block', 'eventloop'));
registerBuiltinProfile(mutexSource());

registerBuiltinProfile(heapProfileSource);
registerBuiltinProfile(allocsProfileSource);

export { SetHandlesProfile, SetBlockProfileRate };
export const newProfile = NewProfile;
export const lookup = Lookup;
export const profiles = Profiles;
export const setHandlesProfile = SetHandlesProfile;
export const setBlockProfileRate = SetBlockProfileRate;
