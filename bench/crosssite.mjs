#!/usr/bin/env node
import { numberOption, stringOption } from "./lib/args.mjs";
import { runStream, streamProblems } from "./lib/stream.mjs";
// Cross-site benchmarks on loopback (issue 6), on dist/ (`npm run build` first):
//   node bench/crosssite.mjs [--runs 3] [--msgs100 200000] [--msgs1k 100000] [--window 2000]
//                            [--rates 1000,10000] [--kills 3] [--fail-rate 200] [--skip-failover]
//                            [--max-minutes 15] [--open-loop-only]
// Two routers (`relay router`) and two topologies on them, side by side: nyc x5 + sfc x3 with
// the delivery guarantee (RelayChannel `reliable: true`) and the same without it (`reliable:
// false`, the bare relay), each member its own process (bench/lib/member.mjs). Apart by cluster
// name and bridge group; the idle one only exchanges heartbeats while the other is measured.
// The sender is the youngest nyc member (never a site master).
// 1. throughput: --msgs numbered messages of 100 B and 1 KB from the sender to site sfc, and
//    separately to all sites and to one sfc member (a unicast: its body goes to that member only,
//    the other sfc members get its lane position); a run ends when every receiver (the 3 sfc members; for "all" also
//    the 4 other nyc members) has every message; counts, duplicates and per-sender order are
//    checked. Closed loop: at most --window messages not yet delivered everywhere (credits
//    through the parent, out of band), plus the relay's own back-pressure. Reliable and bare runs
//    alternate (interleaved), so the ratio compares runs made under the same machine load.
// 2. latency at steady rates, --rates (default 1000,10000 msgs/s; 100 B, send timestamp in the
//    payload, CLOCK_MONOTONIC).
// 3. failover (reliable topology): a steady --fail-rate stream nyc -> sfc while one of: the nyc
//    site master, the sfc site master, router-1 is killed with kill -9; the gap in the receive
//    timeline at each surviving sfc member; every message must arrive exactly once, in order. The
//    killed process is replaced (new member / router restarted on its port) before the next kill.
//    The same once per scenario on the bare topology shows what it loses.
// --open-loop-only: instead, 100,000 x 1 KB nyc -> sfc per mode with no window (what each mode
//    does when the sender outruns the path).
// Prints Markdown tables. Bounded: --max-minutes kills everything and exits 1.
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

const argv = process.argv.slice(2);
const RUNS = numberOption("runs", 3);
// Runs of ~2 s: with 40,000 / 30,000 messages (~0.5 s on a quiet machine) the start of a stream
// weighs more (100 B to sfc: 91.6k vs 98.2k msgs/s in two 3-run medians, 2026-12-02).
const MSGS = { 100: numberOption("msgs100", 200_000), 1024: numberOption("msgs1k", 100_000) };
const WINDOW = numberOption("window", 2000);
const RATES = stringOption("rates", "1000,10000").split(",").map(Number);
const KILLS = numberOption("kills", 3);
const FAIL_RATE = numberOption("fail-rate", 200);
const SKIP_FAILOVER = argv.includes("--skip-failover");
const OPEN_LOOP_ONLY = argv.includes("--open-loop-only");
const MAX_MINUTES = numberOption("max-minutes", 15);

requireBuild();
const watchdog = setTimeout(() => {
  console.error(`crosssite: still running after ${MAX_MINUTES} min: stopping`);
  void stopAll().then(() => process.exit(1));
}, MAX_MINUTES * 60_000);
watchdog.unref();
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

const m0 = machine();
const logDir = newLogDir("relay-crosssite-");
console.log(
  `machine: ${m0.nproc} CPUs, ${m0.cpu}, node ${m0.node}, load average ${m0.loadavg.join(" ")}, commit ${m0.commit}; logs ${logDir}`,
);

