#!/usr/bin/env node
// Cost of the delivery guarantee (docs/DELIVERY.md), on loopback (needs `npm run build`). Prints
// figures only; writes nothing.
//   node bench/delivery.mjs [--runs 3] [--count 20000]
// Two routers (`relay router` child processes); in this process: nyc-1 (site master), nyc-2 (the
// sender), sfc-1 (site master), sfc-2, sfc-3. nyc-2 sends --count messages to site sfc as fast as
// back-pressure allows; the time runs until all 3 sfc members have them all. Each run measures the
// guarantee on (reliable) and off (bare relay, like JGroups RELAY2) back to back, in a fresh world
// each, for 100 B and 1 KB payloads; the ratio reliable/bare is computed per run.
// All channels share this process's one thread: absolute figures are lower than with one process
// per member; the ratio is the point.
import path from "node:path";
import { numberOption } from "./lib/args.mjs";
import { DIST, freePort, Router, sleep, waitUntil } from "./lib/topology.mjs";

const { RelayChannel } = await import(path.join(DIST, "runtime/relay/channel.js"));
const { StaticDiscovery } = await import(path.join(DIST, "runtime/cluster/discovery.js"));
const { pino } = await import("pino");

const RUNS = numberOption("runs", 3);
const COUNT = numberOption("count", 20000);
const quiet = pino({ level: "silent" });

async function world(routers, reliable) {
  const sites = { nyc: 2, sfc: 3 };
  const chans = {};
  for (const [site, n] of Object.entries(sites)) {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push(await freePort());
    const members = ports.map((p) => `127.0.0.1[${p}]`).join(",");
    chans[site] = ports.map(
      (port, i) =>
        new RelayChannel({
          site,
          cluster: "bench",
          name: `${site}-${i + 1}`,
          discovery: new StaticDiscovery(members),
          routers: routers.map((r) => ({ host: "127.0.0.1", port: r.port })),
          bindAddr: "127.0.0.1",
          bindPort: port,
          pollIntervalMs: 500,
          reliable,
          logger: quiet,
        }),
    );
    await chans[site][0].connect();
    await Promise.all(chans[site].slice(1).map((c) => c.connect()));
  }
  const all = [...chans.nyc, ...chans.sfc];
  await waitUntil("both sites visible", () =>
    all.every((c) => c.view?.members.length === sites[c.site] && c.topology().routes.some((r) => r.up)),
  );
  return { chans, all };
}

async function measure(routers, reliable, size) {
  const w = await world(routers, reliable);
  const sender = w.chans.nyc[1];
  const got = new Map(w.chans.sfc.map((c) => [c.name, 0]));
  for (const c of w.chans.sfc)
    c.on("message", (m) => m.from.name === "nyc-2" && got.set(c.name, got.get(c.name) + 1));
  const payload = Buffer.alloc(size, 0x61);
  const start = performance.now();
  let i = 0;
  let waits = 0;
  while (i < COUNT) {
    try {
      sender.sendToSite("sfc", payload);
      i++;
      if (i % 128 === 0) await new Promise(setImmediate);
    } catch (err) {
      if (err.code !== "BUFFER_FULL") throw err;
      waits++;
      if (!sender.writable) await Promise.race([new Promise((r) => sender.once("drain", r)), sleep(1000)]);
      else await sleep(1); // the local cluster's link is full
    }
  }
  let last = -1;
  let lastChange = performance.now();
  const total = () => [...got.values()].reduce((a, b) => a + b, 0);
  while (total() < 3 * COUNT && performance.now() - lastChange < 3000) {
    if (total() !== last) {
      last = total();
      lastChange = performance.now();
    }
    await sleep(5);
  }
  const delivered = Math.min(...got.values());
  const elapsed = (total() < 3 * COUNT ? lastChange : performance.now()) - start;
  await Promise.all(w.all.map((c) => c.close()));
  const retransmitted = sender.stats().retransmitted;
  return {
    msgs: Math.round((delivered / elapsed) * 1000),
    delivered,
    waits,
    retransmitted,
    elapsed: Math.round(elapsed),
  };
}

const routers = [await new Router("r1").start(), await new Router("r2").start()];
try {
  console.log(`count ${COUNT}, runs ${RUNS}, node ${process.version}`);
  for (const size of [100, 1024]) {
    for (let run = 1; run <= RUNS; run++) {
      const on = await measure(routers, true, size);
      const off = await measure(routers, false, size);
      const mb = (r) => ((r.msgs * size) / 1e6).toFixed(1);
      console.log(
        `${size} B run ${run}: reliable ${on.msgs} msg/s (${mb(on)} MB/s, delivered ${on.delivered}/${COUNT}, waits ${on.waits}, retransmitted ${on.retransmitted}) | ` +
          `bare ${off.msgs} msg/s (${mb(off)} MB/s, delivered ${off.delivered}/${COUNT}) | ratio ${(on.msgs / off.msgs).toFixed(2)}`,
      );
    }
  }
} finally {
  for (const r of routers) await r.kill();
}
process.exit(0);
