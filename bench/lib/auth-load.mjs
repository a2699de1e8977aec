#!/usr/bin/env node
// The router load of shared/tools/gr-load.mjs (pairs of sender and receiver in one group, unicast
// MESSAGE frames, msgs/s of delivered messages), for routers that want a client identity: each
// connection first sends an AUTH frame (`--token-file F --site S`, token mode) or connects with
// TLS (`--tls DIR`: DIR/ca.crt, DIR/client.crt, DIR/client.key). Frames come from our own codec
// (dist/runtime/protocol), so the bytes are what our tunnel client sends. Prints one JSON line.
//   node bench/lib/auth-load.mjs HOST:PORT [--pairs 4] [--msgs 200000] [--size 1000]
//        [--token-file F --site S | --tls DIR] [--dist DIR]
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(k);
  return i > 0 ? args[i + 1] : d;
};
const [host, port] = args[0].split(":");
const pairs = Number(opt("--pairs", 4));
const msgs = Number(opt("--msgs", 200000));
const size = Number(opt("--size", 1000));
const dist = opt("--dist", path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist"));
const tokenFile = opt("--token-file", null);
const site = opt("--site", null);
const tlsDir = opt("--tls", null);
const { messageFrame, registerFrame } = await import(path.join(dist, "runtime/protocol/frames.js"));
const { authFrame } = tokenFile ? await import(path.join(dist, "runtime/protocol/auth.js")) : {};
const group = "bench";
const auth = tokenFile ? authFrame(site, readFileSync(tokenFile, "utf8").trim()) : null;
const tlsOptions = tlsDir
  ? {
      ca: readFileSync(path.join(tlsDir, "ca.crt")),
      cert: readFileSync(path.join(tlsDir, "client.crt")),
      key: readFileSync(path.join(tlsDir, "client.key")),
      servername: "localhost",
    }
  : null;

function connect() {
  return new Promise((resolve, reject) => {
    const s = tlsOptions
      ? tls.connect({ host, port: Number(port), ...tlsOptions }, () => resolve(s))
      : net.connect(Number(port), host, () => resolve(s));
    s.on("error", reject);
    s.setNoDelay(true);
  });
}

const uuid = () => ({ kind: "uuid", uuid: randomUUID() });
const recvDone = [];
const senders = [];
for (let p = 0; p < pairs; p++) {
  const su = uuid();
  const ru = uuid();
  const s = await connect();
  const r = await connect();
  if (auth) {
    s.write(auth);
    r.write(auth);
  }
  s.write(registerFrame(group, su, `s${p}`, null));
  r.write(registerFrame(group, ru, `r${p}`, null));
  let got = 0;
  let buf = Buffer.alloc(0);
  recvDone.push(
    new Promise((resolve) =>
      r.on("data", (d) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        let off = 0;
        while (buf.length - off >= 4) {
          const n = buf.readUInt32BE(off);
          if (n > 0x7fffffff || buf.length - off < 4 + n) break;
          if (buf[off + 4] === 4) got++;
          off += 4 + n;
        }
        buf = buf.subarray(off);
        if (got >= msgs) resolve();
      }),
    ),
  );
  senders.push({ s, frame: messageFrame(group, ru, su, Buffer.alloc(size, 7)) });
}
await new Promise((r) => setTimeout(r, 300)); // registrations in place
const t0 = process.hrtime.bigint();
// Batches of 64 frames per write, as gr-load does, so that the generator is not the limit.
await Promise.all(
  senders.map(
    ({ s, frame }) =>
      new Promise((resolve) => {
        const batch = Buffer.concat(Array(64).fill(frame));
        let sent = 0;
        const pump = () => {
          while (sent < msgs) {
            const n = Math.min(64, msgs - sent);
            sent += n;
            if (!s.write(n === 64 ? batch : batch.subarray(0, n * frame.length))) {
              s.once("drain", pump);
              return;
            }
          }
          resolve();
        };
        pump();
      }),
  ),
);
await Promise.all(recvDone);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const total = pairs * msgs;
console.log(JSON.stringify({ msgs: total, secs: +secs.toFixed(3), msgsPerSec: Math.round(total / secs) }));
process.exit(0);
