// What clients can make the router keep and serve (issue 13, item 4): a registration flood with
// long names no longer makes /metrics huge (per-group series only for the largest groups), names
// over the length limits and registrations over the router-wide caps are refused and counted, and
// one member that never reads no longer stalls the multicast of its group (congestion grace).
import { expect, jest, test } from "@jest/globals";
import { addressKey } from "../../runtime/protocol/codec.js";
import { messageFrame, registerFrame } from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import { largestGroups } from "../../runtime/router/metrics.js";
import { waitFor } from "../helpers/wait.js";
import { httpGet, sample } from "./limits-util.js";
import { routerHarness, type TestClient, uuid } from "./util.js";

jest.setTimeout(90_000);

const h = routerHarness();

test("largestGroups: the n largest, ties by name, in one pass", () => {
  const g = (name: string, size: number) => ({ name, members: { size } as Map<string, never> });
  const groups = [g("a", 1), g("b", 5), g("c", 3), g("d", 5), g("e", 2)];
  expect(largestGroups(groups, 3).map((x) => x.name)).toEqual(["b", "d", "c"]);
  expect(largestGroups(groups, 0)).toEqual([]);
  expect(largestGroups(groups, 10).map((x) => x.name)).toEqual(["b", "d", "c", "e", "a"]);
});

test("attack: 10,000 registrations with long names keep /metrics small; /healthz answers meanwhile", async () => {
  // The issue: 1,000 registrations with 60,000-character names make /metrics 57 MiB.
  const router = await h.start({ httpPort: 0 });
  const http = router.httpPort!;
  const long = (i: number) => `${"g".repeat(250)}${String(i).padStart(6, "0")}`; // 256: the longest allowed
  const clients: TestClient[] = [];
  for (let c = 0; c < 3; c++) clients.push(await h.client());
  let healthy = 0;
  let unanswered = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const res = await httpGet(http, "/healthz");
      if (res?.status === 200) healthy++;
      else unanswered++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  for (let i = 0; i < 10_000; i++) {
    const name = long(i);
    clients[i % 3]!.send(registerFrame(name, uuid(i + 1), name, null));
  }
  // And names far over the limit: refused, not stored.
  const huge = "x".repeat(60_000);
  for (let i = 0; i < 20; i++) clients[0]!.send(registerFrame(`${huge}${i}`, uuid(50_000 + i), huge, null));
  await waitFor("10,000 registrations", () => router.registry.size >= 10_000, { timeoutMs: 60_000 });
  // The refusals are counted as their frames are read, possibly after the last registration:
  // /metrics is read once all of them are.
  await waitFor("20 refusals", () => (router.stats().refused["group-name-too-long"] ?? 0) === 20, {
    timeoutMs: 30_000,
  });
  const metrics = await httpGet(http, "/metrics");
  expect(metrics?.status).toBe(200);
  const text = metrics!.body;
  expect(text.length).toBeLessThan(256 * 1024);
  expect(router.registry.size).toBe(10_000);
  probing = false;
  await probe;
  const series = text.split("\n").filter((l) => l.startsWith("relay_router_registrations{"));
  expect(series).toHaveLength(20);
  expect(sample(text, "relay_router_registrations_unlisted")).toBe(10_000 - 20);
  expect(sample(text, "relay_router_groups")).toBe(10_000);
  expect(sample(text, 'relay_router_refused_total{reason="group-name-too-long"}')).toBe(20);
  expect(healthy).toBeGreaterThan(0);
  expect(unanswered).toBe(0);
});

test("router-wide caps on groups and registrations, and the logical name length, refuse REGISTER", async () => {
  const router = await h.start({ maxGroups: 5, maxRegistrations: 8, maxLogicalNameLength: 16 });
  const c = await h.client();
  for (let i = 0; i < 7; i++) c.register(`g${i}`, uuid(i + 1)); // 2 over --max-groups
  await waitFor("max-groups refusals", () => router.stats().refused["max-groups"] === 2);
  expect(router.registry.groups.size).toBe(5);
  for (let i = 0; i < 5; i++) c.register("g0", uuid(100 + i)); // 8 in all: 2 over --max-registrations
  await waitFor("max-registrations refusals", () => router.stats().refused["max-registrations"] === 2);
  expect(router.registry.size).toBe(8);
  // At the caps, re-registering a member that is there still works (nothing grows).
  c.register("g0", uuid(1), "renamed");
  await waitFor(
    "the overwrite",
    () => router.registry.group("g0")!.members.get(addressKey(uuid(1)))?.logicalName === "renamed",
  );
  c.register("g0", uuid(1), "a-name-longer-than-sixteen");
  await waitFor("logical-name-too-long", () => router.stats().refused["logical-name-too-long"] === 1);
  expect(router.registry.group("g0")!.members.get(addressKey(uuid(1)))?.logicalName).toBe("renamed");
  expect(router.registry.size).toBe(8);
});

