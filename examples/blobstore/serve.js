'use strict';
// The Go custom-profiles article's program as a server: 1000 blobs are opened from
// asynchronous tasks, every fifth is closed, and the 800 left open are served at
// /debug/pprof/blobstore.Open, as `import _ "net/http/pprof"` does in the article.
//
//   node serve.js [PORT]      default 8888 as in the article; 0 picks a free port
//   go tool pprof -top http://127.0.0.1:8888/debug/pprof/blobstore.Open
//
// Loopback only: the endpoints are unauthenticated (see sigprof/http's listen()).
const pprofHttp = require('sigprof/http');
const { openBlobs } = require('./main');

async function main() {
  const port = process.argv[2] === undefined ? 8888 : Number(process.argv[2]);
  const kept = await openBlobs();
  // Listening only once every task ran, so the first request already sees all 800.
  const server = await pprofHttp.listen({ host: '127.0.0.1', port });
  const { address, port: actual } = server.address();
  console.log(`open blobs: ${kept.length}; serving http://${address}:${actual}/debug/pprof/`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
