/** Errors thrown by sigprof carry a stable `code` so callers can branch on it. */
export class SigprofError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SigprofError';
    this.code = code;
  }
}

export const ERR_PROFILE_IN_USE = 'ERR_PROFILE_IN_USE';
export const ERR_INVALID_RATE = 'ERR_INVALID_RATE';
export const ERR_INVALID_WRITER = 'ERR_INVALID_WRITER';
export const ERR_WRITE_TIMEOUT = 'ERR_WRITE_TIMEOUT';
export const ERR_NATIVE_UNAVAILABLE = 'ERR_NATIVE_UNAVAILABLE';

export function invalidArg(message: string): TypeError {
  const e = new TypeError(message) as TypeError & { code: string };
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}
