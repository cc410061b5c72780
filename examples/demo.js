'use strict';
// `npm run demo`: profiles the example workload for 3 s, writes cpu.pb.gz, and prints
// the top 10 functions read back from that file.
const fs = require('node:fs');
const path = require('node:path');
const sigprof = require('..'); // first, so the workload's code is compiled with line tables
const { runWorkload } = require('./workload');
const { loadProfileFile } = require('../dist/cli/profile');
const { topReport, renderTop } = require('../dist/cli/top');

async function main() {
  const out = path.resolve(process.argv[2] || 'cpu.pb.gz');
  sigprof.SetCPUProfileRate(Number(process.env.SIGPROF_RATE || 100));
  sigprof.StartCPUProfile(fs.createWriteStream(out));
  runWorkload(Number(process.env.DEMO_MS || 3000));
  await sigprof.StopCPUProfile();
  const s = sigprof.CPUProfileStats();
  console.log(`wrote ${out}: ${s.samples} samples at ${s.hz} Hz (${s.mode} clock), ${s.dropped} dropped, ` +
    `handler ${(s.handlerNsMean / 1000).toFixed(1)} µs mean / ${(s.handlerNsMax / 1000).toFixed(1)} µs max per sample\n`);
  const report = topReport(loadProfileFile(out), { nodeCount: 10, granularity: 'functions', cum: false });
  console.log(renderTop(report));
  console.log(`\nMore: go tool pprof -top ${path.relative(process.cwd(), out)}   or   npx sigprof flame ${path.relative(process.cwd(), out)} -o flame.html`);
}

main().catch((err) => { console.error(err); process.exit(1); });
