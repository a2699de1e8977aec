#!/usr/bin/env node
// Replicated maps (issue 11), on dist/ (`npm run build` first):
//   node bench/kv.mjs [--writes 20000] [--rates 1000,5000] [--steady-s 5] [--keys 100000] [--ae-ms 30000]
//                     [--probe-ms 5000] [--sections 1,2,3,4]
// Every component in its own process, as in production: two routers (`relay router`) and two
// sites (nyc x2, sfc x2) of bench members (bench/lib/member.mjs: a RelayChannel with a KvService
// and the map "bench") on loopback. CPU is user + system time of all six processes (from /proc)
// divided by the writes.
// 1. writes/s at 100 B and 1 KB values from one nyc member, at most --window writes unresolved:
//    "local" = every put resolved (applied and handed to the site), "replicated" = until sfc has
//    acknowledged every key (the writer's backlog for sfc empty); with ack "remote" separately.
// 2. replication lag at steady --rates writes/s for --steady-s seconds: write time (CLOCK_MONOTONIC
//    in the value, the same clock in every process) to the moment an sfc member's watch sees it,
//    p50 / p99 / max; the writer's RPO (pending keys and lag towards sfc) sampled every 50 ms.
// 3. state transfer: a member joining sfc when the map holds --keys keys (everything moves); and
//    anti-entropy between two stores of --keys keys of which 1 % differ (SyncSession over the kv
//    codec, in memory: time, entries and bytes each way).
// 4. anti-entropy over the network: a fresh topology whose map holds --keys keys in both sites;
//    both routers killed, nyc's coordinator takes sfc offline (one write unacknowledged) and then
//    overwrites 1 % of the keys (left to anti-entropy), the routers come back; the time until every
//    member of both sites holds one digest, until sfc is online again at nyc (probed every
//    --probe-ms, the maps' anti-entropy period here), and the entries the syncs moved.
// Prints Markdown tables.
import { numberOption, stringOption } from "./lib/args.mjs";
import {
  BenchTopology,
  cpuSeconds,
  DIST,
  machine,
  newLogDir,
  nowMs,
  pct,
  Router,
  requireBuild,
  stopAll,
  waitUntil,
} from "./lib/topology.mjs";

requireBuild();
const dist = new URL(`file://${DIST}/runtime/`);
const { MapStore } = await import(new URL("kv/store.js", dist));
const { HybridClock } = await import(new URL("kv/hlc.js", dist));
const { SyncSession, answerSync } = await import(new URL("kv/sync.js", dist));
const { encodeKvMessage, decodeKvMessage } = await import(new URL("kv/codec.js", dist));

const WRITES = numberOption("writes", 20_000);
const WINDOW = numberOption("window", 1000);
const RATES = stringOption("rates", "1000,5000").split(",").map(Number);
const STEADY_S = numberOption("steady-s", 5);
const KEYS = numberOption("keys", 100_000);
/** The maps' antiEntropyIntervalMs (periodic syncs). */
const AE_MS = numberOption("ae-ms", 30_000);
/** Which of the sections below to run (the topology of 1-3 starts anyway). */
const SECTIONS = new Set(stringOption("sections", "1,2,3,4").split(",").map(Number));
/** Section 4: the maps' antiEntropyIntervalMs there, which is also how often an offline site is probed. */
const PROBE_MS = numberOption("probe-ms", 5000);

const logDir = newLogDir("kv-bench-");
const routers = [new Router("router-1", logDir), new Router("router-2", logDir)];
await Promise.all(routers.map((r) => r.start()));
/** nyc x2 + sfc x2 on the routers, every member hosting the map "bench" with `options`. */
const kvTopology = (cluster, options) =>
  new BenchTopology({
    sites: [
      { site: "nyc", members: 2 },
      { site: "sfc", members: 2 },
    ],
    routers,
    cluster,
    bridgeGroup: `${cluster}-bridge`,
    reliable: true,
    record: false,
    logDir,
    kv: { map: "bench", options },
  });
const topo = kvTopology("kv-bench", { antiEntropyIntervalMs: AE_MS });
await topo.start();
const writer = await topo.youngest("nyc"); // not the coordinator: a plain member writing
const [sfc1, sfc2] = topo.alive("sfc");
const status = (m, key) => m.request("kvStatus", key === undefined ? {} : { key });
const pendingSfc = async () => (await status(writer)).backups.find((b) => b.site === "sfc")?.pendingKeys ?? 0;
const processes = () => [...routers, ...topo.alive()];
/** CPU seconds of every router and member process so far. */
const cpuAll = () => processes().reduce((sum, p) => sum + (cpuSeconds(p.pid) ?? 0), 0);
/** CPU seconds per process name so far (the steady runs print where the time went). */
const cpuBy = () => new Map(processes().map((p) => [p.name, cpuSeconds(p.pid) ?? 0]));

