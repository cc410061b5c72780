/**
 * `sigprof fetch`: download a profile from a /debug/pprof endpoint (sigprof's or Go's)
 * and refuse to save anything that is not a pprof profile, so an HTML error page or a
 * debug=1 text dump never ends up in a file named .pb.gz.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { parseArgs, flagString, UsageError, CliError } from './args';
import { decodeProfile, parseSize, DEFAULT_MAX_SIZE } from './profile';

export const FETCH_HELP = `usage: sigprof fetch URL -o FILE [flags]

Downloads a profile over HTTP(S), checks that it is a pprof profile, and writes it
to FILE. For captures that take time (a "seconds=N" query, as in
/debug/pprof/profile?seconds=30) a progress line is shown on stderr.

Flags:
  -o, --output FILE     where to write the profile (required)
  --timeout SECONDS     give up after this long (default: the capture's seconds + 30)
  --max-size SIZE       refuse answers larger than SIZE bytes, compressed or not
                        (default 256M; k, M, G suffixes)
  -h, --help            show this help

Example:
  sigprof fetch 'http://127.0.0.1:6060/debug/pprof/profile?seconds=10' -o cpu.pb.gz
`;

const MAX_REDIRECTS = 5;

interface Response { status: number; statusText: string; contentType: string; body: Buffer }

function get(url: URL, deadline: number, maxSize: number, redirects = 0): Promise<Response> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, { headers: { 'user-agent': 'sigprof-fetch', accept: 'application/octet-stream, */*' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) return reject(new CliError(`sigprof fetch: too many redirects (last: ${res.headers.location})`));
        return get(new URL(res.headers.location, url), deadline, maxSize, redirects + 1).then(resolve, reject);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        // An endless or huge answer is cut off instead of held in memory.
        if (size > maxSize) {
          req.destroy(new CliError(`sigprof fetch: ${url.href}: the answer is larger than ${maxSize} bytes; not reading further (raise the limit with --max-size)`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status, statusText: res.statusMessage ?? '', contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    const remaining = deadline - Date.now();
    const timer = setTimeout(() => req.destroy(new CliError(`sigprof fetch: ${url.href}: no complete answer within the timeout`)), Math.max(0, remaining));
    req.on('close', () => clearTimeout(timer));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof CliError) return reject(e);
      const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ENOTFOUND' ? 'host not found' : e.message;
      reject(new CliError(`sigprof fetch: ${url.href}: ${why}`));
    });
  });
}

/** The seconds a capture takes, from `?seconds=N` (Go's and sigprof's profile/trace endpoints). */
function captureSeconds(url: URL): number | undefined {
  const s = url.searchParams.get('seconds');
  if (s === null) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

function startProgress(seconds: number): () => void {
  const tty = process.stderr.isTTY;
  const t0 = Date.now();
  const show = () => {
    const elapsed = Math.min(Math.floor((Date.now() - t0) / 1000), Math.ceil(seconds));
    const line = `sigprof fetch: capturing profile: ${elapsed}s/${seconds}s`;
    // On a terminal the line is rewritten in place; in a log, one line per second.
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  };
  show();
  const timer = setInterval(show, 1000);
  return () => {
    clearInterval(timer);
    if (tty) process.stderr.write('\n');
  };
}

export async function fetchCommand(argv: string[]): Promise<number> {
  const p = parseArgs('fetch', argv, [
    { name: 'output', aliases: ['-o'], value: true },
    { name: 'timeout', value: true },
    { name: 'max-size', value: true },
    { name: 'help', aliases: ['-h'] },
  ]);
  if (p.flags.has('help')) {
    process.stdout.write(FETCH_HELP);
    return 0;
  }
  if (p.rest) throw new UsageError('sigprof fetch: unexpected "--"');
  if (p.positionals.length !== 1) {
    throw new UsageError(p.positionals.length === 0 ? 'sigprof fetch: missing URL (see sigprof fetch --help)' : `sigprof fetch: expected one URL, got ${p.positionals.length}`);
  }
  let url: URL;
  try {
    url = new URL(p.positionals[0]);
  } catch {
    throw new UsageError(`sigprof fetch: not a URL: ${p.positionals[0]}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`sigprof fetch: only http and https URLs are supported (got ${url.protocol})`);
  const out = flagString(p, 'output');
  if (!out) throw new UsageError('sigprof fetch: missing -o FILE (see sigprof fetch --help)');
  const seconds = captureSeconds(url);
  const timeoutFlag = flagString(p, 'timeout');
  let timeout = (seconds ?? 0) + 30;
  if (timeoutFlag !== undefined) {
    timeout = Number(timeoutFlag);
    if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`sigprof fetch: --timeout must be a positive number of seconds (got ${JSON.stringify(timeoutFlag)})`);
  }
  const maxSizeFlag = flagString(p, 'max-size');
  const maxSize = maxSizeFlag === undefined ? DEFAULT_MAX_SIZE : parseSize('fetch', 'max-size', maxSizeFlag);
  const outDir = path.dirname(path.resolve(out));
  if (!fs.existsSync(outDir)) throw new UsageError(`sigprof fetch: -o ${out}: directory ${outDir} does not exist`);

  const stop = seconds ? startProgress(seconds) : () => {};
  let res: Response;
  try {
    res = await get(url, Date.now() + timeout * 1000, maxSize);
  } finally {
    stop();
  }
  if (res.status < 200 || res.status >= 300) {
    const first = res.body.toString('utf8').split('\n').find((l) => l.trim()) ?? '';
    throw new CliError(`sigprof fetch: ${url.href}: HTTP ${res.status} ${res.statusText}${first ? `: ${first.trim().slice(0, 200)}` : ''}`);
  }
  let prof;
  try {
    prof = decodeProfile(res.body, url.href, maxSize);
  } catch (e) {
    const hint = /^text\//.test(res.contentType) ? ' (the server sent text; drop debug=1 from the URL?)' : '';
    throw new CliError(`sigprof fetch: ${(e as Error).message}${hint}`);
  }
  // Written whole and renamed, so an interrupted fetch never leaves a truncated profile.
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, res.body);
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new CliError(`sigprof fetch: cannot write ${out}: ${(e as Error).message}`);
  }
  process.stderr.write(`sigprof fetch: wrote ${out} (${res.body.length} bytes; ${prof.samples.length} samples of ${prof.sampleTypes.map((t) => t.type).join('/')})\n`);
  return 0;
}
