/**
 * The `mutex` profile exists only so that tools written for Go (scrapers, dashboards,
 * `go tool pprof .../debug/pprof/mutex`) get a valid answer instead of a 404. JavaScript
 * on a Node thread runs alone and holds no locks another JS thread can wait on; Atomics.wait
 * between Workers is the only blocking primitive and V8 exposes no contention events for
 * it. So the profile is always empty, and says so in its description and in the file.
 */
import type { BuiltinProfileSource } from '../registry-types';
import { formatContentionProfile } from '../legacy-text';
import { encodeContention } from './eventloop';

const WHY = 'always empty: JavaScript in Node has no mutex contention to record (one JS thread per isolate, no shared locks)';

export function mutexSource(): BuiltinProfileSource {
  return {
    name: 'mutex',
    description: `Stack traces of holders of contended mutexes: ${WHY}`,
    count: () => 0,
    async render(debug: number): Promise<Buffer | string> {
      if (debug <= 0) return encodeContention([], [WHY]);
      // Go's mutex text has a sampling period line; 0 says sampling is off, which is true.
      return formatContentionProfile('mutex', [], ['sampling period=0']);
    },
  };
}