const PAYLOAD = Buffer.alloc(8 * 1024, 0x61);
const FRAMES = 3000; // ~24 MB: far more than the stuck member's queue and socket buffers hold

test("attack: a member that never reads does not stall the multicast of its group", async () => {
  // The issue: one member that never reads stalls a multicast group for 7.9-10 s at a time. Here
  // --slow-timeout is 60 s, so only the congestion grace can keep the group going.
  const router = await h.start({ maxQueueBytes: 64 * 1024, slowTimeoutMs: 60_000, congestionGraceMs: 500 });
  const [sender, reader, stuck] = [await h.client(), await h.client(), await h.client()];
  sender.register("g", uuid(1));
  reader.register("g", uuid(2));
  stuck.register("g", uuid(3));
  await h.registered(3);
  stuck.socket.pause();
  const done = (async () => {
    for (let i = 0; i < FRAMES; i++) {
      const payload = Buffer.from(PAYLOAD);
      payload.writeUInt32BE(i, 0);
      if (!sender.socket.write(messageFrame("g", null, uuid(1), payload))) {
        await new Promise<void>((resolve) => sender.socket.once("drain", () => resolve()));
      }
    }
  })();
  // Well before --slow-timeout (60 s): without the grace the sender stays paused until then.
  await reader.waitType(GossipType.Message, FRAMES, 30_000);
  await done;
  const seq = reader.ofType(GossipType.Message).map((d) => Buffer.from(d.payload).readUInt32BE(0));
  expect(seq).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
  const stats = router.stats();
  expect(stats.congestionSheds).toBeGreaterThanOrEqual(1);
  expect(stats.undelivered["receiver-congested"]).toBeGreaterThan(0);
  expect(stats.slowReceiverDisconnects).toBe(0);
  expect(stuck.closed || stuck.ended).toBe(false);
  // The stuck member gets what was queued before the drops once it reads again, in order.
  stuck.socket.resume();
  await waitFor("the stuck member to drain", () => router.flowStats().queuedBytes === 0, {
    timeoutMs: 30_000,
  });
  const got = stuck.ofType(GossipType.Message).map((d) => Buffer.from(d.payload).readUInt32BE(0));
  expect(got.length).toBeLessThan(FRAMES);
  expect([...got].sort((a, b) => a - b)).toEqual(got);
});

test("unicast keeps back-pressure past the congestion grace: nothing dropped", async () => {
  const router = await h.start({ maxQueueBytes: 64 * 1024, slowTimeoutMs: 60_000, congestionGraceMs: 200 });
  const [sender, receiver] = [await h.client(), await h.client()];
  sender.register("g", uuid(1));
  receiver.register("g", uuid(2));
  await h.registered(2);
  receiver.socket.pause();
  const done = (async () => {
    for (let i = 0; i < FRAMES; i++) {
      const payload = Buffer.from(PAYLOAD);
      payload.writeUInt32BE(i, 0);
      if (!sender.socket.write(messageFrame("g", uuid(2), uuid(1), payload))) {
        await new Promise<void>((resolve) => sender.socket.once("drain", () => resolve()));
      }
    }
  })();
  await waitFor("the sender paused", () => router.flowStats().pausedSenders >= 1, { timeoutMs: 10_000 });
  await waitFor("the grace to pass", () => router.stats().congestionSheds >= 1, { timeoutMs: 10_000 });
  await new Promise((r) => setTimeout(r, 500));
  expect(router.flowStats().pausedSenders).toBeGreaterThanOrEqual(1); // paused again by its next unicast
  receiver.socket.resume();
  await done;
  await receiver.waitType(GossipType.Message, FRAMES, 60_000);
  const seq = receiver.ofType(GossipType.Message).map((d) => Buffer.from(d.payload).readUInt32BE(0));
  expect(seq).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
  expect(router.stats().undelivered).toEqual({});
});
