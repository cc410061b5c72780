'use strict';
// The node:http JSON service the HTTP benchmarks drive with wrk: a small, CPU-bound
// handler, the same in every benchmark so that their figures compare.
const http = require('node:http');

const payload = { items: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'], price: i * 1.5 })) };

/** `served` counts the requests answered so far. */
function createJsonService() {
  const service = { served: 0, server: null };
  service.server = http.createServer((req, res) => {
    service.served++;
    const body = JSON.stringify({ ...payload, path: req.url, t: service.served });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return service;
}

/**
 * The same response from a promise-heavy handler, as a service with a data layer looks:
 * an async middleware chain (a few awaits each), a simulated query that resolves on the
 * next turn of the loop, and the JSON body. With `labels()` true, each request runs in
 * sigprof's Do(Labels('route', ..., 'method', ...)); with `als()` an AsyncLocalStorage,
 * in its run() instead (what an app that already has a request context pays).
 */
function createPromiseService(labels = () => false, als = () => null) {
  const sp = require('..');
  const service = { served: 0, server: null };
  const query = (id) => new Promise((resolve) => setImmediate(resolve, { id, rows: payload.items }));
  async function middleware(req, depth) {
    if (depth === 0) return query(req.url);
    await Promise.resolve();
    const r = await middleware(req, depth - 1);
    return r;
  }
  async function handle(req, res) {
    service.served++;
    const data = await middleware(req, 4);
    const extra = await Promise.all([Promise.resolve(1), Promise.resolve(2)]);
    const body = JSON.stringify({ ...data, path: req.url, t: service.served, extra });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
  service.server = http.createServer((req, res) => {
    const store = als();
    if (labels()) sp.Do(sp.Labels('route', req.url, 'method', req.method), () => handle(req, res));
    else if (store) store.run({ route: req.url, method: req.method }, handle, req, res);
    else handle(req, res);
  });
  return service;
}

module.exports = { createJsonService, createPromiseService };
