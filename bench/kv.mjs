#!/usr/bin/env node
// Replicated maps (issue 11), on dist/ (`npm run build` first):
//   node bench/kv.mjs [--writes 20000] [--rates 1000,5000] [--steady-s 5] [--keys 100000] [--ae-ms 30000]
// One process: two GossipRouters and two sites (nyc x2, sfc x2) of real RelayChannels on
// loopback, a ReplicatedMap "bench" on every member (KvService). CPU is this process's user +
// system time (every router and member is in it) divided by the writes.
// 1. writes/s at 100 B and 1 KB values from one nyc member, at most --window writes unresolved:
//    "local" = every put resolved (applied and handed to the site), "replicated" = until sfc has
//    acknowledged every key (the writer's backlog for sfc empty); with ack "remote" separately.
// 2. replication lag at steady --rates writes/s for --steady-s seconds: write time (in the value)
//    to the moment an sfc member's watch sees it (same process: one clock), p50 / p99 / max; the
//    writer's RPO (pending keys and lag towards sfc) sampled every 50 ms.
// 3. state transfer: a member joining sfc when the map holds --keys keys (everything moves); and
//    anti-entropy between two stores of --keys keys of which 1 % differ (SyncSession over the kv
//    codec, in memory: time, entries and bytes each way).
// Prints Markdown tables.
import { performance } from "node:perf_hooks";
import { numberOption, stringOption } from "./lib/args.mjs";
import { machine, requireBuild } from "./lib/topology.mjs";

requireBuild();
const dist = new URL("../dist/runtime/", import.meta.url);
const { RelayChannel } = await import(new URL("relay/channel.js", dist));
const { GossipRouter } = await import(new URL("router/router.js", dist));
const { KvService } = await import(new URL("kv/service.js", dist));
const { MapStore } = await import(new URL("kv/store.js", dist));
const { HybridClock } = await import(new URL("kv/hlc.js", dist));
const { SyncSession, answerSync } = await import(new URL("kv/sync.js", dist));
const { encodeKvMessage, decodeKvMessage } = await import(new URL("kv/codec.js", dist));
const { pino } = await import("pino");

const WRITES = numberOption("writes", 20_000);
const WINDOW = numberOption("window", 1000);
const RATES = stringOption("rates", "1000,5000").split(",").map(Number);
const STEADY_S = numberOption("steady-s", 5);
const KEYS = numberOption("keys", 100_000);
/** The maps' antiEntropyIntervalMs (periodic syncs). */
const AE_MS = numberOption("ae-ms", 30_000);

const quiet = pino({ level: "silent" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const pct = (xs, p) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
async function until(what, pred, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`kv bench: timed out waiting for ${what}`);
    await sleep(5);
  }
}

class ListDiscovery {
  addresses = [];
  async find() {
    return [...this.addresses];
  }
}

const routers = [];
for (let i = 0; i < 2; i++) {
  const r = new GossipRouter({ port: 0, bind: "127.0.0.1", httpPort: null }, quiet);
  await r.start();
  routers.push(r);
}
const routerList = routers.map((r) => ({ host: "127.0.0.1", port: r.port }));
const discovery = { nyc: new ListDiscovery(), sfc: new ListDiscovery() };
const members = [];
async function join(site, name) {
  const channel = new RelayChannel({
    site,
    cluster: "kv-bench",
    name,
    discovery: discovery[site],
    routers: routerList,
    bindAddr: "127.0.0.1",
    bindPort: 0,
    clusterTuning: {
      heartbeatIntervalMs: 200,
      suspectTimeoutMs: 10_000,
      discoveryIntervalMs: 500,
      joinTimeoutMs: 600,
    },
    pollIntervalMs: 300,
    logger: quiet,
  });
  await channel.connect();
  discovery[site].addresses.push({ host: "127.0.0.1", port: channel.localMember.port });
  const kv = new KvService(channel, { logger: quiet });
  const codec = { encode: (v) => v, decode: (b) => b };
  const m = { channel, kv, map: kv.open("bench", { codec, antiEntropyIntervalMs: AE_MS }) };
  members.push(m);
  return m;
}
const [, nyc2, sfc1, sfc2] = [
  await join("nyc", "nyc-1"),
  await join("nyc", "nyc-2"),
  await join("sfc", "sfc-1"),
  await join("sfc", "sfc-2"),
];
await until("both sites visible everywhere", () =>
  members.every((m) => m.channel.topology().sites.length === 2 && m.channel.view?.members.length === 2),
);
await Promise.all(members.map((m) => m.map.ready));
const writer = nyc2; // not the coordinator: a plain member writing
const pendingSfc = () =>
  writer.map.status().backups.find((b) => b.site === "sfc") ?? { pendingKeys: 0, lagMs: null };