const routers = [new Router("router-1", logDir), new Router("router-2", logDir)];
for (const r of routers) await r.start();
const SITES = [
  { site: "nyc", members: 5 },
  { site: "sfc", members: 3 },
];
const topo = {
  reliable: new BenchTopology({
    sites: SITES,
    routers,
    cluster: "bench-rel",
    bridgeGroup: "bridge-rel",
    reliable: true,
    logDir,
  }),
  bare: new BenchTopology({
    sites: SITES,
    routers,
    cluster: "bench-bare",
    bridgeGroup: "bridge-bare",
    reliable: false,
    logDir,
  }),
};
const t0 = nowMs();
await Promise.all([topo.reliable.start(), topo.bare.start()]);
console.log(`both topologies ready (2 x 8 members, 2 routers) in ${((nowMs() - t0) / 1000).toFixed(1)} s`);

const check = streamProblems;

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const fmtRate = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–");

const sfcOnly = (run) => run.reports.filter((r) => r.name.startsWith("sfc-"));

function receiversFor(t, sender, dest) {
  if (dest.kind === "member") return t.alive().filter((m) => m.site === dest.site && m.name === dest.name);
  return t.alive().filter((m) => m !== sender && (dest.kind === "all" || m.site === dest.site));
}

/** The destinations of the throughput runs: site sfc, all sites, one sfc member (not its site master). */
const DESTS = ["sfc", "all", "one"];
const DEST_LABEL = {
  sfc: "site sfc (3 receivers)",
  all: "all sites (3 sfc + 4 nyc receivers)",
  one: "one sfc member (unicast)",
};
async function destFor(t, destName) {
  if (destName === "all") return { kind: "all" };
  if (destName === "one") return { kind: "member", site: "sfc", name: (await t.youngest("sfc")).name };
  return { kind: "site", site: "sfc" };
}

/** The youngest nyc member (last in the site's view): never the site master. */
async function senderOf(t) {
  return t.youngest("nyc");
}

/** Processes by role in a run: where the CPU goes (routers are shared; the idle topology barely uses them). */
async function rolesOf(t, sender) {
  const nycSm = await t.siteMaster("nyc");
  const sfcSm = await t.siteMaster("sfc");
  const named = new Set([sender, nycSm, sfcSm]);
  return {
    sender: [sender.pid],
    "nyc site master": [nycSm.pid],
    routers: routers.map((r) => r.pid),
    "sfc site master": [sfcSm.pid],
    "other members": t
      .alive()
      .filter((m) => !named.has(m))
      .map((m) => m.pid),
  };
}
function cpuByRole(roles) {
  const out = {};
  for (const [role, pids] of Object.entries(roles))
    out[role] = pids.reduce((a, pid) => a + (cpuSeconds(pid) ?? 0), 0);
  return out;
}
/** CPU µs per message, by role and in total (from /proc, 10 ms resolution). */
function diffCpu(after, before, count) {
  const out = { total: 0 };
  for (const role of Object.keys(after)) {
    out[role] = ((after[role] - before[role]) * 1e6) / count;
    out.total += out[role];
  }
  return out;
}

// ---- 0. open loop (--open-loop-only): no window, only the relay's own back-pressure ----
if (OPEN_LOOP_ONLY) {
  console.log("\n### Open loop: 100,000 x 1 KB nyc -> sfc as fast as send() takes them (no window)\n");
  console.log("| mode | sender: sent / refused (BUFFER_FULL) | delivered at each sfc member | seconds |");
  console.log("|---|---|---|---|");
  for (const mode of ["reliable", "bare"]) {
    const t = topo[mode];
    const sender = await senderOf(t);
    const dest = { kind: "site", site: "sfc" };
    const count = 100_000;
    const t1 = nowMs();
    const run = await runStream({
      sender,
      receivers: receiversFor(t, sender, dest),
      dest,
      count,
      size: 1024,
      stallMs: 5000,
    });
    const secs = (Math.max(...run.reports.map((r) => r.lastAt)) - run.sent.firstAt) / 1000;
    console.log(
      `| ${mode} | ${run.sent.sent} / ${run.sent.refused} | ${run.reports.map((r) => `${r.name} ${r.count} (missing ${r.missing}, duplicates ${r.duplicates})`).join(", ")} | ${secs.toFixed(1)} (incl. waiting: ${((nowMs() - t1) / 1000).toFixed(1)}) |`,
    );
  }
  await topo.reliable.stop();
  await topo.bare.stop();
  await stopAll();
  process.exit(0);
}

