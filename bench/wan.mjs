#!/usr/bin/env node
// Cross-site benchmark across a continent (issue 14), on dist/ (`npm run build` first):
//   node bench/wan.mjs [--delays 0,35] [--nyc 5] [--sfc 3] [--runs 3] [--window 2000]
//                      [--msgs100 20000] [--msgs1k 15000] [--open100 40000] [--open1k 30000]
//                      [--rate 1000] [--lat-secs 3] [--max-minutes 15]
// Like bench/crosssite.mjs, but every member reaches each router only through a userspace delay
// proxy of its own site (bench/lib/delay-proxy.mjs, run inside this process; kernel netem is not
// available): 2 routers, per site one proxy per router, members' router endpoints = the proxies.
// A message nyc -> sfc crosses two proxy hops (member -> router, router -> member), so a delay d
// per hop is 2d one way. Reliable topology only (RelayChannel `reliable: true`), nyc -> site sfc,
// from the youngest nyc member (never the site master); for each delay in --delays (set on every
// proxy with setDelay; queued bytes drain first):
// 1. closed loop: --msgs100 x 100 B and --msgs1k x 1 KB with at most --window messages not yet
//    delivered at every sfc member (credits through this process, out of band). Expect about
//    window / (one-way latency) msgs/s once the delay dominates (Little's law).
// 2. open loop: --open100 / --open1k messages as fast as send() takes them (no window): the send
//    buffer paces the sender (BUFFER_FULL -> wait for 'drain'); printed with the refusals and the
//    send buffer's fill (messages not yet stable: delivered ones count until their Stable is back,
//    so it exceeds the window in closed loop too) at the last send and at its peak (sampled).
//    Every run starts with an empty send buffer.
// 3. latency: 100 B at a steady --rate msgs/s for --lat-secs s; p50 / p99 / max over the sfc
//    members (send time in the payload, CLOCK_MONOTONIC, the same clock in every process).
// Every stream must reach every sfc member exactly once, in order (a failed run shows FAILED and no
// rate). CPU µs/msg = user + system time from /proc of every member and router over the run /
// messages; this process's own share (the proxies, plus the credits it relays in closed loop) is
// separate. Retransmitted = the sender's counter
// over the run (retransmissions of messages that were not stable within retransmitTimeoutMs).
// Prints Markdown tables. Bounded: --max-minutes kills everything and exits 1.
import { numberOption, stringOption } from "./lib/args.mjs";
import { startDelayProxy } from "./lib/delay-proxy.mjs";
import { runStream, streamProblems } from "./lib/stream.mjs";
import {
  BenchTopology,
  cpuSeconds,
  machine,
  median,
  newLogDir,
  nowMs,
  Router,
  requireBuild,
  sleep,
  stopAll,
} from "./lib/topology.mjs";

const DELAYS = stringOption("delays", "0,35")
  .split(",")
  .map((x) => Number(x));
if (DELAYS.some((d) => !Number.isFinite(d) || d < 0)) {
  console.error("--delays needs a comma-separated list of milliseconds >= 0");
  process.exit(2);
}
const N_NYC = numberOption("nyc", 5);
const N_SFC = numberOption("sfc", 3);
const RUNS = numberOption("runs", 3);
const WINDOW = numberOption("window", 2000);
const CLOSED = { 100: numberOption("msgs100", 20_000), 1024: numberOption("msgs1k", 15_000) };
const OPEN = { 100: numberOption("open100", 40_000), 1024: numberOption("open1k", 30_000) };
const RATE = numberOption("rate", 1000);
const LAT_SECS = numberOption("lat-secs", 3);
const MAX_MINUTES = numberOption("max-minutes", 15);

requireBuild();
const watchdog = setTimeout(() => {
  console.error(`wan: still running after ${MAX_MINUTES} min: stopping`);
  void stopAll().then(() => process.exit(1));
}, MAX_MINUTES * 60_000);
watchdog.unref();
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

const m0 = machine();
const logDir = newLogDir("relay-wan-");
console.log(
  `machine: ${m0.nproc} CPUs, ${m0.cpu}, node ${m0.node}, load average ${m0.loadavg.join(" ")}, commit ${m0.commit}; logs ${logDir}`,
);