const m = machine();
console.log(
  `# kv bench — ${m.cpu}, ${m.nproc} vCPU, Node ${m.node}, load ${m.loadavg.join(" ")}, commit ${m.commit}\n`,
);

// 1. throughput
console.log("| value | ack | writes | local writes/s | replicated writes/s | CPU µs/write |");
console.log("|---|---|---|---|---|---|");
let round = 0;
for (const size of [100, 1024]) {
  for (const ack of ["local", "remote"]) {
    const n = ack === "remote" ? Math.min(WRITES, 5000) : WRITES;
    const value = Buffer.alloc(size, 0x61);
    const prefix = `t${round++}/`;
    const c0 = cpu();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: ack === "remote" ? Math.min(WINDOW, 256) : WINDOW }, async () => {
        while (next < n) await writer.map.put(`${prefix}${next++}`, value, { ack });
      }),
    );
    const t1 = performance.now();
    await until("sfc to acknowledge everything", () => pendingSfc().pendingKeys === 0);
    await until("sfc-2 to hold everything", () => sfc2.map.has(`${prefix}${n - 1}`));
    const t2 = performance.now();
    const us = ((cpu() - c0) / n) * 1e6;
    console.log(
      `| ${size} B | ${ack} | ${n} | ${Math.round(n / ((t1 - t0) / 1000))} | ${Math.round(n / ((t2 - t0) / 1000))} | ${us.toFixed(0)} |`,
    );
  }
}

// 2. lag at steady rates
console.log(
  "\n| rate (writes/s) | writes | lag p50 ms | lag p99 ms | lag max ms | RPO keys p50 / p99 / max | RPO lag p99 ms | CPU µs/write |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const rate of RATES) {
  const lags = [];
  const prefix = `r${rate}/`;
  const seen = sfc1.map.watch(prefix);
  const reading = (async () => {
    for await (const c of seen) {
      const sentAt = Buffer.from(c.value).readDoubleBE(0);
      lags.push(performance.now() - sentAt);
    }
  })();
  const rpoKeys = [];
  const rpoLag = [];
  const sampler = setInterval(() => {
    const b = pendingSfc();
    rpoKeys.push(b.pendingKeys);
    rpoLag.push(b.lagMs ?? 0);
  }, 50);
  const total = Math.round(rate * STEADY_S);
  const c0 = cpu();
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due) {
      const v = Buffer.alloc(100);
      v.writeDoubleBE(performance.now(), 0);
      void writer.map.put(`${prefix}${sent++}`, v);
    }
    await sleep(1);
  }
  await until("every steady write seen in sfc", () => lags.length >= total);
  clearInterval(sampler);
  await seen.return();
  await reading;
  const us = ((cpu() - c0) / total) * 1e6;
  console.log(
    `| ${rate} | ${total} | ${pct(lags, 50).toFixed(2)} | ${pct(lags, 99).toFixed(2)} | ${Math.max(...lags).toFixed(1)} | ${pct(rpoKeys, 50)} / ${pct(rpoKeys, 99)} / ${Math.max(...rpoKeys)} | ${pct(rpoLag, 99)} | ${us.toFixed(0)} |`,
  );
}

// 3. state transfer
console.log("\n| state transfer | keys | time ms | entries received | entries sent | bytes each way |");
console.log("|---|---|---|---|---|---|");
{
  const value = Buffer.alloc(100, 0x62);
  let next = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < KEYS) await writer.map.put(`s/${next++}`, value);
    }),
  );
  const total = writer.map.size;
  await until("sfc-2 to hold the whole map", () => sfc2.map.size === total, 300_000);
  const t0 = performance.now();
  const late = await join("sfc", "sfc-3");
  await late.map.ready;
  const ms = performance.now() - t0;
  const s = late.map.status().syncs;
  console.log(
    `| a member joins sfc (real channels; time includes joining) | ${late.map.size} | ${ms.toFixed(0)} | ${s.entriesReceived} | ${s.entriesSent} | — |`,
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
  const t0 = performance.now();
  session.start();
  const r = await session.result;
  const ms = performance.now() - t0;
  if (a.digest().root() !== b.digest().root()) throw new Error("kv bench: replicas differ after the sync");
  console.log(
    `| anti-entropy, 1 % differ (codec in memory, no network) | ${KEYS} | ${ms.toFixed(0)} | ${r.entriesReceived} | ${r.entriesSent} | ${(bytes.toB / 1024).toFixed(0)} KiB / ${(bytes.toA / 1024).toFixed(0)} KiB |`,
  );
}

for (const x of members) x.kv.close();
await Promise.allSettled(members.map((x) => x.channel.close()));
await Promise.allSettled(routers.map((r) => r.stop()));
process.exit(0);