// ---- 1. throughput, interleaved ----
// Warm-up (not counted): JIT, socket buffers, heaps of every process on the path.
for (const mode of ["reliable", "bare"]) {
  const t = topo[mode];
  const sender = await senderOf(t);
  for (const dest of [{ kind: "site", site: "sfc" }, { kind: "all" }]) {
    const run = await runStream({
      sender,
      receivers: receiversFor(t, sender, dest),
      dest,
      count: 5000,
      size: 1024,
      window: WINDOW,
    });
    const bad = check(run, 5000);
    if (bad.length) console.error(`warm-up (${mode}): ${bad.join("; ")}`);
  }
}
const results = []; // {mode, size, dest, rate, mbps, p50, p99, ok}
for (const size of [100, 1024]) {
  for (const destName of DESTS) {
    for (let rep = 0; rep < RUNS; rep++) {
      const order = rep % 2 === 0 ? ["reliable", "bare"] : ["bare", "reliable"];
      for (const mode of order) {
        const t = topo[mode];
        const dest = await destFor(t, destName);
        const sender = await senderOf(t);
        const receivers = receiversFor(t, sender, dest);
        const count = MSGS[size];
        const roles = await rolesOf(t, sender);
        const cpu0 = cpuByRole(roles);
        const run = await runStream({ sender, receivers, dest, count, size, window: WINDOW });
        const cpu = diffCpu(cpuByRole(roles), cpu0, count);
        const bad = check(run, count);
        const end = Math.max(...run.reports.map((r) => r.lastAt));
        const secs = (end - run.sent.firstAt) / 1000;
        const rate = bad.length ? Number.NaN : count / secs;
        const lat = sfcOnly(run).flatMap((r) => [r.latency.p50, r.latency.p99]);
        results.push({
          mode,
          size,
          dest: destName,
          rate,
          mbps: (rate * size) / 1e6,
          // Cross-site latency: the sfc receivers only (for "all", the nyc ones are local).
          p50: median(sfcOnly(run).map((r) => r.latency.p50)),
          p99: Math.max(...sfcOnly(run).map((r) => r.latency.p99)),
          refused: run.sent.refused,
          ok: bad.length === 0,
          cpu,
        });
        console.log(
          `  ${mode.padEnd(8)} ${String(size).padStart(4)} B -> ${destName}: ${count} msgs to ${receivers.length} receivers in ${secs.toFixed(2)} s = ${fmtRate(rate)} msgs/s` +
            `${bad.length ? ` FAILED: ${bad.join("; ")}` : ""} (latency p50 ${fmt(lat[0], 1)} ms; sender refused ${run.sent.refused}x; CPU µs/msg ${fmt(cpu.total, 0)})`,
        );
      }
    }
  }
}

console.log(
  "\n### Throughput (closed loop, window " + WINDOW + " msgs; medians of " + RUNS + " interleaved runs)\n",
);
console.log(
  "| destination | size | mode | msgs/s (runs) | median msgs/s | MB/s | sfc latency under load p50 / p99 (ms) | reliable / bare |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const size of [100, 1024]) {
  for (const dest of DESTS) {
    const med = {};
    for (const mode of ["reliable", "bare"])
      med[mode] = median(
        results.filter((r) => r.mode === mode && r.size === size && r.dest === dest).map((r) => r.rate),
      );
    // Ratio per interleaved pair, then the median of those ratios.
    const rel = results.filter((r) => r.mode === "reliable" && r.size === size && r.dest === dest);
    const bare = results.filter((r) => r.mode === "bare" && r.size === size && r.dest === dest);
    const ratios = rel.map((r, i) => r.rate / bare[i]?.rate);
    for (const mode of ["reliable", "bare"]) {
      const rs = results.filter((r) => r.mode === mode && r.size === size && r.dest === dest);
      console.log(
        `| ${DEST_LABEL[dest]} | ${size === 1024 ? "1 KB" : "100 B"} | ${mode} | ${rs.map((r) => fmtRate(r.rate)).join(", ")} | ${fmtRate(med[mode])} | ${fmt((med[mode] * size) / 1e6, 2)} | ${fmt(median(rs.map((r) => r.p50)), 1)} / ${fmt(median(rs.map((r) => r.p99)), 1)} | ${mode === "reliable" ? `${fmt(median(ratios), 2)} (pairs: ${ratios.map((x) => fmt(x, 2)).join(", ")})` : ""} |`,
      );
    }
  }
}