const routers = [new Router("router-1", logDir), new Router("router-2", logDir)];
for (const r of routers) await r.start();
const SITES = [
  { site: "nyc", members: N_NYC },
  { site: "sfc", members: N_SFC },
];
/** proxies[site][i]: that site's way to router i. */
const proxies = {};
for (const { site } of SITES) {
  proxies[site] = [];
  for (const r of routers)
    proxies[site].push(
      await startDelayProxy({ targetHost: "127.0.0.1", targetPort: r.port, delayMs: DELAYS[0] }),
    );
}
const allProxies = () => Object.values(proxies).flat();
const topo = new BenchTopology({
  sites: SITES,
  routers,
  cluster: "bench-wan",
  bridgeGroup: "bridge-wan",
  reliable: true,
  logDir,
  endpoints: Object.fromEntries(
    Object.entries(proxies).map(([site, ps]) => [site, ps.map((p) => ({ host: "127.0.0.1", port: p.port }))]),
  ),
});
const t0 = nowMs();
await topo.start();
console.log(
  `ready: nyc x ${N_NYC}, sfc x ${N_SFC}, 2 routers, ${allProxies().length} delay proxies, in ${((nowMs() - t0) / 1000).toFixed(1)} s`,
);

/** One stream sender -> site sfc, with its problems and rate. */
async function stream({ sender, receivers, count, size, rate = 0, window = 0, stallMs = 15_000 }) {
  const dest = { kind: "site", site: "sfc" };
  const run = await runStream({ sender, receivers, dest, count, size, rate, window, stallMs });
  const { sent, reports } = run;
  const bad = streamProblems(run, count);
  const secs = (Math.max(...reports.map((r) => r.lastAt)) - sent.firstAt) / 1000;
  return { sent, reports, bad, rate: bad.length ? Number.NaN : count / secs, secs };
}

const pids = () => [...topo.alive().map((m) => m.pid), ...routers.map((r) => r.pid)];
const cpuOf = (ps) => ps.reduce((a, pid) => a + (cpuSeconds(pid) ?? 0), 0);
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const retransmitted = async (m) => (await m.request("status")).stats.retransmitted;

/** Waits (bounded) until the sender's send buffer is empty: each run starts with nothing unstable. */
async function drained(sender) {
  const until = nowMs() + 30_000;
  while ((await sender.request("status")).stats.bufferedMessages > 0) {
    if (nowMs() > until) {
      console.error("  (the send buffer did not drain within 30 s)");
      return;
    }
    await sleep(50);
  }
}

