#!/usr/bin/env node
// Cost of the authenticated cluster port (docs/security/cluster-port.md), and of the two
// alternatives that were not built, to back the decision with numbers:
//  1. handshakes per second against a real LocalCluster member on loopback: plain HELLO vs the
//     HMAC challenge-response (the crypto alone too), and mutual TLS (EC P-256) for comparison;
//  2. what a per-frame MAC would cost: mesh framing + decode of DATA frames alone vs with an
//     HMAC-SHA256 computed over every frame (100 B .. 1 MiB), as a throughput ratio;
//  3. bulk throughput over loopback: plain TCP vs TLS (what mutual TLS on the mesh would cost).
// Runs on the build: `npm run build && node bench/cluster-auth.mjs [seconds-per-case]`. Needs the
// openssl CLI for case 3 and the TLS handshakes (skipped without it). Not a test: prints figures.
// Run it on a quiet machine (no test suite running alongside); compare ratios within one run.
import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const load = (p) => import(pathToFileURL(path.join(root, "dist/runtime", p)).href);
const C = await load("cluster/codec.js");
const A = await load("cluster/auth.js");
const S = await load("cluster/secret.js");
const { LocalCluster } = await load("cluster/local-cluster.js");
const { pino } = await import("pino");

const seconds = Number(process.argv[2] ?? 2);
const log = pino({ level: "silent" });
const secret = S.parseClusterSecret(Buffer.from(randomBytes(32).toString("base64")), "bench");
const me = {
  name: "bench-dialer",
  site: "nyc",
  uuid: "11111111-2222-4333-8444-555555555555",
  host: "127.0.0.1",
  port: 1,
};

function line(name, value, unit, extra = "") {
  console.log(`${name.padEnd(52)} ${value.padStart(10)} ${unit}${extra ? `  ${extra}` : ""}`);
}

/** Runs `once` (async) back to back, `parallel` at a time, for `seconds`; returns ops/s. */
async function rate(once, parallel = 8) {
  for (let i = 0; i < 50; i++) await once(); // warm-up
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (performance.now() < end) {
        await once();
        n++;
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** One mesh handshake as a dialer, on a fresh connection, then close. */
function handshake(port, withSecret) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    const sp = C.meshSplitter();
    const nonce = randomBytes(32);
    s.on("error", reject);
    s.on("connect", () =>
      s.write(
        withSecret
          ? C.encodeFrame({ type: "auth-hello", version: 1, cluster: "bench", member: me, nonce })
          : C.encodeFrame({ type: "hello", version: 1, cluster: "bench", member: me }),
      ),
    );
    s.on("data", (d) =>
      sp.push(d, {
        frame(f) {
          const fr = C.decodeFrame(f.subarray(4));
          if (fr.type === "auth-challenge") {
            const t = C.authTranscript("dialer", "bench", me, fr.member, nonce, fr.nonce);
            s.write(C.encodeFrame({ type: "auth-proof", proof: A.prove(secret.current, t) }));
            s.peer = fr;
          } else if (fr.type === "auth-ack") {
            const t = C.authTranscript("acceptor", "bench", me, s.peer.member, nonce, s.peer.nonce);
            if (!A.verifyProof(secret, t, fr.proof)) reject(new Error("bad acceptor proof"));
            s.destroy();
            resolve();
          } else if (fr.type === "hello-ack") {
            s.destroy();
            resolve();
          } else reject(new Error(`unexpected ${fr.type}`));
        },
      }),
    );
  });
}

async function member(withSecret) {
  const c = new LocalCluster({
    site: "nyc",
    cluster: "bench",
    name: "bench-acceptor",
    discovery: { find: async () => [] },
    bindAddr: "127.0.0.1",
    bindPort: 0,
    joinTimeoutMs: 10,
    logger: log,
    ...(withSecret ? { secret } : {}),
  });
  await c.start();
  return c;
}

function makeCerts() {
  try {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bench-tls-"));
    const run = (args) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run([
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "1",
      "-subj",
      "/CN=bench-ca",
    ]);
    for (const n of ["a", "b"]) {
      run(["req", ...ec, "-keyout", `${n}.key`, "-out", `${n}.csr`, "-subj", `/CN=${n}`]);
      run([
        "x509",
        "-req",
        "-in",
        `${n}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${n}.pem`,
        "-days",
        "1",
      ]);
    }
    const f = (n) => readFileSync(path.join(dir, n));
    return {
      ca: f("ca.pem"),
      a: { cert: f("a.pem"), key: f("a.key") },
      b: { cert: f("b.pem"), key: f("b.key") },
    };
  } catch {
    return null;
  }
}

console.log(
  `node ${process.version}, ${os.cpus()[0]?.model ?? "?"} x${os.cpus().length}, ${seconds}s per case, load ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}`,
);