console.log(
  "\n### CPU per message (µs, all runs' median; user + system from /proc, summed over the processes of each role)\n",
);
const roleNames = ["sender", "nyc site master", "routers", "sfc site master", "other members"];
console.log(`| destination | size | mode | ${roleNames.join(" | ")} | total | reliable / bare (total) |`);
console.log(`|---|---|---|${roleNames.map(() => "---|").join("")}---|---|`);
for (const size of [100, 1024]) {
  for (const dest of DESTS) {
    const tot = {};
    for (const mode of ["reliable", "bare"]) {
      const rs = results.filter((r) => r.mode === mode && r.size === size && r.dest === dest);
      tot[mode] = median(rs.map((r) => r.cpu.total));
      console.log(
        `| ${DEST_LABEL[dest]} | ${size === 1024 ? "1 KB" : "100 B"} | ${mode} | ${roleNames.map((n) => fmt(median(rs.map((r) => r.cpu[n])), 0)).join(" | ")} | ${fmt(tot[mode], 0)} | ${mode === "reliable" ? "" : fmt(tot.reliable / tot.bare, 2)} |`,
      );
    }
  }
}

// ---- 2. latency at steady rates ----
for (const RATE of RATES) {
  console.log(
    `\n### Latency nyc -> sfc at a steady ${RATE} msgs/s (100 B, ${RATE * 3} msgs per run, all 3 sfc members)\n`,
  );
  console.log("| mode | p50 (ms) per run | p99 (ms) per run | max (ms) |");
  console.log("|---|---|---|---|");
  const latRows = { reliable: [], bare: [] };
  for (let rep = 0; rep < 2; rep++) {
    for (const mode of rep % 2 === 0 ? ["reliable", "bare"] : ["bare", "reliable"]) {
      const t = topo[mode];
      const sender = await senderOf(t);
      const dest = { kind: "site", site: "sfc" };
      const receivers = receiversFor(t, sender, dest);
      const run = await runStream({ sender, receivers, dest, count: RATE * 3, size: 100, rate: RATE });
      const bad = check(run, RATE * 3);
      if (bad.length) console.error(`latency run (${mode}): ${bad.join("; ")}`);
      // p50 over all receivers' messages ~ median of the receivers' p50s; p99 = worst receiver.
      latRows[mode].push({
        p50: median(run.reports.map((r) => r.latency.p50)),
        p99: Math.max(...run.reports.map((r) => r.latency.p99)),
        max: Math.max(...run.reports.map((r) => r.latency.max)),
      });
    }
  }
  for (const mode of ["reliable", "bare"]) {
    const rs = latRows[mode];
    console.log(
      `| ${mode} | ${rs.map((r) => fmt(r.p50, 2)).join(", ")} | ${rs.map((r) => fmt(r.p99, 2)).join(", ")} | ${fmt(Math.max(...rs.map((r) => r.max)), 1)} |`,
    );
  }
}

