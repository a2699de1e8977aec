#!/usr/bin/env node
// What identity, authorization and the limits cost the router (issue 13): the same load (4 pairs,
// unicast MESSAGE frames, bench/lib/auth-load.mjs) against, interleaved in one run,
//   before   an older build (`--old DIST`, e.g. the commit before issue 13), open mode, and
//            before-mtls, the same with mutual TLS (what TLS alone costs)
//   open     this build, open mode (limits on, no identity)
//   token    this build, token mode + `--allow-groups bench=bench` (AUTH frame, sender check)
//   mtls     this build, mutual TLS + the same policy (identity from the certificate's URI SAN)
// and mutual-TLS handshakes per second (connect, full handshake with a client certificate, close).
// Prints medians of msgs/s and router CPU µs per message, and the ratios to `open` (and `before`).
//   npm run build && node bench/router-auth.mjs [--old /tmp/old/dist] [--runs 3] [--msgs 200000]
//        [--sizes 100,1000] [--handshakes 400]
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { numberOption, stringOption } from "./lib/args.mjs";
import { CLI, cpuSeconds, machine, median, ROOT, Router, stopAll } from "./lib/topology.mjs";

const run = promisify(execFile);
const runs = numberOption("runs", 3);
const msgs = numberOption("msgs", 200000);
const sizes = stringOption("sizes", "100,1000").split(",").map(Number);
const handshakes = numberOption("handshakes", 400);
const oldDist = stringOption("old", null);
const LOAD = path.join(ROOT, "bench/lib/auth-load.mjs");

// ---- material: a token, and a CA with a server and a client certificate (site "bench") --------
const dir = mkdtempSync(path.join(os.tmpdir(), "router-auth-"));
const tokens = path.join(dir, "tokens");
await run("mkdir", ["-p", tokens]);
writeFileSync(path.join(tokens, "bench"), "bench-token-0123456789abcdef0123456789abcdef\n");
const ssl = (args) => run("openssl", args, { cwd: dir });
const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
await ssl([
  "req",
  "-x509",
  ...key,
  "-keyout",
  "ca.key",
  "-out",
  "ca.crt",
  "-days",
  "2",
  "-subj",
  "/CN=bench CA",
]);
for (const [name, ext] of [
  ["server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"],
  ["client", "subjectAltName=URI:spiffe://cross-cloud-relay/site/bench\nextendedKeyUsage=clientAuth\n"],
]) {
  await ssl(["req", ...key, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
  writeFileSync(path.join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\n${ext}`);
  await ssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-set_serial",
    "0x1a2b3c",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ]);
}
const tlsArgs = [
  "--tls-cert",
  path.join(dir, "server.crt"),
  "--tls-key",
  path.join(dir, "server.key"),
  "--tls-ca",
  path.join(dir, "ca.crt"),
  "--tls-client-auth",
];
const policy = ["--allow-groups", "bench=bench"];

const configs = [
  ...(oldDist
    ? [
        { name: "before", cli: path.join(oldDist, "runtime/cli/relay.js"), args: [], load: [] },
        // The older build with mutual TLS (no identity, no policy): what TLS alone costs.
        {
          name: "before-mtls",
          cli: path.join(oldDist, "runtime/cli/relay.js"),
          args: tlsArgs,
          load: ["--tls", dir],
        },
      ]
    : []),
  { name: "open", cli: CLI, args: [], load: [] },
  {
    name: "token",
    cli: CLI,
    args: ["--auth-tokens", tokens, ...policy],
    load: ["--token-file", path.join(tokens, "bench"), "--site", "bench"],
  },
  { name: "mtls", cli: CLI, args: [...tlsArgs, ...policy], load: ["--tls", dir] },
];

async function once(c, size) {
  const router = await new Router(`router-${c.name}`, null, { cli: c.cli, args: c.args }).start();
  try {
    const cpu0 = cpuSeconds(router.pid);
    const { stdout } = await run(
      process.execPath,
      [
        LOAD,
        `127.0.0.1:${router.port}`,
        "--pairs",
        "4",
        "--msgs",
        String(msgs),
        "--size",
        String(size),
        ...c.load,
      ],
      { timeout: 300_000 },
    );
    const r = JSON.parse(stdout.trim().split("\n").at(-1));
    return { rate: r.msgsPerSec, cpuUs: ((cpuSeconds(router.pid) - cpu0) * 1e6) / r.msgs };
  } finally {
    router.child.kill("SIGKILL");
  }
}

const out = { machine: machine(), msgsPerRun: 4 * msgs, runs, results: {} };
try {
  for (const size of sizes) {
    const samples = Object.fromEntries(configs.map((c) => [c.name, []]));
    for (let i = 0; i < runs; i++) for (const c of configs) samples[c.name].push(await once(c, size));
    const row = {};
    for (const c of configs) {
      const s = samples[c.name];
      row[c.name] = {
        msgsPerSec: median(s.map((x) => x.rate)),
        routerCpuUsPerMsg: +median(s.map((x) => x.cpuUs)).toFixed(3),
        all: s.map((x) => x.rate),
      };
    }
    for (const c of configs) {
      row[c.name].vsOpen = +(row[c.name].msgsPerSec / row.open.msgsPerSec).toFixed(2);
      if (row.before) row[c.name].vsBefore = +(row[c.name].msgsPerSec / row.before.msgsPerSec).toFixed(2);
    }
    if (row["before-mtls"]) {
      row.mtls.vsBeforeMtls = +(row.mtls.msgsPerSec / row["before-mtls"].msgsPerSec).toFixed(2);
    }
    out.results[`${size}B`] = row;
    console.error(`[router-auth] ${size} B: ${JSON.stringify(row)}`);
  }

  // ---- mutual-TLS handshakes per second: 8 clients in parallel, each connect -> handshake -> close
  const router = await new Router("router-mtls-hs", null, { args: [...tlsArgs, ...policy] }).start();
  const material = {
    ca: readFileSync(path.join(dir, "ca.crt")),
    cert: readFileSync(path.join(dir, "client.crt")),
    key: readFileSync(path.join(dir, "client.key")),
  };
  const handshake = () =>
    new Promise((resolve, reject) => {
      const s = tls.connect(
        { host: "127.0.0.1", port: router.port, servername: "localhost", ...material },
        () => {
          s.destroy();
          resolve();
        },
      );
      s.once("error", reject);
    });
  const cpu0 = cpuSeconds(router.pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next++ < handshakes) await handshake();
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  out.results.mtlsHandshakes = {
    handshakes,
    perSec: Math.round(handshakes / secs),
    routerCpuMsPerHandshake: +(((cpuSeconds(router.pid) - cpu0) * 1000) / handshakes).toFixed(3),
  };
  router.child.kill("SIGKILL");
} finally {
  await stopAll();
}
console.log(JSON.stringify(out, null, 2));
