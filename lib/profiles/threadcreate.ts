/**
 * The `threadcreate` profile: stacks that created worker_threads Workers, Node's only
 * user-created JS threads. Like Go's, it is cumulative: a Worker stays counted after it
 * exits (debug=2 shows which are still running).
 *
 * Observed by replacing worker_threads.Worker with a Proxy of the original class: the
 * construct trap records the caller's stack, everything else (instanceof in both
 * directions, prototype, statics, subclassing) goes to the original untouched. An
 * async_hooks WORKER hook would see Workers without patching but would slow every promise
 * in the process for the rare Worker construction. Code that copied the original
 * `Worker` before sigprof loaded is not observed; load sigprof first.
 */
import type * as workerThreads from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { BuiltinProfileSource } from '../registry-types';
import { captureStack, stackKey, type RawStack } from '../stack';
import { formatAge, groupStacks, renderCountProfile, symbolize, tracebackLines } from './common';

type WorkerCtor = typeof workerThreads.Worker;

const created = new Map<string, { raw: RawStack; count: number }>();
let total = 0;
const recent: Array<{ ref: WeakRef<workerThreads.Worker>; raw: RawStack; at: number; threadId: number }> = [];

function record(raw: RawStack, w: workerThreads.Worker): void {
  total++;
  const key = stackKey(raw);
  const g = created.get(key);
  if (g) g.count++; else created.set(key, { raw, count: 1 });
  // Pruned on the way in so a process that churns Workers does not grow this list.
  for (let i = recent.length - 1; i >= 0; i--) {
    const ww = recent[i].ref.deref();
    if (!ww || ww.threadId === -1) recent.splice(i, 1);
  }
  recent.push({ ref: new WeakRef(w), raw, at: performance.now(), threadId: w.threadId });
}

function install(): void {
  const mod = require('node:worker_threads') as { Worker: WorkerCtor };
  const original = mod.Worker;
  const proxy: WorkerCtor = new Proxy(original, {
    construct(target, args, newTarget) {
      let raw: RawStack | null = null;
      try { raw = captureStack(1); } catch { /* profiling must never break new Worker() */ }
      const w = Reflect.construct(target, args, newTarget === proxy ? target : newTarget) as workerThreads.Worker;
      if (raw) record(raw, w);
      return w;
    },
  });
  try {
    mod.Worker = proxy;
    // `import { Worker } from 'node:worker_threads'` reads a separate ESM binding.
    (require('node:module') as { syncBuiltinESMExports?: () => void }).syncBuiltinESMExports?.();
  } catch {
    // A frozen or redefined export: threadcreate stays empty rather than failing to load.
  }
}

install();

export function threadcreateSource(): BuiltinProfileSource {
  const name = 'threadcreate';
  return {
    name,
    description: 'Stack traces that created worker_threads Workers (cumulative)',
    count: () => total,
    async render(debug: number): Promise<Buffer | string> {
      const groups = [...created.values()];
      if (debug >= 2) {
        const now = performance.now();
        const out: string[] = [`threadcreate profile: total ${total}`, ''];
        for (const r of recent) {
          const w = r.ref.deref();
          const state = !w || w.threadId === -1 ? 'exited' : 'running';
          out.push(`worker ${r.threadId} [${state}, ${formatAge(now - r.at)}]:`);
          out.push(...tracebackLines(symbolize(r.raw)));
          out.push('');
        }
        return out.join('\n') + '\n';
      }
      return renderCountProfile(name, debug, groupStacks(groups));
    },
  };
}
