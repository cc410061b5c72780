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

module.exports = { createJsonService };
