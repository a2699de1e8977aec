// TunnelClient against FakeRouter (real loopback servers speaking the protocol through our codec):
// registration, status transitions, reconnects, heartbeats, decode errors, routing, pending queue,
// back-pressure, getMembers, suspect, close.
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "@jest/globals";
import { pino } from "pino";
import { addressKey } from "../../runtime/protocol/codec.js";
import { GRACEFUL_CLOSE_FRAME, heartbeatFrame, registerFrame } from "../../runtime/protocol/frames.js";
import { type Address, GossipType } from "../../runtime/protocol/types.js";
import {
  TunnelClient,
  TunnelError,
  type TunnelOptions,
  type TunnelSuspect,
} from "../../runtime/tunnel/index.js";
import { makeTestPki, type TestPki } from "../helpers/certs.js";
import { freePort } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { FakeRouter } from "./fake-router.js";
import { inbox, nextStatus, quietLog, recordStatus, testClient, text, uuidAddr } from "./util.js";

const routers: FakeRouter[] = [];
const clients: TunnelClient[] = [];

async function fakeRouter(port = 0, tls?: Parameters<typeof FakeRouter.start>[1]): Promise<FakeRouter> {
  const r = await FakeRouter.start(port, tls);
  routers.push(r);
  return r;
}

function client(rs: Array<FakeRouter | number>, extra: Partial<TunnelOptions> = {}): TunnelClient {
  const ports = rs.map((r) => (typeof r === "number" ? r : r.port));
  return testClient(ports, clients, { connectTimeoutMs: 2000, ...extra });
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(routers.splice(0).map((r) => r.stop()));
});

