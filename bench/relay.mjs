#!/usr/bin/env node
// Relay benchmarks on loopback (needs `npm run build`). Prints figures only; writes nothing.
//   node bench/relay.mjs [--runs 3] [--lines 200] [--kills 3]
// 1. start-up: `relay local --no-chat` (2 routers, nyc x5, sfc x3) until it prints "ready"
//    (every member joined, every site master registered, every member sees both sites);
// 2. chat round trip: a member of sfc sends a line to everyone and waits for all 9 answers
//    ("response" from 8 nodes + itself), one line at a time; p50/p99 over --lines lines;
// 3. site-master failover: a line every 10 ms from sfc while the nyc site master is killed with
//    kill -9; time from the kill to the first answer from every surviving nyc member to a line
//    sent after the kill (cross-site chat answered again); --kills times in a row;
// 1b. `relay local` with the chat (npm start minus the build) until the chat prompt;
// 4. RSS of every node process (VmRSS) after the round-trip run.
import { spawn } from "node:child_process";
import path from "node:path";
import { numberOption } from "./lib/args.mjs";
import { CLI, DIST, pct, rssKiB, sleep } from "./lib/topology.mjs";

const { RelayChannel } = await import(path.join(DIST, "runtime/relay/channel.js"));
const { StaticDiscovery } = await import(path.join(DIST, "runtime/cluster/discovery.js"));
const { pino } = await import("pino");

const RUNS = numberOption("runs", 3);
const LINES = numberOption("lines", 200);
const KILLS = numberOption("kills", 3);
const fmt = (ms) => `${ms.toFixed(1)} ms`;

function startLocal() {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, "local", "--no-chat"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready:\n${out}`)), 60_000);
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (/^ready: /m.test(out)) {
        clearTimeout(timer);
        const procs = [...out.matchAll(/^(\S+)\s+(\S+)\s+pid (\d+)\s+port (\d+)\s+http (\d+)$/gm)].map(
          (m) => ({
            name: m[1],
            site: m[2] === "-" ? null : m[2],
            pid: Number(m[3]),
            port: Number(m[4]),
            httpPort: Number(m[5]),
          }),
        );
        resolve({ child, procs, readyMs: performance.now() - t0 });
      }
    });
  });
}

async function stopLocal(run) {
  run.child.kill("SIGTERM");
  await new Promise((r) => run.child.once("exit", r));
}

async function joinSfc(run, name) {
  const hosts = (site) =>
    run.procs.filter((p) => p.site === site).map((p) => ({ host: "127.0.0.1", port: p.port }));
  const ch = new RelayChannel({
    site: "sfc",
    cluster: "relay",
    name,
    discovery: new StaticDiscovery(hosts("sfc")),
    routers: run.procs.filter((p) => p.site === null).map((p) => ({ host: "127.0.0.1", port: p.port })),
    bindAddr: "127.0.0.1",
    bindPort: 0,
    logger: pino({ level: "silent" }),
  });
  ch.on("message", (m) => {
    if (m.dest.kind === "all") ch.sendToMember(m.from, Buffer.from("response"));
  });
  await ch.connect();
  await sleep(500);
  return ch;
}

// 1 + 2 + 4
const startups = [];
for (let i = 0; i < RUNS; i++) {
  const run = await startLocal();
  startups.push(run.readyMs);
  if (i === RUNS - 1) {
    const ch = await joinSfc(run, "bench");
    let answers = 0;
    ch.on("message", (m) => {
      if (m.dest.kind === "member" && Buffer.from(m.payload).toString() === "response") answers++;
    });
    const rtts = [];
    for (let n = 0; n < LINES; n++) {
      answers = 0;
      const t = performance.now();
      ch.sendToAll(Buffer.from(`line ${n}`));
      const until = t + 5000;
      while (answers < 9 && performance.now() < until) await new Promise((r) => setImmediate(r));
      if (answers < 9) throw new Error(`line ${n}: ${answers} of 9 answers`);
      rtts.push(performance.now() - t);
    }
    console.log(
      `chat round trip (line -> 9 answers), ${LINES} lines: p50 ${fmt(pct(rtts, 50))}, p99 ${fmt(pct(rtts, 99))}, max ${fmt(Math.max(...rtts))}`,
    );
    const rss = run.procs.filter((p) => p.site).map((p) => rssKiB(p.pid));
    console.log(
      `RSS per node after the round trips: median ${(pct(rss, 50) / 1024).toFixed(1)} MiB, max ${(Math.max(...rss) / 1024).toFixed(1)} MiB (site masters included)`,
    );
    await ch.close();
  }
  await stopLocal(run);
}
console.log(
  `relay local --no-chat to ready (8 members, 2 sites, 2 routers), ${RUNS} runs: ${startups.map(fmt).join(", ")}; median ${fmt(pct(startups, 50))}`,
);

// npm start's path: `relay local` (with the chat) until the chat's prompt line.
const prompts = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, "local"], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no prompt:\n${out}`)), 60_000);
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (out.includes("type 'help'")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  prompts.push(performance.now() - t0);
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
}
console.log(
  `relay local (npm start without the build) to the chat prompt, ${RUNS} runs: ${prompts.map(fmt).join(", ")}; median ${fmt(pct(prompts, 50))}`,
);

// 3
const run = await startLocal();
const ch = await joinSfc(run, "bench");
const status = async (p) => (await fetch(`http://127.0.0.1:${p.httpPort}/status`)).json();
const failovers = [];
let lineNo = 0;
const answeredBy = new Map(); // line -> Set of nyc responders
ch.on("message", (m) => {
  if (m.dest.kind !== "member" || m.from.site !== "nyc") return;
  // Answers carry no line number: attribute each to the newest line sent (good enough at 10 ms).
  const set = answeredBy.get(lineNo) ?? new Set();
  set.add(m.from.name);
  answeredBy.set(lineNo, set);
});
const alive = new Set(run.procs.filter((p) => p.site === "nyc").map((p) => p.name));
for (let k = 0; k < KILLS && alive.size > 1; k++) {
  const any = run.procs.find((p) => alive.has(p.name));
  const view = (await status(any)).view.members.map((m) => m.name);
  const sm = run.procs.find((p) => p.name === view[0]);
  alive.delete(sm.name);
  await sleep(300);
  const killedAt = performance.now();
  process.kill(sm.pid, "SIGKILL");
  const firstLine = lineNo + 1;
  let done = null;
  while (done === null && performance.now() - killedAt < 10_000) {
    lineNo++;
    ch.sendToAll(Buffer.from(`f${lineNo}`));
    await sleep(10);
    for (let l = firstLine; l <= lineNo; l++) {
      const s = answeredBy.get(l);
      if (s && [...alive].every((n) => s.has(n))) {
        done = performance.now() - killedAt;
        break;
      }
    }
  }
  failovers.push(done ?? Number.NaN);
  console.log(
    `failover ${k + 1}: kill -9 ${sm.name} -> every surviving nyc member answers again after ${done === null ? "(not within 10 s)" : fmt(done)}`,
  );
  await sleep(500);
}
console.log(
  `site-master failover (kill -9), ${failovers.length} kills: median ${fmt(pct(failovers, 50))}, max ${fmt(Math.max(...failovers))}`,
);
await ch.close();
await stopLocal(run);
console.log(
  `machine: ${(await import("node:os")).cpus().length} CPUs, ${(await import("node:os")).cpus()[0].model}, node ${process.version}`,
);
process.exit(0);