/** A measured stream: rate, CPU µs/msg (members + routers; this process = the proxies), retransmissions. */
async function measured(o) {
  await drained(o.sender);
  const ps = pids();
  const c0 = cpuOf(ps);
  const s0 = selfCpu();
  const r0 = await retransmitted(o.sender);
  const run = await stream(o);
  return {
    ...run,
    cpu: ((cpuOf(ps) - c0) * 1e6) / o.count,
    proxyCpu: ((selfCpu() - s0) * 1e6) / o.count,
    retransmitted: (await retransmitted(o.sender)) - r0,
  };
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const fmtRate = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–");
const sizeName = (s) => (s === 1024 ? "1 KB" : "100 B");

const rows = []; // throughput, per delay and size
const latRows = [];
let current = DELAYS[0];
for (const delay of DELAYS) {
  // New chunks get the new delay; let what is queued with the old one drain first.
  for (const p of allProxies()) p.setDelay(delay);
  await sleep(Math.max(current, delay) * 4 + 500);
  current = delay;
  await topo.waitReady(30_000);
  const sender = await topo.youngest("nyc");
  const receivers = topo.alive("sfc");
  console.log(`\n${delay} ms per proxy hop (${2 * delay} ms one way nyc -> sfc):`);
  const warm = await stream({ sender, receivers, count: 2000, size: 1024, window: WINDOW });
  if (warm.bad.length) console.error(`  warm-up: ${warm.bad.join("; ")}`);
  for (const size of [100, 1024]) {
    for (let rep = 0; rep < RUNS; rep++) {
      const closed = await measured({ sender, receivers, count: CLOSED[size], size, window: WINDOW });
      const open = await measured({ sender, receivers, count: OPEN[size], size });
      rows.push({ delay, size, closed, open });
      for (const [kind, r] of [
        ["closed", closed],
        ["open", open],
      ])
        console.log(
          `  ${sizeName(size).padStart(5)} ${kind.padEnd(6)} ${r.sent.sent} msgs in ${r.secs.toFixed(2)} s = ${fmtRate(r.rate)} msgs/s` +
            `${r.bad.length ? ` FAILED: ${r.bad.join("; ")}` : ""}; refused ${r.sent.refused}, buffered at last send ${r.sent.stats?.bufferedMessages ?? "?"} (peak ${r.sent.maxBuffered ?? "?"}); CPU µs/msg ${fmt(r.cpu)} (+ proxies ${fmt(r.proxyCpu)}); retransmitted ${r.retransmitted}`,
        );
    }
  }
  const count = Math.round(RATE * LAT_SECS);
  const lat = await measured({ sender, receivers, count, size: 100, rate: RATE });
  if (lat.bad.length) console.error(`  latency run: ${lat.bad.join("; ")}`);
  latRows.push({
    delay,
    ok: lat.bad.length === 0,
    p50: median(lat.reports.map((r) => r.latency.p50)),
    p99: Math.max(...lat.reports.map((r) => r.latency.p99)),
    max: Math.max(...lat.reports.map((r) => r.latency.max)),
    cpu: lat.cpu,
    retransmitted: lat.retransmitted,
  });
}

console.log(
  `\n### Throughput nyc -> sfc (${N_SFC} receivers), reliable; closed loop: window ${WINDOW} msgs; open loop: no window (medians of ${RUNS})\n`,
);
console.log(
  "| delay per hop (one way) | size | closed msgs/s (runs) | closed CPU µs/msg | open msgs/s (runs) | open CPU µs/msg | open: refused / buffered at last send / peak | proxies µs/msg (closed / open) | retransmitted (closed / open) | exactly once, in order |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const delay of DELAYS) {
  for (const size of [100, 1024]) {
    const rs = rows.filter((r) => r.delay === delay && r.size === size);
    const med = (f) => median(rs.map(f));
    const last = rs.at(-1).open.sent;
    console.log(
      `| ${delay} ms (${2 * delay} ms) | ${sizeName(size)} | ${fmtRate(med((r) => r.closed.rate))} (${rs.map((r) => fmtRate(r.closed.rate)).join(", ")}) | ${fmt(med((r) => r.closed.cpu))} | ${fmtRate(med((r) => r.open.rate))} (${rs.map((r) => fmtRate(r.open.rate)).join(", ")}) | ${fmt(med((r) => r.open.cpu))} | ${last.refused} / ${last.stats?.bufferedMessages ?? "?"} / ${last.maxBuffered ?? "?"} | ${fmt(med((r) => r.closed.proxyCpu))} / ${fmt(med((r) => r.open.proxyCpu))} | ${rs.map((r) => `${r.closed.retransmitted} / ${r.open.retransmitted}`).join(", ")} | ${rs.every((r) => r.closed.bad.length === 0 && r.open.bad.length === 0) ? "yes" : "NO"} |`,
    );
  }
}
console.log(
  `\n### Latency nyc -> sfc at a steady ${RATE} msgs/s (100 B, ${Math.round(RATE * LAT_SECS)} msgs)\n`,
);
console.log(
  "| delay per hop (one way) | p50 (ms) | p99 (ms) | max (ms) | CPU µs/msg | retransmitted | exactly once, in order |",
);
console.log("|---|---|---|---|---|---|---|");
for (const r of latRows)
  console.log(
    `| ${r.delay} ms (${2 * r.delay} ms) | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.max, 1)} | ${fmt(r.cpu)} | ${r.retransmitted} | ${r.ok ? "yes" : "NO"} |`,
  );

const m1 = machine();
console.log(
  `\nload average at the end: ${m1.loadavg.join(" ")}; total ${((nowMs() - t0) / 1000).toFixed(0)} s; proxies: ${allProxies()
    .map((p) => {
      const s = p.stats();
      return `${s.accepted} conn, max queued ${s.maxQueuedBytes} B, ${s.pauses} pauses`;
    })
    .join("; ")}`,
);
await topo.stop();
await stopAll();
for (const p of allProxies()) await p.close();
process.exit(0);
