// Memory and descriptors of a real `relay router` process (dist, default flags), measured from
// /proc (issue 13, item 4): 50 connections each parking a partial 10 MiB frame, and clients
// beyond the open-file limit. Needs a build (`npm run build`).
import { afterEach, expect, jest, test } from "@jest/globals";
import { heartbeatFrame, registerFrame } from "../../runtime/protocol/frames.js";
import { requireBuild } from "../helpers/relay-cli.js";
import { waitFor } from "../helpers/wait.js";
import {
  httpGet,
  type RawSocket,
  rawSocket,
  rssBytes,
  type SpawnedRouter,
  sample,
  spawnRouter,
} from "./limits-util.js";
import { uuid } from "./util.js";

jest.setTimeout(120_000);
requireBuild();

const MiB = 1024 * 1024;
let router: SpawnedRouter | null = null;
const sockets: RawSocket[] = [];

afterEach(async () => {
  for (const s of sockets) s.socket.destroy();
  sockets.length = 0;
  await router?.stop();
  router = null;
});

test("attack: 50 connections each parking a partial 10 MiB frame keep the router's RSS growth under 128 MiB", async () => {
  // The issue: they take the router from 58 to 596 MiB RSS (its pod limit is 256 Mi).
  router = await spawnRouter([]);
  const r = router;
  const baseline = rssBytes(r.pid);
  let peak = baseline;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(r.pid));
    } catch {
      // exited: the assertions below say so
    }
  }, 50);
  const body = 10 * MiB;
  const almost = Buffer.alloc(body - 1, 0x61); // one byte short: the frame never completes
  const prefix = Buffer.alloc(5);
  prefix.writeInt32BE(body, 0);
  prefix[4] = 4; // MESSAGE
  try {
    for (let i = 0; i < 50; i++) {
      const s = await rawSocket(r.port);
      sockets.push(s);
      s.socket.write(registerFrame("park", uuid(i + 1), `p${i}`, null));
      s.socket.write(prefix);
      s.socket.write(almost.subarray(1));
    }
    // Every connection either got its bytes into the router or was cut by it.
    await waitFor(
      "all 50 partial frames delivered or cut",
      () => sockets.every((s) => s.closed || s.socket.writableLength === 0),
      { timeoutMs: 60_000 },
    );
    await new Promise((res) => setTimeout(res, 1_000));
    peak = Math.max(peak, rssBytes(r.pid));
  } finally {
    clearInterval(sampler);
  }
  const growth = peak - baseline;
  expect(growth).toBeLessThan(128 * MiB);
  const metrics = (await httpGet(r.httpPort, "/metrics"))!;
  expect(metrics.status).toBe(200);
  expect(
    sample(metrics.body, 'relay_router_connections_closed_total{reason="partial-frame-memory"}'),
  ).toBeGreaterThan(0);
  expect(sample(metrics.body, "relay_router_partial_frame_bytes")).toBeLessThanOrEqual(64 * MiB);
  expect(sockets.filter((s) => s.closed).length).toBeGreaterThan(0);
  // Still serving.
  const c = await rawSocket(r.port);
  sockets.push(c);
  c.socket.write(heartbeatFrame());
  await waitFor("a heartbeat answer", () => c.received > 0);
  process.stdout.write(
    `partial frames: RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak +${(growth / MiB).toFixed(0)} MiB\n`,
  );
});

test("attack: at the open-file limit the router sheds connections, logs it, and /metrics still answers", async () => {
  // The issue: at the fd limit new clients are closed and /metrics fails, silently.
  // 128 descriptors: with 64, Node's own start (its module loader keeps files open while it reads
  // them, more of them at once on a saturated machine) failed with EMFILE before the router ran.
  router = await spawnRouter([], 128);
  const r = router;
  expect(r.logs.some((l) => l.includes("--max-connections lowered to fit the open-file limit"))).toBe(true);
  const clients: RawSocket[] = [];
  for (let i = 0; i < 200; i++) {
    try {
      const s = await rawSocket(r.port);
      s.socket.write(registerFrame("many", uuid(i + 1), `m${i}`, null));
      clients.push(s);
      sockets.push(s);
    } catch {
      // refused at the TCP level: fine, it is shed
    }
  }
  await waitFor("the clients beyond the limit to be shed", () => clients.filter((s) => s.closed).length > 0);
  const health = await httpGet(r.httpPort, "/healthz");
  expect(health?.status).toBe(200);
  const metrics = await httpGet(r.httpPort, "/metrics");
  expect(metrics?.status).toBe(200);
  const refused = sample(metrics!.body, 'relay_router_refused_total{reason="max-connections"}') ?? 0;
  expect(refused).toBeGreaterThan(0);
  const limit = sample(metrics!.body, "relay_router_max_connections")!;
  expect(limit).toBeLessThan(128);
  expect(sample(metrics!.body, "relay_router_connections")).toBeLessThanOrEqual(limit);
  expect(r.logs.some((l) => l.includes('"connection refused"') && l.includes('"max-connections"'))).toBe(
    true,
  );
  // Once they leave, new clients get in again.
  for (const s of clients) s.socket.destroy();
  await waitFor(
    "the connections released",
    async () =>
      sample((await httpGet(r.httpPort, "/metrics"))?.body ?? "", "relay_router_open_sockets") === 0,
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  const again = await rawSocket(r.port);
  sockets.push(again);
  again.socket.write(heartbeatFrame());
  await waitFor("a heartbeat answer", () => again.received > 0);
});