const m = machine();
console.log(
  `# kv bench — ${m.cpu}, ${m.nproc} vCPU, Node ${m.node}, load ${m.loadavg.join(" ")}, commit ${m.commit}; writer ${writer.name}\n`,
);

// 1. throughput
if (SECTIONS.has(1)) {
  console.log("| value | ack | writes | local writes/s | replicated writes/s | CPU µs/write |");
  console.log("|---|---|---|---|---|---|");
  let round = 0;
  for (const size of [100, 1024]) {
    for (const ack of ["local", "remote"]) {
      const n = ack === "remote" ? Math.min(WRITES, 5000) : WRITES;
      const prefix = `t${round++}/`;
      const c0 = cpuAll();
      const window = ack === "remote" ? Math.min(WINDOW, 256) : WINDOW;
      const r = await writer.request("kvBulk", { prefix, count: n, size, window, ack }, 300_000);
      await waitUntil("sfc to acknowledge everything", async () => (await pendingSfc()) === 0, 120_000);
      await waitUntil(
        "sfc-2 to hold everything",
        async () => (await status(sfc2, `${prefix}${n - 1}`)).has,
        120_000,
      );
      const t2 = nowMs();
      const us = ((cpuAll() - c0) / n) * 1e6;
      console.log(
        `| ${size} B | ${ack} | ${n} | ${Math.round(n / ((r.endAt - r.startAt) / 1000))} | ${Math.round(n / ((t2 - r.startAt) / 1000))} | ${us.toFixed(0)} |`,
      );
    }
  }
}

