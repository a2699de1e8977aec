#!/usr/bin/env node
// Throughput of the router's hot path on MESSAGE frames: FrameSplitter alone, and FrameSplitter +
// decodeRouteHeader + addressKey (what the router does per frame before forwarding it).
// Runs on the build: `npm run build && node bench/codec.mjs [seconds-per-case]`.
// Not a test: it prints figures, it asserts nothing about time.
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const P = await import(pathToFileURL(path.join(root, "dist/runtime/protocol/index.js")).href);

const seconds = Number(process.argv[2] ?? 2);
const CHUNK = 64 * 1024; // a typical socket read

const dest = { kind: "uuid", uuid: "189a9dcf-b9ad-4039-99bc-aefa9c65641e" };
const sender = { kind: "uuid", uuid: "44ed97bc-e91f-4fce-a367-b2425c6926e1" };

/** A unicast MESSAGE frame of exactly `size` bytes (length prefix included). */
function messageOf(size) {
  const empty = P.messageFrame("chat", dest, sender, new Uint8Array(0)).length;
  const f = P.messageFrame("chat", dest, sender, new Uint8Array(size - empty).fill(7));
  if (f.length !== size) throw new Error(`frame is ${f.length} bytes, wanted ${size}`);
  return f;
}

/** ~8 MiB of back-to-back frames, cut into 64 KiB chunks (so some frames straddle chunks). */
function streamOf(frame) {
  const n = Math.ceil((8 * 1024 * 1024) / frame.length);
  const all = Buffer.concat(Array.from({ length: n }, () => frame));
  const chunks = [];
  for (let off = 0; off < all.length; off += CHUNK) chunks.push(all.subarray(off, off + CHUNK));
  return { chunks, frames: n, bytes: all.length };
}

function run(name, frameSize, makeSink) {
  const { chunks, frames, bytes } = streamOf(messageOf(frameSize));
  const sink = makeSink();
  const pass = () => {
    const s = new P.FrameSplitter();
    for (const c of chunks) s.push(c, sink);
  };
  for (let i = 0; i < 3; i++) pass(); // warm-up
  sink.count = 0;
  let passes = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    pass();
    passes++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  if (sink.count !== passes * frames)
    throw new Error(`${name}: saw ${sink.count} frames, expected ${passes * frames}`);
  const fps = (passes * frames) / elapsed;
  const mbps = (passes * bytes) / elapsed / 1e6;
  console.log(
    `${name.padEnd(44)} ${String(frameSize).padStart(5)} B  ${(fps / 1e6).toFixed(2).padStart(6)} M frames/s  ${mbps.toFixed(0).padStart(6)} MB/s`,
  );
}

console.log(
  `node ${process.version}, ${os.cpus()[0]?.model ?? "?"} x${os.cpus().length}, ${seconds}s per case`,
);
for (const size of [100, 1000]) {
  run("splitter only", size, () => {
    const sink = { count: 0, frame: () => sink.count++, gracefulClose() {} };
    return sink;
  });
  run("splitter + decodeRouteHeader + addressKey", size, () => {
    let keyLen = 0;
    const sink = {
      count: 0,
      frame(f) {
        const h = P.decodeRouteHeader(f.subarray(4));
        if (h.addr !== null) keyLen += P.addressKey(h.addr).length;
        sink.count++;
      },
      gracefulClose() {},
      get keyLen() {
        return keyLen;
      },
    };
    return sink;
  });
  run("splitter + decodeBody (full decode, copies)", size, () => {
    const sink = {
      count: 0,
      frame(f) {
        P.decodeBody(f.subarray(4));
        sink.count++;
      },
      gracefulClose() {},
    };
    return sink;
  });
}
