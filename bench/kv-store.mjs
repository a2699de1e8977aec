#!/usr/bin/env node
// The replicated map's core in one process, on dist/ (`npm run build` first; BENCH_DIST=<dist> for
// another build, to compare two in one sitting):
//   node --expose-gc bench/kv-store.mjs [--writes 200000] [--keys 100000] [--size 100] [--runs 3]
// No network and no channel: what every replica pays per write in memory and in the GC.
// 1. per write: a writer store `put`s a new key, batches of 8 go through the kv codec (encode,
//    decode) and are applied to a replica store; µs per write, and the young-generation GC
//    (scavenges: count, ms per 1,000 writes, the longest), from PerformanceObserver "gc".
// 2. memory per key: heap (after a full GC) and ArrayBuffer bytes a replica holds for --keys keys
//    decoded from update messages, minus what it held before.
// 3. value memory kept alive: one new key per batch of 40 overwrites of a hot key; the bytes of
//    the distinct buffers behind the replica's values over the values' own bytes (1.0 = none extra).
// Prints Markdown tables.
import { constants, PerformanceObserver } from "node:perf_hooks";
import { numberOption } from "./lib/args.mjs";
import { DIST, machine, requireBuild } from "./lib/topology.mjs";

requireBuild();
if (typeof globalThis.gc !== "function") {
  console.error("run with node --expose-gc bench/kv-store.mjs (memory per key needs a full GC)");
  process.exit(2);
}
const dist = new URL(`file://${DIST}/runtime/`);
const { MapStore } = await import(new URL("kv/store.js", dist));
const { HybridClock } = await import(new URL("kv/hlc.js", dist));
const { encodeKvMessage, decodeKvMessage } = await import(new URL("kv/codec.js", dist));

const WRITES = numberOption("writes", 200_000);
const KEYS = numberOption("keys", 100_000);
const SIZE = numberOption("size", 100);
const RUNS = numberOption("runs", 3);
const BATCH = 8;

const store = (site, member) => new MapStore({ site, member, clock: new HybridClock() });
const turn = () => new Promise((resolve) => setImmediate(resolve));
async function settledHeap() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, arrayBuffers: m.arrayBuffers };
}
/** Applies `batches` (arrays of entries of the writer) to `replica` through the kv codec. */
function replicate(batches, replica) {
  for (const entries of batches) {
    const m = decodeKvMessage(encodeKvMessage({ type: "update", map: "bench", batch: 1, entries }));
    for (const e of m.entries) replica.apply(e);
  }
}

async function perWrite() {
  const scavenges = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges.push(e.duration);
  });
  obs.observe({ entryTypes: ["gc"] });
  const writer = store("nyc", "nyc-2");
  const replica = store("sfc", "sfc-1");
  const t0 = performance.now();
  let batch = [];
  for (let i = 0; i < WRITES; i++) {
    batch.push(writer.put(`r/${i}`, new Uint8Array(SIZE)));
    if (batch.length === BATCH) {
      replicate([batch], replica);
      batch = [];
    }
    if (i % 1000 === 999) await turn(); // the GC observer's entries arrive between turns
  }
  const ms = performance.now() - t0;
  await new Promise((resolve) => setTimeout(resolve, 50));
  obs.disconnect();
  const total = scavenges.reduce((a, b) => a + b, 0);
  if (replica.size !== WRITES - (WRITES % BATCH)) throw new Error(`replica holds ${replica.size} keys`);
  return {
    us: (ms * 1000) / WRITES,
    n: scavenges.length,
    per1k: (total / WRITES) * 1000,
    max: Math.max(...scavenges),
  };
}

async function memoryPerKey() {
  const writer = store("nyc", "nyc-2");
  const bytes = [];
  for (let i = 0; i < KEYS; i += BATCH) {
    const entries = [];
    for (let j = i; j < Math.min(KEYS, i + BATCH); j++)
      entries.push(writer.put(`r/${j}`, new Uint8Array(SIZE)));
    bytes.push(encodeKvMessage({ type: "update", map: "bench", batch: 1, entries }));
  }
  const replica = store("sfc", "sfc-1");
  const before = await settledHeap();
  for (const b of bytes) for (const e of decodeKvMessage(b).entries) replica.apply(e);
  const after = await settledHeap();
  // Uses all three after the measure, so that none of them is collected before it.
  if (replica.size !== KEYS || writer.size !== KEYS || bytes.length === 0)
    throw new Error("stores lost keys");
  return {
    heap: (after.heap - before.heap) / KEYS,
    arrayBuffers: (after.arrayBuffers - before.arrayBuffers) / KEYS,
  };
}

function keptValueMemory() {
  const writer = store("nyc", "nyc-2");
  const replica = store("sfc", "sfc-1");
  for (let i = 0; i < 2000; i++) {
    const batch = [writer.put(`cold/${i}`, new Uint8Array(SIZE))];
    for (let j = 0; j < 40; j++) batch.push(writer.put("hot", new Uint8Array(SIZE)));
    replicate([batch], replica);
  }
  const buffers = new Set();
  let own = 0;
  for (const e of replica.allEntries()) {
    own += e.value.length;
    buffers.add(e.value.buffer);
  }
  let held = 0;
  for (const b of buffers) held += b.byteLength;
  return held / own;
}

console.log(`kv store core, ${SIZE} B values, dist ${DIST}, ${JSON.stringify(machine())}`);
console.log(
  "\n| run | µs per write (put, codec, apply) | scavenges | scavenge ms per 1,000 writes | longest scavenge ms |",
);
console.log("|---|---|---|---|---|");
for (let r = 1; r <= RUNS; r++) {
  const w = await perWrite();
  console.log(`| ${r} | ${w.us.toFixed(2)} | ${w.n} | ${w.per1k.toFixed(2)} | ${w.max.toFixed(1)} |`);
}
const mem = await memoryPerKey();
console.log(
  `\n| keys | heap bytes per key (replica) | ArrayBuffer bytes per key | value memory kept alive / value bytes |`,
);
console.log("|---|---|---|---|");
console.log(
  `| ${KEYS} | ${mem.heap.toFixed(0)} | ${mem.arrayBuffers.toFixed(0)} | ${keptValueMemory().toFixed(1)} |`,
);
