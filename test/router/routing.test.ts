// Registration, unicast, multicast (sender included), unregister, several registrations per
// connection, GET_MBRS and HEARTBEAT against the in-process router on loopback.

import { addressKey } from "../../runtime/protocol/codec.js";
import {
  getMbrsFrame,
  heartbeatFrame,
  messageFrame,
  suspectFrame,
  unregisterFrame,
} from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import { waitFor } from "../helpers/wait.js";
import { ip, routerHarness, sleep, uuid } from "./util.js";

const h = routerHarness({});

test("unicast goes to the destination only, byte-identical", async () => {
  const [a, b, c] = [await h.client(), await h.client(), await h.client()];
  a.register("chat", uuid(1), "a", ip(7001));
  b.register("chat", uuid(2), "b", ip(7002));
  c.register("chat", uuid(3), "c", ip(7003));
  await h.registered(3);
  const sent = a.message("chat", uuid(2), uuid(1), "to b");
  await b.waitType(GossipType.Message);
  expect(b.received[0]!.raw.equals(sent)).toBe(true);
  await sleep(50);
  expect(a.received).toHaveLength(0);
  expect(c.received).toHaveLength(0);
});

test("multicast reaches every member, the sender included, and nobody else", async () => {
  const [a, b, other] = [await h.client(), await h.client(), await h.client()];
  a.register("chat", uuid(1), "a");
  b.register("chat", uuid(2), "b");
  other.register("other", uuid(3), "x");
  await h.registered(3);
  const sent = a.message("chat", null, uuid(1), "hello all");
  await a.waitType(GossipType.Message);
  await b.waitType(GossipType.Message);
  expect(a.received[0]!.hex).toBe(sent.toString("hex"));
  expect(b.received[0]!.hex).toBe(sent.toString("hex"));
  await sleep(50);
  expect(other.received).toHaveLength(0);
});

test("unknown group or destination is not forwarded and is counted", async () => {
  const [a, b] = [await h.client(), await h.client()];
  a.register("chat", uuid(1));
  b.register("chat", uuid(2));
  await h.registered(2);
  a.message("nope", null, uuid(1), "x");
  a.message("chat", uuid(99), uuid(1), "y");
  a.message("chat", uuid(2), uuid(1), "z");
  await b.waitType(GossipType.Message);
  expect(b.texts()).toEqual(["z"]);
  expect(h.router.stats().undelivered).toEqual({ "unknown-group": 1, "unknown-dest": 1 });
});

test("many frames keep their order per sender (route cache, coalesced writes)", async () => {
  const [a, b] = [await h.client(), await h.client()];
  a.register("g", uuid(1));
  b.register("g", uuid(2));
  await h.registered(2);
  const n = 5000;
  for (let i = 0; i < n; i++) a.message("g", i % 2 ? uuid(2) : null, uuid(1), `m${i}`);
  await b.waitType(GossipType.Message, n, 10_000);
  expect(b.texts()).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
  await a.waitType(GossipType.Message, n / 2, 10_000);
  expect(a.texts()).toEqual(Array.from({ length: n / 2 }, (_, i) => `m${2 * i}`));
});

test("UNREGISTER removes the member (group deleted when empty), keeps the connection, sends no SUSPECT", async () => {
  const [a, b] = [await h.client(), await h.client()];
  a.register("chat", uuid(1));
  b.register("chat", uuid(2));
  await h.registered(2);
  b.send(unregisterFrame("chat", uuid(2)));
  await h.registered(1);
  a.message("chat", uuid(2), uuid(1), "gone");
  a.send(unregisterFrame("chat", uuid(1)));
  await h.registered(0);
  expect(h.router.registry.groups.size).toBe(0);
  // Still connected: b can register again and receive.
  b.register("chat", uuid(2));
  a.register("chat", uuid(1));
  await h.registered(2);
  a.message("chat", uuid(2), uuid(1), "back");
  await b.waitType(GossipType.Message);
  expect(b.texts()).toEqual(["back"]);
  expect(a.ofType(GossipType.Suspect)).toHaveLength(0);
  expect(b.ofType(GossipType.Suspect)).toHaveLength(0);
});