describe("registration and status", () => {
  test("REGISTER then a HEARTBEAT probe on every router; router-up when the router answers; connecting -> registering -> registered logged", async () => {
    const [r0, r1] = [await fakeRouter(), await fakeRouter()];
    const lines: string[] = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const c = client([r0, r1], { logger });
    const events = recordStatus(c);
    c.start();
    await c.waitForRouters(2, 5000);
    for (const r of [r0, r1]) {
      const types = r.received.map((x) => x.data.type);
      expect(types.slice(0, 2)).toEqual([GossipType.Register, GossipType.Heartbeat]);
      const reg = r.received[0]!.data;
      expect(reg.group).toBe("chat");
      expect(addressKey(reg.addr!)).toBe(addressKey(c.options.localAddr));
      expect(reg.logicalName).toBe(c.options.logicalName);
      expect(reg.physicalAddr).toEqual(c.options.physicalAddr);
    }
    expect(
      events
        .filter((e) => e.type === "router-up")
        .map((e) => (e as { router: { port: number } }).router.port)
        .sort(),
    ).toEqual([r0.port, r1.port].sort());
    const snap = c.status();
    expect(snap.routers.map((s) => s.state)).toEqual(["registered", "registered"]);
    expect(snap.routers.every((s) => s.reconnects === 0 && s.framesOut === 2 && s.framesIn >= 1)).toBe(true);
    expect(snap.current).toEqual({ host: "127.0.0.1", port: r0.port });
    const transitions = lines.map((l) => JSON.parse(l) as { msg: string }).map((l) => l.msg);
    expect(transitions.filter((m) => m === "idle -> connecting")).toHaveLength(2);
    expect(transitions.filter((m) => m === "connecting -> registering")).toHaveLength(2);
    expect(transitions.filter((m) => m === "registering -> registered")).toHaveLength(2);
  });

  test("a router that never confirms the registration is not up: connect-failed (connect-timeout), retried with growing backoff", async () => {
    const r = await fakeRouter();
    r.answerHeartbeats = false;
    const c = client([r], {
      connectTimeoutMs: 150,
      reconnectInitialMs: 50,
      reconnectMaxMs: 1000,
      reconnectJitter: 0,
    });
    const events = recordStatus(c);
    c.start();
    await waitFor("two reconnect rounds", () => events.filter((e) => e.type === "reconnecting").length >= 2);
    expect(events.some((e) => e.type === "router-up")).toBe(false);
    const failed = events.filter((e) => e.type === "connect-failed");
    expect(failed[0]).toMatchObject({ reason: "connect-timeout", attempt: 1 });
    expect(failed[1]).toMatchObject({ reason: "connect-timeout", attempt: 2 });
    const delays = events
      .filter((e) => e.type === "reconnecting")
      .map((e) => (e as { delayMs: number }).delayMs);
    expect(delays.slice(0, 2)).toEqual([50, 100]);
    expect(r.frames(GossipType.Register).length).toBeGreaterThanOrEqual(2);
    expect(c.status().routers[0]!.lastError?.reason).toBe("connect-timeout");
  });

  test("router loss: router-down, reconnect with backoff, REGISTER again, router-up with reconnects = 1", async () => {
    const r = await fakeRouter();
    const c = client([r]);
    c.start();
    await c.waitForRouters(1);
    const events = recordStatus(c);
    const up = nextStatus(c, "router-up");
    r.dropAll();
    const again = await up;
    expect(again.reconnects).toBe(1);
    expect(events[0]).toMatchObject({ type: "router-down" });
    expect(["router-closed", "socket-error"]).toContain((events[0] as { reason: string }).reason);
    expect(events[1]).toMatchObject({ type: "reconnecting", attempt: 1 });
    const regs = r.received.filter((x) => x.data.type === GossipType.Register);
    expect(regs).toHaveLength(2);
    expect(regs[0]!.conn).not.toBe(regs[1]!.conn);
    expect(c.status().routers[0]).toMatchObject({ state: "registered", reconnects: 1 });
  });

  test("router stopped, then restarted on the same port: connect-failed while down, router-up once back", async () => {
    const r = await fakeRouter();
    const port = r.port;
    const c = client([r]);
    c.start();
    await c.waitForRouters(1);
    const down = nextStatus(c, "router-down");
    await r.stop();
    routers.splice(routers.indexOf(r), 1);
    await down;
    const failed = await nextStatus(c, "connect-failed");
    expect(failed.reason).toBe("socket-error");
    expect(failed.message).toMatch(/ECONNREFUSED/);
    const up = nextStatus(c, "router-up");
    const r2 = await fakeRouter(port);
    expect((await up).reconnects).toBe(1);
    expect(r2.frames(GossipType.Register)).toHaveLength(1);
  });

  test("heartbeats: sent every interval; a router gone silent is router-down (heartbeat-timeout), then re-registered", async () => {
    const r = await fakeRouter();
    const c = client([r], { heartbeatIntervalMs: 40, heartbeatTimeoutMs: 200 });
    c.start();
    await c.waitForRouters(1);
    await waitFor("periodic heartbeats", () => r.frames(GossipType.Heartbeat).length >= 4);
    const down = nextStatus(c, "router-down");
    r.answerHeartbeats = false;
    expect((await down).reason).toBe("heartbeat-timeout");
    const up = nextStatus(c, "router-up");
    r.answerHeartbeats = true;
    await up;
  });

  test("a client whose process stalls past heartbeatTimeoutMs reads what the router sent before it judges it silent", async () => {
    // A GC pause, a starved CPU or SIGSTOP: timers run before the loop polls sockets, so a tick
    // that judged at once dropped a router whose frames were waiting in the socket buffer.
    const r = await fakeRouter();
    const c = client([r], { heartbeatIntervalMs: 40, heartbeatTimeoutMs: 200 });
    const events = recordStatus(c);
    c.start();
    await c.waitForRouters(1);
    await waitFor("periodic heartbeats", () => r.frames(GossipType.Heartbeat).length >= 4);
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        r.sendRaw(heartbeatFrame()); // in the client's socket buffer before the stall
        const until = Date.now() + 700; // three heartbeat timeouts
        while (Date.now() < until) {
          // the stall
        }
        resolve();
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events.filter((e) => e.type === "router-down")).toEqual([]);
    expect(c.status().routers[0]).toMatchObject({ state: "registered", reconnects: 0 });
  });

  test.each([
    ["a negative length that is not GRACEFUL_CLOSE", Buffer.from("fffffff0", "hex"), /bad-length/],
    ["an unknown frame type", Buffer.from("000000010b", "hex"), /bad-type/],
    ["a truncated body", Buffer.from("0000000c0501000400", "hex").subarray(0, 9), null],
  ])(
    "decode error (%s): that connection is closed with the reason and re-established",
    async (_n, bytes, reason) => {
      const r = await fakeRouter();
      const c = client([r]);
      c.start();
      await c.waitForRouters(1);
      if (reason === null) {
        // A body the router never finishes, followed by EOF: the connection ends, nothing crashes.
        const down = nextStatus(c, "router-down");
        r.sendRaw(bytes);
        r.dropAll();
        await down;
        await nextStatus(c, "router-up");
        return;
      }
      const down = nextStatus(c, "router-down");
      const up = nextStatus(c, "router-up");
      r.sendRaw(bytes);
      const ev = await down;
      expect(ev.reason).toBe("decode-error");
      expect(ev.message).toMatch(reason);
      await up;
    },
  );

  test("GRACEFUL_CLOSE from the router is router-down (router-closed)", async () => {
    const r = await fakeRouter();
    const c = client([r]);
    c.start();
    await c.waitForRouters(1);
    const down = nextStatus(c, "router-down");
    r.sendRaw(GRACEFUL_CLOSE_FRAME);
    expect(await down).toMatchObject({
      reason: "router-closed",
      message: expect.stringMatching(/GRACEFUL_CLOSE/),
    });
    await nextStatus(c, "router-up");
  });
});

