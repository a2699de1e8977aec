// send(): multicast and unicast delivery counts, per-sender FIFO, multicastToSelf, back-pressure
// ('drain'), typed errors, option validation.
import { afterEach, describe, expect, test } from "@jest/globals";
import { ConfigError } from "../../contract/initial-hosts.js";
import { StaticDiscovery } from "../../runtime/cluster/discovery.js";
import { ClusterError } from "../../runtime/cluster/errors.js";
import type { ClusterMessage } from "../../runtime/cluster/events.js";
import type { LocalCluster } from "../../runtime/cluster/local-cluster.js";
import { memberKey } from "../../runtime/cluster/member.js";
import { resolveClusterOptions } from "../../runtime/cluster/options.js";
import { waitFor } from "../helpers/wait.js";
import { keysOf, ListDiscovery, member, nextEvent, quietLog, sameView } from "./util.js";

const live: LocalCluster[] = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((c) => c.close()));
});

// These tests are about delivery, not failure detection: a member that a saturated CI machine
// stalls for more than FAST's 400 ms would be suspected and dropped from the view, and the raw
// cluster rightly does not deliver to members outside its view. So suspicion is slow here.
const STEADY = { suspectTimeoutMs: 15_000 } as const;

async function cluster(n: number, extra: Parameters<typeof member>[2] = {}) {
  const discovery = new ListDiscovery();
  const cs: LocalCluster[] = [];
  for (let i = 1; i <= n; i++) {
    const c = member(`nyc-${i}`, discovery, { ...STEADY, ...extra });
    live.push(c);
    await c.start();
    discovery.addresses.push({ host: "127.0.0.1", port: c.localMember.port });
    cs.push(c);
  }
  await waitFor(`one view of ${n}`, () => sameView(cs), { timeoutMs: 10_000 });
  return cs;
}

/** Records, per receiver, the sequence numbers received from each sender name. */
function record(cs: LocalCluster[]) {
  const got = new Map<string, Map<string, number[]>>();
  for (const c of cs) {
    const bySender = new Map<string, number[]>();
    got.set(c.localMember.name, bySender);
    c.on("message", (m: ClusterMessage) => {
      const list = bySender.get(m.from.name) ?? [];
      list.push(Buffer.from(m.payload).readUInt32BE(0));
      bySender.set(m.from.name, list);
    });
  }
  return got;
}

const numbered = (i: number, size = 4) => {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(i, 0);
  return b;
};