test("REGISTER of the same member overwrites: the newest connection receives", async () => {
  const [a, b1, b2] = [await h.client(), await h.client(), await h.client()];
  a.register("chat", uuid(1));
  b1.register("chat", uuid(2), "old");
  await h.registered(2);
  b2.register("chat", uuid(2), "new");
  await waitFor("group", () => h.router.registry.group("chat")?.members.values().next() !== undefined);
  await waitFor("overwrite", () =>
    [...h.router.registry.group("chat")!.members.values()].some((r) => r.logicalName === "new"),
  );
  expect(h.router.registry.size).toBe(2);
  a.message("chat", uuid(2), uuid(1), "hi");
  await b2.waitType(GossipType.Message);
  await sleep(50);
  expect(b1.received).toHaveLength(0);
});

test("several registrations on one connection: unicast to each, one multicast copy per registration (as JGroups)", async () => {
  const [multi, a] = [await h.client(), await h.client()];
  multi.register("g1", uuid(10), "m10");
  multi.register("g1", uuid(11), "m11");
  multi.register("g2", uuid(12), "m12");
  a.register("g1", uuid(1), "a");
  a.register("g2", uuid(1), "a");
  await h.registered(5);
  a.message("g1", uuid(10), uuid(1), "u10");
  a.message("g1", uuid(11), uuid(1), "u11");
  a.message("g2", uuid(12), uuid(1), "u12");
  a.message("g2", null, uuid(1), "mc2");
  a.message("g1", null, uuid(1), "mc1");
  await multi.waitType(GossipType.Message, 6);
  // g1 has two registrations on `multi`: JGroups sendToAllMembersInGroup writes once per entry.
  expect(multi.texts()).toEqual(["u10", "u11", "u12", "mc2", "mc1", "mc1"]);
  await a.waitType(GossipType.Message, 2);
  expect(a.texts()).toEqual(["mc2", "mc1"]);
});

test("GET_MBRS for one group: one GET_MBRS_RSP_LAST with every member in registration order", async () => {
  const [a, b, q] = [await h.client(), await h.client(), await h.client()];
  a.register("chat", uuid(1), "alice", ip(7001));
  b.register("chat", uuid(2), "bøb", ip(7002));
  b.register("other", uuid(3), "x", ip(7003));
  await h.registered(3);
  q.send(getMbrsFrame("chat"));
  const [rsp] = await q.waitType(GossipType.GetMbrsRspLast);
  expect(rsp!.group).toBe("chat");
  expect(rsp!.pingData.map((p) => [p.member, p.logicalName, p.physicalAddr, p.flags, p.mbrs])).toEqual([
    [uuid(1), "alice", ip(7001), 1, null],
    [uuid(2), "bøb", ip(7002), 1, null],
  ]);
  expect(q.received).toHaveLength(1);
});

test("GET_MBRS for all groups: one frame per group, only the last is GET_MBRS_RSP_LAST", async () => {
  const [a, q] = [await h.client(), await h.client()];
  a.register("g1", uuid(1), "a");
  a.register("g2", uuid(2), "b");
  a.register("g3", uuid(3), "c");
  await h.registered(3);
  q.send(getMbrsFrame(null));
  await q.waitType(GossipType.GetMbrsRspLast);
  expect(q.received.map((r) => [r.data!.type, r.data!.group, r.data!.pingData.length])).toEqual([
    [GossipType.GetMbrsRsp, "<<all-groups>>:g1", 1],
    [GossipType.GetMbrsRsp, "<<all-groups>>:g2", 1],
    [GossipType.GetMbrsRspLast, "<<all-groups>>:g3", 1],
  ]);
});

test("GET_MBRS for an unknown group, or all groups when there are none: an empty GET_MBRS_RSP_LAST", async () => {
  const q = await h.client();
  q.send(getMbrsFrame(null));
  q.send(getMbrsFrame("nobody"));
  await q.waitType(GossipType.GetMbrsRspLast, 2);
  expect(q.received.map((r) => [r.data!.type, r.data!.group, r.data!.pingData.length])).toEqual([
    [GossipType.GetMbrsRspLast, null, 0],
    [GossipType.GetMbrsRspLast, "nobody", 0],
  ]);
});

test("HEARTBEAT is answered with the canonical HEARTBEAT frame on the same connection", async () => {
  const [a, b] = [await h.client(), await h.client()];
  a.send(heartbeatFrame(), heartbeatFrame());
  await a.waitFrames(2);
  const hb = "0000000c050001010000000100000000";
  expect(a.received.map((r) => r.hex)).toEqual([hb, hb]);
  await sleep(30);
  expect(b.received).toHaveLength(0);
});

