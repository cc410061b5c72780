'use strict';
// Opens 1000 blobs from asynchronous tasks and closes every fifth, leaving 800 open, then
// prints the blobstore.Open profile. Usage:
//   node main.js            legacy text (debug=1) to stdout
//   node main.js out.pb.gz  also the pprof file, for `go tool pprof -top out.pb.gz`
const fs = require('node:fs');
const pprof = require('sigprof');
const blobstore = require('./blobstore');

const kept = [];

async function blobTask(i) {
  const b = blobstore.Open(`task-blob-${i}`);
  // TODO in the original too: perform some work, write to the blob.
  await null;
  if (i % 5 === 0) b.Close();
  else kept.push(b);
}

/** The article's loop: 1000 blobs opened from concurrent tasks; resolves to those kept open. */
async function openBlobs() {
  const tasks = [];
  for (let i = 0; i < 1000; i++) {
    tasks.push(new Promise((resolve, reject) => setImmediate(() => blobTask(i).then(resolve, reject))));
  }
  await Promise.all(tasks);
  return kept;
}

async function main() {
  await openBlobs();
  const p = pprof.Lookup('blobstore.Open');
  console.log(`open blobs: ${p.Count()}`);
  await p.WriteTo(process.stdout, 1);
  if (process.argv[2]) await p.WriteTo(fs.createWriteStream(process.argv[2]), 0, { end: true });
}

module.exports = { openBlobs };

// serve.js reuses openBlobs; run as a program, this prints the profile.
if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