describe("LocalCluster messaging", () => {
  test("multicast reaches every other member exactly once, in per-sender FIFO order", async () => {
    const cs = await cluster(3);
    const got = record(cs);
    const N = 500;
    for (let i = 0; i < N; i++) for (const c of cs) c.send(null, numbered(i, 4 + (i % 7) * 100));
    const expected = Array.from({ length: N }, (_, i) => i);
    await waitFor(
      "every multicast delivered",
      () =>
        [...got.values()].every(
          (bySender) => [...bySender.values()].reduce((a, l) => a + l.length, 0) === 2 * N,
        ),
      {
        timeoutMs: 20_000,
        onTimeout: () =>
          cs
            .map((c) => {
              const counts = [...got.get(c.localMember.name)!].map(([from, l]) => `${from}:${l.length}`);
              return `${c.localMember.name} view ${c.view?.id.seq} [${keysOf(c).join(", ")}] got ${counts.join(" ")}`;
            })
            .join("\n"),
      },
    );
    for (const c of cs) {
      const bySender = got.get(c.localMember.name)!;
      expect(bySender.has(c.localMember.name)).toBe(false); // multicastToSelf defaults to false
      for (const other of cs) if (other !== c) expect(bySender.get(other.localMember.name)).toEqual(expected);
    }
    expect(cs[0]!.stats().messagesReceived).toBe(2 * N);
  });

  test("unicast reaches only its target, in order; unicast to self is delivered locally", async () => {
    const cs = await cluster(3);
    const got = record(cs);
    const target = memberKey(cs[2]!.localMember);
    for (let i = 0; i < 300; i++) cs[0]!.send(target, numbered(i));
    cs[1]!.send(memberKey(cs[1]!.localMember), numbered(7));
    await waitFor("300 unicasts", () => (got.get("nyc-3")!.get("nyc-1")?.length ?? 0) === 300, {
      timeoutMs: 20_000,
    });
    await waitFor("unicast to self", () => got.get("nyc-2")!.get("nyc-2")?.length === 1, {
      timeoutMs: 20_000,
    });
    expect(got.get("nyc-3")!.get("nyc-1")).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(got.get("nyc-2")!.get("nyc-1")).toBeUndefined();
    expect(got.get("nyc-1")!.size).toBe(0);
  });

  test("multicastToSelf: true also delivers a multicast to the sender", async () => {
    const cs = await cluster(2, { multicastToSelf: true });
    const got = record(cs);
    cs[0]!.send(null, numbered(42));
    await waitFor(
      "both copies",
      () => got.get("nyc-1")!.get("nyc-1")?.length === 1 && got.get("nyc-2")!.get("nyc-1")?.length === 1,
      { timeoutMs: 20_000 },
    );
  });

  test("back-pressure: send returns false over the high-water mark, then 'drain'; nothing is lost", async () => {
    const cs = await cluster(2, { highWaterMark: 64 * 1024 });
    const got = record(cs);
    const target = memberKey(cs[1]!.localMember);
    let sent = 0;
    let refusedAt = -1;
    while (refusedAt < 0 && sent < 10_000) {
      if (!cs[0]!.send(target, numbered(sent++, 256 * 1024))) refusedAt = sent;
    }
    expect(refusedAt).toBeGreaterThan(0);
    await nextEvent(cs[0]!, "drain");
    cs[0]!.send(target, numbered(sent++));
    await waitFor("every message delivered", () => got.get("nyc-2")!.get("nyc-1")?.length === sent, {
      timeoutMs: 20_000,
    });
    expect(got.get("nyc-2")!.get("nyc-1")).toEqual(Array.from({ length: sent }, (_, i) => i));
  });

  test("typed errors: before joining, unknown member, payload over maxFrame, after close", async () => {
    const lonely = member("nyc-0", new ListDiscovery());
    live.push(lonely);
    expect(() => lonely.send(null, Buffer.from("x"))).toThrow(ClusterError);
    const cs = await cluster(2, { maxFrame: 4096 });
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return (e as ClusterError).code;
      }
      return "ok";
    };
    expect(code(() => cs[0]!.send("nobody/x", Buffer.from("x")))).toBe("NOT_A_MEMBER");
    expect(code(() => cs[0]!.send(null, Buffer.alloc(5000)))).toBe("TOO_LARGE");
    expect(code(() => cs[0]!.send(null, Buffer.alloc(4095)))).toBe("ok");
    await cs[1]!.close();
    await cs[0]!.close();
    expect(code(() => cs[0]!.send(null, Buffer.from("x")))).toBe("CLOSED");
  });

  test("options are validated with errors naming the option", () => {
    const base = {
      site: "nyc",
      cluster: "chat",
      name: "nyc-1",
      discovery: new StaticDiscovery("127.0.0.1[7800]"),
      logger: quietLog(),
    };
    expect(() => resolveClusterOptions({ ...base, name: "" })).toThrow(/option name/);
    expect(() => resolveClusterOptions({ ...base, bindPort: 70000 })).toThrow(/bindPort/);
    expect(() => resolveClusterOptions({ ...base, bindAddr: "localhost" })).toThrow(/bindAddr/);
    expect(() => resolveClusterOptions({ ...base, heartbeatIntervalMs: 500, suspectTimeoutMs: 600 })).toThrow(
      /suspectTimeoutMs/,
    );
    expect(() => resolveClusterOptions({ ...base, maxFrame: 10 })).toThrow(/maxFrame/);
    expect(() => resolveClusterOptions({ ...base, discovery: {} as never })).toThrow(ConfigError);
    expect(() => new StaticDiscovery("127.0.0.1:7800")).toThrow(/host\[port\]/);
    const r = resolveClusterOptions(base);
    expect(r).toMatchObject({
      bindPort: 7800,
      heartbeatIntervalMs: 500,
      suspectTimeoutMs: 2000,
      multicastToSelf: false,
    });
  });
});