test("GET_MBRS_RSP / GET_MBRS_RSP_LAST / SUSPECT sent to the router are ignored and counted", async () => {
  const [a, b] = [await h.client(), await h.client()];
  a.register("chat", uuid(1));
  b.register("chat", uuid(2));
  await h.registered(2);
  a.send(suspectFrame("chat", uuid(2)));
  a.message("chat", uuid(2), uuid(1), "after");
  await b.waitType(GossipType.Message);
  expect(b.received).toHaveLength(1);
  expect(h.router.stats().ignored).toEqual({ "response-type": 1 });
  expect(h.router.registry.size).toBe(2);
});

test("frames split at every byte boundary are routed like whole ones (unicast and multicast)", async () => {
  const [a, b, c] = [await h.client(), await h.client(), await h.client()];
  b.register("g", uuid(2));
  c.register("g", uuid(3));
  await h.registered(2);
  const frames = [0, 1, 2].map((i) =>
    messageFrame("g", i === 1 ? uuid(2) : null, uuid(1), Buffer.from(`slow${i}`)),
  );
  const bytes = Buffer.concat(frames);
  for (let i = 0; i < bytes.length; i++) {
    a.socket.write(bytes.subarray(i, i + 1));
    if (i % 7 === 0) await sleep(1);
  }
  await b.waitType(GossipType.Message, 3);
  await c.waitType(GossipType.Message, 2);
  const hex = frames.map((f) => f.toString("hex"));
  expect(b.received.map((r) => r.hex)).toEqual(hex);
  expect(c.received.map((r) => r.hex)).toEqual([hex[0], hex[2]]);
});

test("registrations per connection are bounded; re-registering at the limit still overwrites", async () => {
  const { MAX_REGISTRATIONS_PER_CONNECTION: max } = await import("../../runtime/router/router.js");
  const { registerFrame } = await import("../../runtime/protocol/frames.js");
  const greedy = await h.client();
  const frames: Buffer[] = [];
  for (let i = 0; i < max + 10; i++) frames.push(registerFrame("g", uuid(100 + i), null, null));
  greedy.send(Buffer.concat(frames));
  await waitFor(
    "10 REGISTERs ignored",
    () => (h.router.stats().refused["too-many-registrations"] ?? 0) === 10,
  );
  expect(h.router.registry.size).toBe(max);
  greedy.register("g", uuid(100), "renamed");
  await waitFor(
    "overwrite",
    () => h.router.registry.group("g")!.members.get(addressKey(uuid(100)))?.logicalName === "renamed",
  );
  expect(h.router.registry.size).toBe(max);
});

test("stress: 3 senders, mixed sizes, unicast and multicast: every receiver gets each sender's frames intact and in order", async () => {
  const senders = [await h.client(), await h.client(), await h.client()];
  const receivers = [await h.client(), await h.client()];
  for (const [i, s] of senders.entries()) s.register("s", uuid(10 + i));
  for (const [i, r] of receivers.entries()) r.register("s", uuid(20 + i));
  await h.registered(5);
  const n = 1500;
  const expected = new Map<string, string[]>(); // "receiver/sender" -> hex frames
  for (let k = 0; k < n; k++) {
    senders.forEach((s, i) => {
      const size = 1 + ((k * 7919 + i * 104729) % 20_000);
      const payload = Buffer.alloc(size, (k + i) % 256);
      const dest = k % 3 === 0 ? null : uuid(20 + (k % 2));
      const hex = s.message("s", dest, uuid(10 + i), payload).toString("hex");
      for (let r = 0; r < receivers.length; r++) {
        if (dest === null || dest.uuid === uuid(20 + r).uuid) {
          const key = `${r}/${i}`;
          expected.set(key, [...(expected.get(key) ?? []), hex]);
        }
      }
    });
  }
  const total = (r: number) => [0, 1, 2].reduce((a, i) => a + (expected.get(`${r}/${i}`)?.length ?? 0), 0);
  // ~45 MB through one in-process router: generous on a saturated machine (20 s once was not).
  for (let r = 0; r < receivers.length; r++)
    await receivers[r]!.waitType(GossipType.Message, total(r), 90_000);
  for (let r = 0; r < receivers.length; r++) {
    for (let i = 0; i < senders.length; i++) {
      const got = receivers[r]!.received.filter(
        (x) =>
          x.data!.sender!.kind === "uuid" && (x.data!.sender as { uuid: string }).uuid === uuid(10 + i).uuid,
      );
      expect(got.map((x) => x.hex)).toEqual(expected.get(`${r}/${i}`));
    }
  }
  expect(h.router.stats().undelivered).toEqual({});
}, 200_000);
