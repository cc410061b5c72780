'use strict';
// The allocation-heavy workload shared by bench/heap-overhead.js (variants in separate
// processes) and bench/heap-sampling-overhead.js (rates alternating in one process).
// ---- the workload: object graphs, strings and arrays, most short-lived, some kept a while
class Order { constructor(id, items) { this.id = id; this.items = items; this.total = 0; this.tags = null; } }

function makeItems(n, seed) {
  const items = new Array(n);
  for (let i = 0; i < n; i++) items[i] = { sku: `sku-${(seed + i) % 997}`, qty: (i % 7) + 1, price: (seed * 31 + i) % 1000 };
  return items;
}
function priceOrder(o) {
  let t = 0;
  for (const it of o.items) t += it.qty * it.price;
  o.total = t;
  o.tags = o.items.map((it) => it.sku.slice(0, 5));
  return JSON.stringify({ id: o.id, total: t, n: o.items.length }).length;
}

function workload(totalMB) {
  // A rolling window keeps ~10-20 MB alive so GC has old-space work too.
  const window = new Array(4096);
  let bytes = 0;
  let acc = 0;
  let i = 0;
  while (bytes < totalMB * 1024 * 1024) {
    const o = new Order(i, makeItems(8 + (i % 24), i));
    acc += priceOrder(o);
    window[i % window.length] = o;
    if (i % 64 === 0) window[(i * 7) % window.length] = new Array(256).fill(i);
    bytes += 200 + o.items.length * 180; // rough bytes allocated per iteration
    i++;
  }
  return acc;
}

module.exports = { workload };