describe("messages", () => {
  test("multicast reaches every other member exactly once (no own copy); unicast only its destination; one router per frame", async () => {
    const [r0, r1] = [await fakeRouter(), await fakeRouter()];
    const [a, b, c] = [client([r0, r1]), client([r0, r1]), client([r0, r1])];
    const [ia, ib, ic] = [inbox(a), inbox(b), inbox(c)];
    for (const x of [a, b, c]) x.start();
    await Promise.all([a, b, c].map((x) => x.waitForRouters(2)));
    for (let i = 0; i < 50; i++) a.send(null, Buffer.from(`m${i}`));
    a.send(b.options.localAddr, Buffer.from("to-b"));
    await waitFor("all messages", () => ib.length === 51 && ic.length === 50);
    await new Promise((r) => setTimeout(r, 50)); // a duplicate or an own copy would show up by now
    expect(ia).toHaveLength(0);
    expect(ib.map(text)).toEqual([...Array.from({ length: 50 }, (_, i) => `m${i}`), "to-b"]);
    expect(ic.map(text)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect(ib[50]!.dest).toEqual(b.options.localAddr);
    expect(ib[0]!.dest).toBeNull();
    expect(addressKey(ib[0]!.sender!)).toBe(addressKey(a.options.localAddr));
    // Sticky routing: every frame of a went through the first router, none through the second.
    expect(r0.frames(GossipType.Message)).toHaveLength(51);
    expect(r1.frames(GossipType.Message)).toHaveLength(0);
    expect(ib[0]!.router).toEqual({ host: "127.0.0.1", port: r0.port });
  });

  test("router lost: every frame sent after router-down arrives through the other router; stays there when the first returns", async () => {
    const [r0, r1] = [await fakeRouter(), await fakeRouter()];
    const port0 = r0.port;
    const [a, b] = [client([r0, r1]), client([r0, r1])];
    const ib = inbox(b);
    for (const x of [a, b]) x.start();
    await Promise.all([a, b].map((x) => x.waitForRouters(2)));
    for (let i = 0; i < 100; i++) a.send(null, Buffer.from(`before-${i}`));
    await waitFor("messages before the loss", () => ib.length === 100);
    const down = nextStatus(a, "router-down");
    await r0.stop();
    routers.splice(routers.indexOf(r0), 1);
    await down;
    for (let i = 0; i < 200; i++) a.send(null, Buffer.from(`after-${i}`));
    await waitFor("every message sent after router-down", () => ib.length === 300, { timeoutMs: 5000 });
    expect(ib.slice(100).map(text)).toEqual(Array.from({ length: 200 }, (_, i) => `after-${i}`));
    expect(ib.slice(100).every((m) => m.router.port === r1.port)).toBe(true);
    // The first router comes back: a re-registers there but keeps sending through the second.
    const up = nextStatus(a, "router-up", 5000);
    const r0b = await fakeRouter(port0);
    await up;
    a.send(null, Buffer.from("later"));
    await waitFor("the message after the return", () => ib.length === 301);
    expect(ib[300]!.router.port).toBe(r1.port);
    expect(a.status().current?.port).toBe(r1.port);
    expect(r0b.frames(GossipType.Message)).toHaveLength(0);
  });

  test("a frame sent from inside the router-down listener goes through the other router", async () => {
    const [r0, r1] = [await fakeRouter(), await fakeRouter()];
    const [a, b] = [client([r0, r1]), client([r0, r1])];
    const ib = inbox(b);
    for (const x of [a, b]) x.start();
    await Promise.all([a, b].map((x) => x.waitForRouters(2)));
    const current = a.status().current!.port;
    const [dying, other] = current === r0.port ? [r0, r1] : [r1, r0];
    a.on("status", (e) => {
      if (e.type === "router-down") a.send(null, Buffer.from("sent in the listener"));
    });
    await dying.stop();
    routers.splice(routers.indexOf(dying), 1);
    await waitFor("the frame sent during router-down", () => ib.length === 1);
    expect(ib[0]!.router.port).toBe(other.port);
  });

  test("no router: frames queue (send false), beyond maxPendingBytes TUNNEL_QUEUE_FULL; flushed in order when a router comes, then 'drain'", async () => {
    const port = await freePort();
    const a = client([port], { maxPendingBytes: 10 * 70 });
    const events = recordStatus(a);
    a.start();
    await waitFor("a failed attempt", () => events.some((e) => e.type === "connect-failed"));
    const sent: string[] = [];
    let full: unknown = null;
    for (let i = 0; i < 100 && full === null; i++) {
      try {
        expect(a.send(null, Buffer.from(`p${i}`.padEnd(20, "."))).valueOf()).toBe(false);
        sent.push(`p${i}`.padEnd(20, "."));
      } catch (e) {
        full = e;
      }
    }
    expect(full).toBeInstanceOf(TunnelError);
    expect((full as TunnelError).code).toBe("TUNNEL_QUEUE_FULL");
    expect(sent.length).toBeGreaterThan(3);
    expect(a.status().pendingFrames).toBe(sent.length);
    const drained = new Promise<void>((resolve) => a.once("drain", () => resolve()));
    const r = await fakeRouter(port);
    await a.waitForRouters(1, 5000);
    await drained;
    await waitFor("the flushed frames", () => r.frames(GossipType.Message).length === sent.length);
    const seq = r.received.map((x) => x.data.type);
    expect(seq.slice(0, 2)).toEqual([GossipType.Register, GossipType.Heartbeat]);
    expect(r.frames(GossipType.Message).map((m) => Buffer.from(m.payload).toString())).toEqual(sent);
    expect(a.status().pendingFrames).toBe(0);
    expect(a.send(null, Buffer.from("x"))).toBe(true);
  });

  test("back-pressure: send() returns false once the socket is over its high-water mark, 'drain' follows, nothing is lost", async () => {
    const r = await fakeRouter();
    const [a, b] = [client([r], { maxPendingBytes: 1 << 20 }), client([r])];
    for (const x of [a, b]) x.start();
    await Promise.all([a, b].map((x) => x.waitForRouters(1)));
    r.pauseReading();
    const payload = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    let ok = true;
    while (ok && sent < 10_000) {
      ok = a.send(b.options.localAddr, payload);
      sent++;
    }
    expect(ok).toBe(false);
    // A caller that ignores `false` is stopped by a typed error once maxPendingBytes are buffered.
    let refused: unknown = null;
    for (let i = 0; i < 10_000 && refused === null; i++) {
      try {
        a.send(b.options.localAddr, payload);
        sent++;
      } catch (e) {
        refused = e;
      }
    }
    expect(refused).toMatchObject({ code: "TUNNEL_QUEUE_FULL" });
    expect(a.status().routers[0]!.bufferedBytes).toBeLessThanOrEqual(a.options.maxPendingBytes);
    const drained = new Promise<void>((resolve) => a.once("drain", () => resolve()));
    r.resumeReading();
    await drained;
    await waitFor(`${sent} frames at the router`, () => r.frames(GossipType.Message).length === sent, {
      timeoutMs: 10_000,
    });
  });

  test("site-qualified addresses (SiteUUID, as on the bridge): own multicast copy dropped, unicast by address", async () => {
    const r = await fakeRouter();
    const site = (name: string, s: string): Address => ({
      kind: "site-uuid",
      uuid: uuidAddr().uuid,
      flags: 0,
      extensions: [],
      site: s,
      name,
    });
    const [a, b] = [
      client([r], { localAddr: site("_nyc2", "nyc") }),
      client([r], { localAddr: site("_sfc1", "sfc") }),
    ];
    const [ia, ib] = [inbox(a), inbox(b)];
    for (const x of [a, b]) x.start();
    await Promise.all([a, b].map((x) => x.waitForRouters(1)));
    a.send(null, Buffer.from("to the bridge"));
    b.send(a.options.localAddr, Buffer.from("to nyc"));
    await waitFor("both messages", () => ib.length === 1 && ia.length === 1);
    await new Promise((res) => setTimeout(res, 30));
    expect(ib.map(text)).toEqual(["to the bridge"]);
    expect(ia.map(text)).toEqual(["to nyc"]);
    expect(ib[0]!.sender).toEqual(a.options.localAddr);
  });

  test("a unicast to ourselves is delivered (only multicast copies are dropped)", async () => {
    const r = await fakeRouter();
    const a = client([r]);
    const ia = inbox(a);
    a.start();
    await a.waitForRouters(1);
    a.send(a.options.localAddr, Buffer.from("to me"));
    a.send(null, Buffer.from("to all"));
    await waitFor("both frames at the router", () => r.frames(GossipType.Message).length === 2);
    await waitFor("the unicast", () => ia.length === 1);
    await new Promise((res) => setTimeout(res, 30));
    expect(ia.map(text)).toEqual(["to me"]);
  });

  test("router given by host name (resolved on each connect)", async () => {
    const r = await fakeRouter();
    const a = new TunnelClient({
      routers: [{ host: "localhost", port: r.port }],
      group: "chat",
      localAddr: uuidAddr(),
      logger: quietLog,
    });
    clients.push(a);
    a.start();
    await a.waitForRouters(1);
    expect(r.frames(GossipType.Register)).toHaveLength(1);
  });

  test("payload larger than maxFrame: TUNNEL_PAYLOAD_TOO_LARGE", () => {
    const a = client([1], { maxFrame: 1024 });
    expect(() => a.send(null, Buffer.alloc(2000))).toThrow(
      expect.objectContaining({ code: "TUNNEL_PAYLOAD_TOO_LARGE" }),
    );
    expect(() => a.send(null, "text" as unknown as Uint8Array)).toThrow(/payload must be a Uint8Array/);
  });
});

describe("members and suspects", () => {
  test("getMembers: union over routers, unknown group empty, all groups, timeout when a router never answers", async () => {
    const [r0, r1] = [await fakeRouter(), await fakeRouter()];
    const [a, b] = [client([r0, r1]), client([r0, r1])];
    const other = client([r0], { group: "other" });
    for (const x of [a, b, other]) x.start();
    await Promise.all([a.waitForRouters(2), b.waitForRouters(2), other.waitForRouters(1)]);
    const mine = await a.getMembers();
    expect(mine.map((p) => p.logicalName).sort()).toEqual(
      [a.options.logicalName, b.options.logicalName].sort(),
    );
    expect(mine.find((p) => p.logicalName === b.options.logicalName)!.physicalAddr).toEqual(
      b.options.physicalAddr,
    );
    expect(await a.getMembers("nope")).toEqual([]);
    const all = await a.getMembers(null);
    expect(all.map((p) => p.logicalName).sort()).toEqual(
      [a.options.logicalName, b.options.logicalName, other.options.logicalName].sort(),
    );
    r0.answerGetMbrs = false;
    expect(await a.getMembers("chat", 300)).toHaveLength(2); // r1 still answers
    r1.answerGetMbrs = false;
    await expect(a.getMembers("chat", 200)).rejects.toMatchObject({ code: "TUNNEL_TIMEOUT" });
  });

  test("getMembers without a registered router: TUNNEL_NO_ROUTER", async () => {
    const a = client([await freePort()]);
    await expect(a.getMembers()).rejects.toMatchObject({ code: "TUNNEL_NO_ROUTER" });
  });

  test("suspect: a member whose connection breaks is reported by the router and emitted", async () => {
    const r = await fakeRouter();
    const a = client([r]);
    const suspects: TunnelSuspect[] = [];
    a.on("suspect", (s) => suspects.push(s));
    a.start();
    await a.waitForRouters(1);
    const victim: Address = uuidAddr();
    const raw = net.connect(r.port, "127.0.0.1");
    await new Promise((res) => raw.once("connect", res));
    raw.write(registerFrame("chat", victim, "victim", null));
    await waitFor("victim registered", () => r.frames(GossipType.Register).length === 2);
    raw.destroy();
    await waitFor("suspect", () => suspects.length === 1);
    expect(addressKey(suspects[0]!.addr)).toBe(addressKey(victim));
    expect(suspects[0]).toMatchObject({ group: "chat", router: { port: r.port } });
  });
});

describe("close", () => {
  test("UNREGISTER + GRACEFUL_CLOSE on every router (so no SUSPECT for the others); idempotent; TUNNEL_CLOSED after", async () => {
    const [r0, r1] = [await fakeRouter(), await fakeRouter()];
    const [a, b] = [client([r0, r1], { heartbeatIntervalMs: 50 }), client([r0, r1])];
    const suspects: TunnelSuspect[] = [];
    b.on("suspect", (s) => suspects.push(s));
    for (const x of [a, b]) x.start();
    await Promise.all([a, b].map((x) => x.waitForRouters(2)));
    const closedEvent = nextStatus(a, "closed");
    const p1 = a.close();
    expect(a.close()).toBe(p1);
    await p1;
    await closedEvent;
    for (const r of [r0, r1]) {
      const unreg = r.frames(GossipType.Unregister);
      expect(unreg).toHaveLength(1);
      expect(addressKey(unreg[0]!.addr!)).toBe(addressKey(a.options.localAddr));
      expect(r.gracefulCloses).toBe(1);
    }
    expect(a.status().routers.map((s) => s.state)).toEqual(["closed", "closed"]);
    await b.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(suspects).toHaveLength(0);
    expect(() => a.send(null, Buffer.from("x"))).toThrow(expect.objectContaining({ code: "TUNNEL_CLOSED" }));
    await expect(a.getMembers()).rejects.toMatchObject({ code: "TUNNEL_CLOSED" });
  });

  test("a listener that closes the client on router-down: no reconnect is scheduled, nothing throws", async () => {
    const r = await fakeRouter();
    const a = client([r]);
    a.start();
    await a.waitForRouters(1);
    const events: string[] = [];
    let closing: Promise<void> | null = null;
    a.on("status", (e) => {
      events.push(e.type);
      if (e.type === "router-down") closing = a.close();
    });
    r.dropAll();
    await waitFor("router-down", () => closing !== null);
    await closing;
    await new Promise((res) => setTimeout(res, 100));
    expect(events).toEqual(["router-down", "closed"]);
    expect(r.frames(GossipType.Register)).toHaveLength(1);
    expect(a.status().routers[0]!.state).toBe("closed");
  });

  test("close() while reconnecting (no router) resolves at once and cancels the retry timer", async () => {
    const a = client([await freePort()], { reconnectInitialMs: 10_000, reconnectMaxMs: 10_000 });
    a.start();
    await nextStatus(a, "reconnecting");
    const timers = process.getActiveResourcesInfo().filter((x) => x === "Timeout").length;
    await a.close();
    expect(process.getActiveResourcesInfo().filter((x) => x === "Timeout").length).toBeLessThan(timers);
    expect(a.status().routers[0]!.state).toBe("closed");
  });
});

describe("TLS (mutual auth) against a TLS fake router", () => {
  let dir: string;
  let pki: TestPki;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "tunnel-tls-"));
    pki = await makeTestPki(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function tlsRouter(): Promise<FakeRouter> {
    return fakeRouter(0, {
      cert: await readFile(pki.serverCert),
      key: await readFile(pki.serverKey),
      ca: await readFile(pki.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    });
  }

  test("a client with the CA-signed certificate (paths) registers and exchanges messages", async () => {
    const r = await tlsRouter();
    const tls = { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey };
    const [a, b] = [client([r], { tls }), client([r], { tls })];
    const ib = inbox(b);
    for (const x of [a, b]) x.start();
    await Promise.all([a, b].map((x) => x.waitForRouters(1)));
    a.send(null, Buffer.from("over tls"));
    await waitFor("the message", () => ib.length === 1);
    expect(text(ib[0]!)).toBe("over tls");
  });

  test.each([
    ["the rogue (self-signed) certificate", "rogue"],
    ["no client certificate", "none"],
  ])("a client with %s is refused: connect-failed, never router-up", async (_n, kind) => {
    const r = await tlsRouter();
    const tls =
      kind === "rogue"
        ? {
            ca: await readFile(pki.caCert),
            cert: await readFile(pki.rogueCert),
            key: await readFile(pki.rogueKey),
          }
        : { ca: await readFile(pki.caCert) };
    const a = client([r], { tls, connectTimeoutMs: 2000 });
    const events = recordStatus(a);
    a.start();
    const failed = await nextStatus(a, "connect-failed", 5000);
    // TLS 1.3: the client learns of the refusal after its own handshake completed, by an alert or a close.
    expect(["socket-error", "router-closed"]).toContain(failed.reason);
    expect(failed.message).toMatch(/alert|certificate|before confirming the registration/i);
    expect(events.some((e) => e.type === "router-up")).toBe(false);
    expect(r.frames(GossipType.Register)).toHaveLength(0);
    expect(r.tlsErrors.length).toBeGreaterThan(0);
  });

  test("a router certificate not signed by the client's CA is refused by the client", async () => {
    const r = await fakeRouter(0, { cert: await readFile(pki.rogueCert), key: await readFile(pki.rogueKey) });
    const a = client([r], { tls: { ca: pki.caCert } });
    a.start();
    const failed = await nextStatus(a, "connect-failed", 5000);
    expect(failed.message).toMatch(/self[- ]signed|certificate/i);
  });
});