// 1. Handshakes -------------------------------------------------------------------------------
{
  const t = C.authTranscript("dialer", "bench", me, me, randomBytes(32), randomBytes(32));
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < seconds * 1000) {
    for (let i = 0; i < 1000; i++) A.prove(secret.current, t);
    n += 1000;
  }
  const per = (performance.now() - start) / n;
  line(
    "HMAC-SHA256 proof over the transcript",
    (1e6 / (per * 1000)).toFixed(0),
    "proofs/s",
    `${(per * 1000).toFixed(2)} us each; 2 per side per handshake`,
  );
}
for (const withSecret of [false, true]) {
  const c = await member(withSecret);
  const port = c.localMember.port;
  const r = await rate(() => handshake(port, withSecret));
  line(
    `mesh handshake ${withSecret ? "with secret (2 RTT, 4 HMAC)" : "without secret (HELLO, 1 RTT)"}`,
    r.toFixed(0),
    "handshakes/s",
    "new TCP connection each",
  );
  await c.close();
}
const certs = makeCerts();
if (certs) {
  const server = tls.createServer(
    { ...certs.a, ca: certs.ca, requestCert: true, rejectUnauthorized: true },
    (s) => s.end(),
  );
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  const r = await rate(
    () =>
      new Promise((resolve, reject) => {
        const s = tls.connect({
          port,
          host: "127.0.0.1",
          ...certs.b,
          ca: certs.ca,
          checkServerIdentity: () => undefined,
        });
        s.once("secureConnect", () => {
          s.destroy();
          resolve();
        });
        s.once("error", reject);
      }),
  );
  line(
    "mutual TLS 1.3 handshake (EC P-256, both verified)",
    r.toFixed(0),
    "handshakes/s",
    "new TCP connection each",
  );
  await new Promise((r) => server.close(r));
} else line("mutual TLS handshake", "skipped", "", "no openssl CLI");

// 2. Per-frame MAC ------------------------------------------------------------------------------
{
  const key = randomBytes(32);
  for (const size of [100, 1024, 64 * 1024, 1024 * 1024]) {
    const frame = C.encodeData(randomBytes(size));
    const n = Math.max(4, Math.ceil((8 * 1024 * 1024) / frame.length));
    const stream = Buffer.concat(Array.from({ length: n }, () => frame));
    const chunks = [];
    for (let o = 0; o < stream.length; o += 64 * 1024) chunks.push(stream.subarray(o, o + 64 * 1024));
    const measure = (mac) => {
      let frames = 0;
      const sink = {
        frame(f) {
          const body = f.subarray(4);
          C.decodeFrame(body);
          if (mac) createHmac("sha256", key).update(body).digest();
          frames++;
        },
      };
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 500) {
        const sp = C.meshSplitter();
        for (const c of chunks) sp.push(c, sink);
      }
      return frames / ((performance.now() - t0) / 1000);
    };
    measure(false);
    const plain = measure(false);
    const withMac = measure(true);
    line(
      `receive DATA ${String(size).padStart(7)} B: split+decode / + HMAC`,
      `${(withMac / plain).toFixed(2)}x`,
      "",
      `${(plain / 1e3).toFixed(0)}k vs ${(withMac / 1e3).toFixed(0)}k frames/s, ${((withMac * frame.length) / 1e6).toFixed(0)} MB/s with MAC`,
    );
  }
}

// 3. Bulk throughput: TCP vs TLS ----------------------------------------------------------------
async function bulk(makeServer, connect) {
  const total = 256 * 1024 * 1024;
  const server = makeServer((s) => {
    let got = 0;
    s.on("data", (d) => {
      got += d.length;
      if (got >= total) s.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  const chunk = randomBytes(64 * 1024);
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const s = connect(port, () => {
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once("drain", pump);
        }
      };
      pump();
    });
    s.on("error", reject);
    s.on("end", () => {
      s.destroy();
      resolve();
    });
    s.resume();
  });
  const mbps = total / ((performance.now() - t0) / 1000) / 1e6;
  await new Promise((r) => server.close(r));
  return mbps;
}
{
  const tcp = await bulk(
    (h) => net.createServer(h),
    (port, cb) => net.connect(port, "127.0.0.1", cb),
  );
  line("bulk 256 MiB over loopback, plain TCP", tcp.toFixed(0), "MB/s");
  if (certs) {
    const t = await bulk(
      (h) => tls.createServer({ ...certs.a, ca: certs.ca, requestCert: true }, h),
      (port, cb) =>
        tls.connect(
          { port, host: "127.0.0.1", ...certs.b, ca: certs.ca, checkServerIdentity: () => undefined },
          cb,
        ),
    );
    line(
      "bulk 256 MiB over loopback, mutual TLS (AES-GCM)",
      t.toFixed(0),
      "MB/s",
      `${(t / tcp).toFixed(2)}x of TCP`,
    );
  }
}
