'use strict';
// The mixed CPU-bound workload shared by bench/cpu-overhead.js (variants in separate
// processes) and bench/sampling-overhead.js (variants alternating in one process).

let seed = 1;
function rand() { // xorshift32, deterministic
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];

function makeDoc(n) {
  const items = [];
  for (let i = 0; i < n; i++) {
    items.push({ id: i, name: WORDS[i % WORDS.length] + i, score: rand() * 1000, tags: [WORDS[(i * 7) % 12], WORDS[(i * 5) % 12]], nested: { a: i, b: `v${i}`, c: i % 3 === 0 } });
  }
  return { version: 3, kind: 'bench', items };
}

function jsonWork() {
  const doc = makeDoc(150);
  const s = JSON.stringify(doc);
  const back = JSON.parse(s);
  return s.length + back.items.length;
}

const TEXT = Array.from({ length: 400 }, (_, i) => `user${i}@host${i % 17}.example.com GET /api/v${i % 3}/items/${i * 37} 200 ${i * 13 % 997}ms`).join('\n');
const EMAIL = /([a-z0-9]+)@([a-z0-9]+)\.example\.com/g;
const LINE = /^(\S+) (GET|POST) (\/\S+) (\d{3}) (\d+)ms$/gm;

function regexWork() {
  let n = 0;
  for (const m of TEXT.matchAll(LINE)) n += Number(m[5]);
  const replaced = TEXT.replace(EMAIL, (_, u, h) => `${h}:${u}`);
  return n + replaced.length + (TEXT.match(/items\/\d+5 /g) || []).length;
}

function mathWork() {
  let acc = 0;
  for (let i = 1; i < 60000; i++) {
    const x = i * 0.001;
    acc += Math.sin(x) * Math.cos(x * 0.5) + Math.sqrt(i) / Math.log(i + 1) + Math.atan2(x, 1 + x) ** 2;
  }
  return acc;
}

function sortWork() {
  const nums = new Array(6000);
  for (let i = 0; i < nums.length; i++) nums[i] = rand();
  nums.sort((a, b) => a - b);
  const objs = new Array(3000);
  for (let i = 0; i < objs.length; i++) objs[i] = { k: WORDS[(rand() * 12) | 0] + ((rand() * 100) | 0), v: i };
  objs.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.v - b.v));
  return nums[100] + objs[0].v;
}

class Point { constructor(x, y, z) { this.x = x; this.y = y; this.z = z; } }

function allocWork() {
  const arr = [];
  for (let i = 0; i < 25000; i++) arr.push(i % 2 ? new Point(i, i + 1, i + 2) : { x: i, y: [i, i], z: { w: i } });
  let s = 0;
  for (let i = 0; i < arr.length; i += 97) s += arr[i].x;
  const m = new Map();
  for (let i = 0; i < 4000; i++) m.set(`k${i}`, { i });
  return s + m.size;
}

function stringWork() {
  let s = '';
  for (let i = 0; i < 8000; i++) s += WORDS[i % 12] + ':' + i.toString(36) + ';';
  const parts = [];
  for (let i = 0; i < 4000; i++) parts.push(`${i}-${WORDS[i % 12].toUpperCase()}`);
  return s.length + parts.join(',').split(',').length + s.indexOf('lima:zz');
}

function iteration() {
  return jsonWork() + regexWork() + mathWork() + sortWork() + allocWork() + stringWork();
}


function resetSeed() { seed = 1; }

module.exports = { iteration, resetSeed };