// ---- 3. failover ----
if (!SKIP_FAILOVER) {
  const scenarios = [
    { name: "no kill (control: noise of this machine)", kind: "none" },
    { name: "nyc site master kill -9", kind: "sm", site: "nyc" },
    { name: "sfc site master kill -9", kind: "sm", site: "sfc" },
    { name: "router-1 kill -9", kind: "router" },
  ];
  const rows = [];
  for (const mode of ["reliable", "bare"]) {
    const t = topo[mode];
    for (const sc of scenarios) {
      const kills = mode === "reliable" ? KILLS : 1;
      for (let k = 0; k < kills; k++) {
        await t.waitReady(30_000);
        if (sc.kind === "router") await waitRouters(t, 2, 20_000);
        const sender = await senderOf(t);
        const dest = { kind: "site", site: "sfc" };
        const receivers = receiversFor(t, sender, dest);
        const victim =
          sc.kind === "sm" ? await t.siteMaster(sc.site) : sc.kind === "router" ? routers[0] : null;
        const count = FAIL_RATE * 4; // 1 s before the kill, 3 s after
        const run = await runStream({
          sender,
          receivers,
          dest,
          count,
          size: 100,
          rate: FAIL_RATE,
          stallMs: mode === "reliable" ? 15_000 : 4000,
          during: async () => {
            await sleep(1000);
            const killAt = nowMs();
            if (victim) await victim.kill("SIGKILL");
            return { killAt };
          },
        });
        const survivors = run.reports.filter((r) => r.name !== victim?.name);
        const bad = check({ reports: survivors }, count);
        const gap = Math.max(...survivors.map((r) => r.maxGap));
        // The most delayed message (sent around the kill): how long the failover held data back.
        const recovered = Math.max(...survivors.map((r) => r.latency.max ?? Number.NaN));
        const lost = survivors.reduce((n, r) => n + (count - r.count), 0);
        rows.push({
          mode,
          scenario: sc.name,
          victim: victim?.name ?? "-",
          gap,
          recovered,
          lost,
          ok: bad.length === 0,
          bad,
        });
        console.log(
          `  ${mode} ${sc.name} (${victim?.name ?? "-"}): largest gap at a surviving receiver ${fmt(gap, 0)} ms, most delayed message ${fmt(recovered, 0)} ms; ${bad.length ? `NOT exactly once in order: ${bad.join("; ")}` : `all ${survivors.length} surviving receivers got ${count}/${count} in order`}`,
        );
        // Replace what was killed.
        if (sc.kind === "router") await routers[0].start();
        else if (sc.kind === "sm") await t.addMember(sc.site);
      }
    }
  }
  console.log(`\n### Failover: gap in the receive timeline (steady ${FAIL_RATE} msgs/s nyc -> sfc, 100 B)\n`);
  console.log(
    "| scenario | mode | kills | largest gap per kill (ms) | median gap (ms) | most delayed message per kill (ms) | messages missing (sum over surviving receivers) | exactly once, in order |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const mode of ["reliable", "bare"]) {
    for (const sc of scenarios) {
      const rs = rows.filter((r) => r.mode === mode && r.scenario === sc.name);
      if (rs.length === 0) continue;
      console.log(
        `| ${sc.name} | ${mode} | ${rs.length} | ${rs.map((r) => fmt(r.gap, 0)).join(", ")} | ${fmt(median(rs.map((r) => r.gap)), 0)} | ${rs.map((r) => fmt(r.recovered, 0)).join(", ")} | ${rs.map((r) => r.lost).join(", ")} | ${rs.every((r) => r.ok) ? "yes" : `no (${rs.filter((r) => !r.ok).length} of ${rs.length})`} |`,
      );
    }
  }
}

/** Waits until every route of the topology goes through `n` routers (after a router restart). */
async function waitRouters(t, n, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = await Promise.all(t.alive().map((m) => m.request("status", {}, 5000).catch(() => null)));
    if (st.every((s) => s?.routes.every((r) => r.routers >= n))) return true;
    await sleep(200);
  }
  console.error(`  (routes did not get back to ${n} routers within ${timeoutMs} ms)`);
  return false;
}

const m1 = machine();
console.log(
  `\nload average at the end: ${m1.loadavg.join(" ")}; total ${((nowMs() - t0) / 1000).toFixed(0)} s`,
);
await topo.reliable.stop();
await topo.bare.stop();
await stopAll();
process.exit(0);
