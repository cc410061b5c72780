'use strict';
// A small service-like workload for the demo: parse requests, render responses, hash
// payloads and sort results, with a known rough split of CPU between the parts.
const crypto = require('node:crypto');

function parseRequests(n) {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const req = JSON.parse(`{"id":${i},"path":"/items/${i % 97}","tags":["a","b","c"],"q":{"limit":${i % 50}}}`);
    total += req.q.limit + req.tags.length;
  }
  return total;
}

function renderPage(items) {
  let html = '';
  for (const it of items) html += `<li data-id="${it.id}">${it.name.toUpperCase()}</li>`;
  return html.length;
}

function hashPayloads(n) {
  const buf = Buffer.alloc(64 * 1024, 1);
  let x = 0;
  for (let i = 0; i < n; i++) x ^= crypto.createHash('sha1').update(buf).digest()[0];
  return x;
}

function sortResults(n) {
  const rows = [];
  for (let i = 0; i < n; i++) rows.push({ score: Math.sin(i) * 1000, name: `row${i}` });
  rows.sort((a, b) => a.score - b.score);
  return rows[0].score;
}

/** Runs the mix for `ms` milliseconds of wall time. */
function runWorkload(ms) {
  const items = Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `item-${i}` }));
  const end = Date.now() + ms;
  let sink = 0;
  while (Date.now() < end) {
    sink += parseRequests(3000);
    sink += renderPage(items);
    sink += hashPayloads(40);
    sink += sortResults(20000);
  }
  return sink;
}

module.exports = { runWorkload, parseRequests, renderPage, hashPayloads, sortResults };