// 2. lag at steady rates
if (SECTIONS.has(2)) {
  console.log(
    "\n| rate (writes/s) | writes | lag p50 ms | lag p99 ms | lag max ms | RPO keys p50 / p99 / max | RPO lag p99 ms | CPU µs/write |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  const perProcess = [];
  for (const rate of RATES) {
    const prefix = `r${rate}/`;
    await sfc1.request("kvWatch", { prefix });
    const total = Math.round(rate * STEADY_S);
    const c0 = cpuAll();
    const by0 = cpuBy();
    const r = await writer.request("kvSteady", { prefix, rate, count: total, size: 100 }, 300_000);
    if (r.refused > 0) console.log(`(${r.refused} writes refused)`);
    await waitUntil(
      "every steady write seen in sfc",
      async () => (await sfc1.request("kvLags", { prefix })).count >= total,
      120_000,
    );
    const us = ((cpuAll() - c0) / total) * 1e6;
    const by = [...cpuBy()].map(
      ([name, c]) => `${name} ${(((c - (by0.get(name) ?? 0)) / total) * 1e6).toFixed(0)}`,
    );
    perProcess.push(`${rate} writes/s: ${by.join(", ")}`);
    const { lags } = await sfc1.request("kvLags", { prefix, stop: true });
    console.log(
      `| ${rate} | ${total} | ${pct(lags, 50).toFixed(2)} | ${pct(lags, 99).toFixed(2)} | ${Math.max(...lags).toFixed(1)} | ${pct(r.rpoKeys, 50)} / ${pct(r.rpoKeys, 99)} / ${Math.max(...r.rpoKeys)} | ${pct(r.rpoLag, 99)} | ${us.toFixed(0)} |`,
    );
  }

  console.log(`\nCPU µs per write by process: ${perProcess.join("; ")}`);
}

// 3. state transfer
if (SECTIONS.has(3)) {
  console.log("\n| state transfer | keys | time ms | entries received | entries sent | bytes each way |");
  console.log("|---|---|---|---|---|---|");
  {
    await writer.request(
      "kvBulk",
      { prefix: "s/", count: KEYS, size: 100, window: WINDOW, ack: "local" },
      600_000,
    );
    const total = (await status(writer)).size;
    await waitUntil("sfc-2 to hold the whole map", async () => (await status(sfc2)).size === total, 300_000);
    const t0 = nowMs();
    const late = await topo.addMember("sfc"); // up once its map is ready
    const ms = nowMs() - t0;
    const s = await status(late);
    console.log(
      `| a member joins sfc (own process; time includes starting and joining) | ${s.size} | ${ms.toFixed(0)} | ${s.syncs.entriesReceived} | ${s.syncs.entriesSent} | — |`,
    );
  }
  {
    const t = { now: Date.now() };
    const clock = () => new HybridClock({ now: () => t.now });
    const a = new MapStore({ site: "nyc", member: "a", clock: clock(), now: () => t.now });
    const b = new MapStore({ site: "sfc", member: "b", clock: clock(), now: () => t.now });
    const value = Buffer.alloc(100, 1);
    for (let i = 0; i < KEYS; i++) b.apply(a.put(`key-${i}`, value));
    t.now += 1000;
    for (let i = 0; i < KEYS / 100; i += 2) a.put(`key-${i * 97}`, Buffer.from("a"));
    for (let i = 1; i < KEYS / 100; i += 2) b.put(`key-${i * 97}`, Buffer.from("b"));
    const bytes = { toB: 0, toA: 0 };
    let session;
    session = new SyncSession({
      session: 1,
      map: "bench",
      store: a,
      peer: {
        send: async (msg) => {
          const req = encodeKvMessage(msg);
          bytes.toB += req.length;
          const decoded = decodeKvMessage(req);
          queueMicrotask(() => {
            for (const ans of answerSync(b, decoded, 256 * 1024)) {
              const wire = encodeKvMessage(ans);
              bytes.toA += wire.length;
              session.onMessage(decodeKvMessage(wire), t.now);
            }
          });
        },
      },
      apply: (e) => a.apply(e) !== null,
      push: async (entries) => {
        const wire = encodeKvMessage({ type: "update", map: "bench", batch: 0, entries });
        bytes.toB += wire.length;
        const msg = decodeKvMessage(wire);
        for (const e of msg.entries) b.apply(e);
      },
      stepTimeoutMs: 60_000,
      now: t.now,
    });
    const t0 = nowMs();
    session.start();
    const r = await session.result;
    const ms = nowMs() - t0;
    if (a.digest().root() !== b.digest().root()) throw new Error("kv bench: replicas differ after the sync");
    console.log(
      `| anti-entropy, 1 % differ (codec in memory, no network) | ${KEYS} | ${ms.toFixed(0)} | ${r.entriesReceived} | ${r.entriesSent} | ${(bytes.toB / 1024).toFixed(0)} KiB / ${(bytes.toA / 1024).toFixed(0)} KiB |`,
    );
  }
}

await topo.stop();

// 4. anti-entropy over the network
if (SECTIONS.has(4)) {
  // Offline soon after the routers go (two resends 300 ms apart or 1.5 s), probed every PROBE_MS.
  const ae = kvTopology("kv-bench-ae", {
    antiEntropyIntervalMs: PROBE_MS,
    resendAfterMs: 300,
    offlineAfterResends: 2,
    offlineAfterMs: 1500,
  });
  await ae.start();
  const coord = await ae.siteMaster("nyc");
  const all = ae.alive();
  const sfcAt = async () => (await status(coord)).backups.find((b) => b.site === "sfc");
  const digests = async () => new Set((await Promise.all(all.map((x) => status(x)))).map((s) => s.digest));
  await coord.request(
    "kvBulk",
    { prefix: "k/", count: KEYS, size: 100, window: WINDOW, ack: "local" },
    600_000,
  );
  await waitUntil(
    "one digest everywhere",
    async () => (await digests()).size === 1 && (await status(all.at(-1))).size === KEYS,
    300_000,
  );
  const before = await Promise.all(all.map((x) => status(x)));
  await Promise.all(routers.map((r) => r.kill()));
  // One write finds sfc silent and takes it offline (the channel still delivers that one when the
  // routers are back: it holds what it was given); the 1 % written after that are left to the syncs.
  await coord.request("kvBulk", { prefix: "trigger/", count: 1, size: 100, window: 1, ack: "local" });
  await waitUntil("sfc offline at nyc's coordinator", async () => (await sfcAt())?.online === false, 60_000);
  const differ = Math.floor(KEYS / 100);
  await coord.request(
    "kvBulk",
    { prefix: "k/", count: differ, stride: 100, size: 100, window: 100, ack: "local", fill: 0x62 },
    60_000,
  );
  await Promise.all(routers.map((r) => r.start()));
  const t0 = nowMs();
  // Either side may start the sync that converges them: sfc's coordinator never saw nyc offline
  // and syncs every PROBE_MS; nyc's syncs at once when sfc answers its probe.
  let online = null;
  let one = null;
  await waitUntil(
    "sfc online again at nyc's coordinator, and one digest at every member of both sites",
    async () => {
      if (online === null && (await sfcAt())?.online === true) online = nowMs();
      if (one === null && (await digests()).size === 1) one = nowMs();
      return online !== null && one !== null;
    },
    120_000,
  );
  const after = await Promise.all(all.map((x) => status(x)));
  const moved = after.map((s, i) => ({
    received: s.syncs.entriesReceived - before[i].syncs.entriesReceived,
    sent: s.syncs.entriesSent - before[i].syncs.entriesSent,
  }));
  const received = moved.reduce((n, x) => n + x.received, 0);
  const sent = moved.reduce((n, x) => n + x.sent, 0);
  console.log(
    "\n| anti-entropy over the network | keys | differ | routers back → one digest ms | routers back → sfc online at nyc ms | entries received / sent by the syncs |",
  );
  console.log("|---|---|---|---|---|---|");
  console.log(
    `| 4 members, 2 routers (own processes) | ${KEYS} | ${differ} | ${(one - t0).toFixed(0)} | ${(online - t0).toFixed(0)} | ${received} / ${sent} |`,
  );
  await ae.stop();
}

await stopAll();
process.exit(0);
