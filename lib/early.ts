/**
 * Imported first by index.ts: installs the addon's code listener before the rest of
 * sigprof (and its dependencies) is compiled. V8 only gives line tables for code
 * compiled after the listener is in place. A failed load is reported by the first API
 * call that needs the addon.
 */
import { native } from './native';

try { native(); } catch { /* surfaced later */ }
