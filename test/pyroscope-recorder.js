'use strict';
// A local stand-in for Pyroscope's /ingest on 127.0.0.1 that records what clients send
// and answers as told: ok, 500, 429 (Retry-After), 401, hang (never answers), close
// (drops the connection).
const http = require('node:http');

function startRecorder(mode = 'ok', opts = {}) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => { if (!opts.light) chunks.push(c); });
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      // light: only when each request came (tests of memory must not measure the recorder).
      requests.push(opts.light ? { at: Date.now() } : { method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), queryKeys: [...url.searchParams.keys()], headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
      switch (server.mode) {
        case 'ok': res.writeHead(200); return res.end();
        case '500': res.writeHead(500, { 'Content-Type': 'text/plain' }); return res.end('internal error\n');
        case '429': res.writeHead(429, { 'Retry-After': String(opts.retryAfter ?? 1) }); return res.end('slow down');
        case '401': res.writeHead(401, { 'Content-Type': 'text/plain' }); return res.end('invalid token: tenant "acme" unknown');
        case 'hang': return; // never answers
        case 'close': return req.socket.destroy();
      }
    });
  });
  server.mode = mode;
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      requests,
      server,
      setMode(m) { server.mode = m; },
      close() {
        for (const s of sockets) s.destroy();
        return new Promise((r) => server.close(() => r()));
      },
    });
  }));
}

module.exports = { startRecorder };
