'use strict';
/**
 * What the always-on code listener costs at compile time: compile and call 20,000
 * generated functions (20 scripts) in a fresh process without sigprof, with sigprof
 * loaded first, and with SIGPROF_CODE_EVENTS=lazy; variants alternate, 7 reps, medians.
 *
 *   node bench/code-listener.js [--reps 7]
 */
const { execFileSync } = require('node:child_process');
const lib = require('./lib');

const CHILD = `
const mode = process.argv[1];
const sp = mode === 'none' ? null : require(${JSON.stringify(require('node:path').join(__dirname, '..'))});
const vm = require('node:vm');
function src(i) {
  return 'function gen_' + i + '(a, b) {\\n  let acc = a * ' + (i % 97) + ' + b;\\n' +
    '  for (let k = 0; k < 3; k++) { acc = (acc * 31 + k + ' + i + ') % 1000003; if (acc % 7 === ' + (i % 7) + ') acc += ' + (i % 13) + '; }\\n' +
    "  const s = 'gen_" + "' + acc.toString(16) + ':' + String(b).padStart(4, '0');\\n  return s.length + (a > 1 ? acc & 1023 : acc & 511);\\n}\\n";
}
const t0 = process.hrtime.bigint();
let check = 0;
for (let sc = 0; sc < 20; sc++) {
  const parts = [];
  for (let j = 0; j < 1000; j++) parts.push(src(sc * 1000 + j));
  parts.push('[' + Array.from({ length: 1000 }, (_, j) => 'gen_' + (sc * 1000 + j)).join(',') + ']');
  for (const f of vm.runInThisContext(parts.join(''), { filename: '/gen/code-' + sc + '.js' })) check += f(2, 3);
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const st = sp ? require(${JSON.stringify(require('node:path').join(__dirname, '..', 'dist', 'native'))}).native().cpuStats() : {};
console.log(JSON.stringify({ ms, handlerMs: (st.codeEventNs || 0) / 1e6 }));
`;

const REPS = lib.numOpt('reps', 7);
const variants = { none: {}, sigprof: {}, lazy: { SIGPROF_CODE_EVENTS: 'lazy' } };
const res = { none: [], sigprof: [], lazy: [] };
const handler = [];
for (let r = 0; r < REPS; r++) {
  const names = Object.keys(variants);
  for (let k = 0; k < names.length; k++) {
    const v = names[(k + r) % names.length];
    const out = JSON.parse(execFileSync(process.execPath, ['-e', CHILD, v === 'none' ? 'none' : 'sigprof'], { env: { ...process.env, ...variants[v] }, encoding: 'utf8' }));
    res[v].push(out.ms);
    if (v === 'sigprof') handler.push(out.handlerMs);
  }
}
const med = (xs) => lib.median(xs);
console.log(`# compile + first call of 20,000 generated functions, ${REPS} reps (node ${process.version})`);
console.log('| variant | median ms | vs none |');
console.log('|---|--:|--:|');
for (const v of Object.keys(res)) console.log(`| ${v} | ${med(res[v]).toFixed(0)} | ${(med(res[v]) / med(res.none)).toFixed(3)} |`);
console.log(`\nsigprof's own code-event handler: median ${med(handler).toFixed(0)} ms`);
