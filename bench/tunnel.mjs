// TunnelClient throughput through our router on loopback (runs on dist/: `npm run build` first).
// One sender, one receiver, unicast, back-pressure respected (wait for 'drain' when send() is false).
// Usage: node bench/tunnel.mjs [--msgs 200000] [--size 100] [--runs 3]. Prints one line per run and the median.
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import path from "node:path";
import { pino } from "pino";
import { numberOption } from "./lib/args.mjs";
import { DIST, Router } from "./lib/topology.mjs";

const { TunnelClient } = await import(path.join(DIST, "runtime/tunnel/index.js"));
const MSGS = numberOption("msgs", 200_000);
const SIZE = numberOption("size", 100);
const RUNS = numberOption("runs", 3);

const log = pino({ level: "silent" });
const router = await new Router("router").start();
const { port } = router;
const results = [];
try {
  for (let run = 0; run < RUNS; run++) {
    const mk = (name) =>
      new TunnelClient({
        routers: [{ host: "127.0.0.1", port }],
        group: "bench",
        localAddr: { kind: "uuid", uuid: randomUUID() },
        logicalName: name,
        logger: log,
      }).start();
    const [tx, rx] = [mk("tx"), mk("rx")];
    await Promise.all([tx.waitForRouters(1), rx.waitForRouters(1)]);
    let got = 0;
    const done = new Promise((resolve) =>
      rx.on("message", () => {
        if (++got === MSGS) resolve();
      }),
    );
    const payload = Buffer.alloc(SIZE, 1);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < MSGS; i++) {
      if (!tx.send(rx.options.localAddr, payload)) await once(tx, "drain");
    }
    await done;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const rate = Math.round(MSGS / secs);
    results.push(rate);
    console.log(`run ${run + 1}: ${MSGS} x ${SIZE} B in ${secs.toFixed(2)} s = ${rate} msgs/s`);
    await Promise.all([tx.close(), rx.close()]);
  }
} finally {
  await router.kill();
}
results.sort((a, b) => a - b);
console.log(
  `median: ${results[Math.floor(results.length / 2)]} msgs/s (${SIZE} B, ${MSGS} msgs, ${RUNS} runs)`,
);
