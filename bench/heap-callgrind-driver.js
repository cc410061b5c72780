'use strict';
// Callgrind driver for docs/pyroscope.md "Always-on cost": node bench/heap-callgrind-driver.js off|sigprof|dd N
// usage: node driver.js MODE N   MODE = off | sigprof | dd
const path = require('path');
const http = require('http');
const mode = process.argv[2], N = Number(process.argv[3] || 2000);
const repo = path.join(__dirname, '..');
const service = require(path.join(repo, 'bench/json-service')).createJsonService();
if (mode === 'sigprof') { require(repo).runtime.MemProfileRate = 524288; }
if (mode === 'dd') { require(path.join(repo, 'node_modules/@datadog/pprof')).heap.start(524288, 64); }
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
service.server.listen(0, '127.0.0.1', async () => {
  const port = service.server.address().port;
  const get = () => new Promise((res, rej) => http.get({ port, agent, path: '/x' }, (r) => { r.resume(); r.on('end', res); }).on('error', rej));
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await get();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  console.error(mode, N, 'req', ms.toFixed(0), 'ms', (ms * 1000 / N).toFixed(1), 'us/req');
  agent.destroy(); service.server.close(); process.exit(0);
});
