#!/usr/bin/env node
// Long fuzz run of the protocol codec (not part of CI; test/protocol/fuzz.test.ts is the short one).
// Feeds random bodies, mutated capture bodies and chunked mutated streams to decodeBody,
// decodeRouteHeader and FrameSplitter, and fails on anything thrown that is not a ProtocolError,
// on an accepted body that does not re-encode stably, or on heap growth.
//
//   npm run build && node --expose-gc bench/fuzz-protocol.mjs [inputs=1000000] [seed]
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const P = await import(pathToFileURL(path.join(root, "dist/runtime/protocol/index.js")).href);
const capturesDir = path.resolve(root, "test/fixtures/captures");

const total = Number(process.argv[2] ?? 1_000_000);
let seed = Number(process.argv[3] ?? 0x5eed1234) >>> 0 || 1;
const HEAP_LIMIT = 32 * 1024 * 1024; // allowed growth of heapUsed + arrayBuffers after GC

// xorshift32: reproducible from the printed seed.
function rnd() {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed;
}
const below = (n) => rnd() % n;
function randomBytes(n) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rnd() & 0xff;
  return b;
}

const bodies = [];
for (const f of readdirSync(capturesDir).filter((x) => x.endsWith(".jsonl"))) {
  for (const line of readFileSync(path.join(capturesDir, f), "utf8").split("\n")) {
    if (!line.trim()) continue;
    const { hex } = JSON.parse(line);
    if (hex !== "fffffffb") bodies.push(Buffer.from(hex, "hex").subarray(4));
  }
}

const HUGE = [0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x00ffffff];
function mutate(b) {
  const at = b.length === 0 ? 0 : below(b.length);
  switch (below(5)) {
    case 0: {
      const out = Buffer.from(b);
      if (out.length) out[at] ^= 1 << below(8);
      return out;
    }
    case 1:
      return b.subarray(0, at);
    case 2:
      return Buffer.concat([b.subarray(0, at), randomBytes(1 + below(8)), b.subarray(at)]);
    case 3:
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + below(8))]);
    default: {
      const out = Buffer.from(b);
      const v = HUGE[below(HUGE.length)];
      const n = v > 0xffff ? 4 : 2;
      for (let i = 0; i < n && at + i < out.length; i++) out[at + i] = (v >>> (8 * (n - 1 - i))) & 0xff;
      return out;
    }
  }
}

const stats = { inputs: 0, accepted: 0, errors: {}, splitterFrames: 0 };
function fail(what, input, e) {
  console.error(`FAIL (${what}) seed-state=${seed} input=${Buffer.from(input).toString("hex")}`);
  console.error(e);
  process.exit(1);
}
function countError(e, what, input) {
  if (!(e instanceof P.ProtocolError)) fail(what, input, e);
  stats.errors[e.code] = (stats.errors[e.code] ?? 0) + 1;
}

function checkBody(body) {
  stats.inputs++;
  let d;
  try {
    d = P.decodeBody(body);
  } catch (e) {
    countError(e, "decodeBody", body);
  }
  try {
    P.decodeRouteHeader(body);
  } catch (e) {
    if (!(e instanceof P.ProtocolError)) fail("decodeRouteHeader", body, e);
  }
  if (d) {
    stats.accepted++;
    try {
      if (!isDeepStrictEqual(P.decodeBody(P.encodeBody(d)), d))
        fail("re-encode", body, new Error("not stable"));
    } catch (e) {
      fail("re-encode", body, e);
    }
  }
}

const sink = { frame: () => stats.splitterFrames++, gracefulClose() {} };
function checkStream(stream) {
  stats.inputs++;
  const s = new P.FrameSplitter(4096);
  try {
    for (let off = 0; off < stream.length; ) {
      const n = 1 + below(64);
      s.push(stream.subarray(off, off + n), sink);
      off += n;
    }
  } catch (e) {
    countError(e, "splitter", stream);
  }
}

function memory() {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

if (!globalThis.gc) console.warn("warning: run with --expose-gc for an exact heap check");
const startSeed = seed;
const base = memory();
let peak = 0;
const t0 = Date.now();
while (stats.inputs < total) {
  const k = below(10);
  if (k < 3) {
    const b = randomBytes(below(300));
    if (b.length && rnd() & 1) b[0] = below(8); // a valid type byte half the time
    checkBody(b);
  } else if (k < 8) {
    let b = bodies[below(bodies.length)];
    for (let m = 1 + below(3); m > 0; m--) b = mutate(b);
    checkBody(b);
  } else {
    // A few frames, some with mutated prefixes or bodies, chunked at random.
    const parts = [];
    for (let i = 1 + below(4); i > 0; i--) {
      const body = bodies[below(bodies.length)];
      const p = Buffer.alloc(4);
      p.writeInt32BE(rnd() % 8 === 0 ? rnd() | 0 : body.length);
      parts.push(p, body);
    }
    checkStream(rnd() & 1 ? mutate(Buffer.concat(parts)) : Buffer.concat(parts));
  }
  if (stats.inputs % 50_000 === 0) {
    const grown = memory() - base;
    peak = Math.max(peak, grown);
    if (grown > HEAP_LIMIT) fail("heap", Buffer.alloc(0), new Error(`heap grew by ${grown} bytes`));
  }
}
const secs = (Date.now() - t0) / 1000;
console.log(
  JSON.stringify(
    {
      seed: startSeed,
      inputs: stats.inputs,
      accepted: stats.accepted,
      protocolErrors: stats.errors,
      splitterFrames: stats.splitterFrames,
      otherExceptions: 0,
      seconds: secs,
      inputsPerSecond: Math.round(stats.inputs / secs),
      peakHeapGrowthBytes: peak,
      finalHeapGrowthBytes: memory() - base,
      exactGc: Boolean(globalThis.gc),
    },
    null,
    2,
  ),
);
