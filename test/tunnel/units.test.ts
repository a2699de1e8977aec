// The tunnel client's socket-free parts: backoff schedule, heartbeat (fake timers), pending queue,
// option validation.
import { afterEach, describe, expect, jest, test } from "@jest/globals";
import fc from "fast-check";
import { ConfigError } from "../../contract/errors.js";
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  Heartbeat,
  PendingQueue,
  TunnelClient,
  TunnelError,
  type TunnelOptions,
} from "../../runtime/tunnel/index.js";
import { resolveTunnelOptions } from "../../runtime/tunnel/options.js";
import { quietLog, uuidAddr } from "./util.js";

describe("backoffDelay", () => {
  test("doubles from 100 ms up to the 5 s ceiling (no jitter drawn)", () => {
    const schedule = [1, 2, 3, 4, 5, 6, 7, 8, 50, 10_000].map((n) =>
      backoffDelay(n, DEFAULT_BACKOFF, () => 0),
    );
    expect(schedule).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
  });

  test("jitter only shortens, by at most the jitter fraction", () => {
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0.999999)).toBe(80);
    expect(backoffDelay(7, DEFAULT_BACKOFF, () => 0.5)).toBe(4500);
    fc.assert(
      fc.property(
        fc.integer({ min: -5, max: 2000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const d = backoffDelay(attempt, DEFAULT_BACKOFF, () => r);
          const base = Math.min(5000, 100 * 2 ** Math.max(0, Math.min(Math.max(1, attempt) - 1, 30)));
          return d <= base && d >= Math.floor(base * 0.8) && Number.isFinite(d);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("Heartbeat", () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  function harness(intervalMs: number, timeoutMs: number) {
    const log: string[] = [];
    const hb = new Heartbeat(
      {
        sendHeartbeat: () => log.push(`send@${Date.now()}`),
        timedOut: (ms) => log.push(`timeout@${Date.now()}:${ms}`),
      },
      intervalMs,
      timeoutMs,
      Date.now,
      (tick) => tick(), // the tick at once: fake timers have no event-loop poll to wait for
    );
    return { hb, log };
  }

  test("sends every interval; any reception defers the timeout; then reports it once and stops", () => {
    jest.useFakeTimers({ now: 0 });
    const { hb, log } = harness(1000, 3000);
    hb.start();
    jest.advanceTimersByTime(2500);
    hb.received(); // at 2500
    jest.advanceTimersByTime(10_000);
    expect(log).toEqual([
      "send@1000",
      "send@2000",
      "send@3000",
      "send@4000",
      "send@5000",
      "timeout@6000:3500",
    ]);
    expect(hb.running).toBe(false);
  });

  test("without any reception the timeout fires at the first tick past timeoutMs", () => {
    jest.useFakeTimers({ now: 0 });
    const { hb, log } = harness(100, 250);
    hb.start();
    jest.advanceTimersByTime(1000);
    expect(log).toEqual(["send@100", "send@200", "timeout@300:300"]);
  });

  test("interval 0 = off: nothing is sent and nothing times out", () => {
    jest.useFakeTimers({ now: 0 });
    const { hb, log } = harness(0, 0);
    hb.start();
    jest.advanceTimersByTime(1_000_000);
    expect(log).toEqual([]);
    expect(hb.running).toBe(false);
  });

  test("stop() cancels the timer; start() again restarts the clock", () => {
    jest.useFakeTimers({ now: 0 });
    const { hb, log } = harness(1000, 3000);
    hb.start();
    jest.advanceTimersByTime(1500);
    hb.stop();
    jest.advanceTimersByTime(10_000);
    expect(log).toEqual(["send@1000"]);
    expect(jest.getTimerCount()).toBe(0);
    hb.start(); // at 11500
    jest.advanceTimersByTime(1000);
    expect(log).toEqual(["send@1000", "send@12500"]);
    hb.stop();
  });
});

describe("PendingQueue", () => {
  test("bounded in bytes: the frame that does not fit is refused with TUNNEL_QUEUE_FULL, the queue unchanged", () => {
    const q = new PendingQueue(10);
    q.push(Buffer.alloc(4, 1));
    q.push(Buffer.alloc(6, 2));
    expect(q.bytes).toBe(10);
    let err: unknown;
    try {
      q.push(Buffer.alloc(1, 3));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TunnelError);
    expect((err as TunnelError).code).toBe("TUNNEL_QUEUE_FULL");
    expect((err as TunnelError).message).toMatch(/maxPendingBytes 10/);
    expect(q.length).toBe(2);
    expect(q.drain().map((b) => b[0])).toEqual([1, 2]);
    expect(q.bytes).toBe(0);
    expect(q.length).toBe(0);
    q.push(Buffer.alloc(10, 4));
    expect(q.length).toBe(1);
  });

  test("keeps insertion order across many frames", () => {
    const q = new PendingQueue(1 << 20);
    for (let i = 0; i < 1000; i++) q.push(Buffer.from(String(i)));
    expect(q.drain().map((b) => Number(b.toString()))).toEqual([...Array(1000).keys()]);
  });

  test("maxBytes 0 refuses everything", () => {
    expect(() => new PendingQueue(0).push(Buffer.alloc(1))).toThrow(/pending queue is full/);
  });
});

describe("option validation", () => {
  const good: TunnelOptions = {
    routers: [{ host: "127.0.0.1", port: 12001 }],
    group: "chat",
    localAddr: uuidAddr(),
    logger: quietLog,
  };

  test("defaults are applied and documented values hold", () => {
    const o = resolveTunnelOptions(good);
    expect(o).toMatchObject({
      logicalName: null,
      physicalAddr: null,
      tls: null,
      heartbeatIntervalMs: 10_000,
      heartbeatTimeoutMs: 30_000,
      backoff: { initialMs: 100, maxMs: 5000, jitter: 0.2 },
      connectTimeoutMs: 5000,
      maxPendingBytes: 4 * 1024 * 1024,
      maxFrame: 10 * 1024 * 1024,
    });
    expect(resolveTunnelOptions({ ...good, heartbeatIntervalMs: 1000 }).heartbeatTimeoutMs).toBe(3000);
    expect(resolveTunnelOptions({ ...good, heartbeatIntervalMs: 0 }).heartbeatTimeoutMs).toBe(0);
  });

  const cases: Array<[string, Partial<Record<keyof TunnelOptions, unknown>>, RegExp]> = [
    ["no routers", { routers: [] }, /routers must list at least one router/],
    ["router without host", { routers: [{ host: "", port: 1 }] }, /routers\[0\]\.host/],
    [
      "router port 0",
      { routers: [{ host: "h", port: 0 }] },
      /routers\[0\]\.port must be an integer in 1\.\.65535/,
    ],
    ["router port missing", { routers: [{ host: "h" }] }, /routers\[0\]\.port is required/],
    ["empty group", { group: "" }, /option group/],
    [
      "address of the wrong kind",
      { localAddr: { kind: "ip", host: "1.2.3.4", port: 1 } },
      /localAddr must be an address of kind/,
    ],
    ["malformed uuid", { localAddr: { kind: "uuid", uuid: "nope" } }, /localAddr has a malformed uuid/],
    [
      "uppercase uuid (the codec writes only the canonical lowercase form)",
      { localAddr: { kind: "uuid", uuid: "0000000A-0000-4000-8000-00000000000B" } },
      /localAddr has a malformed uuid/,
    ],
    ["localAddr not an object", { localAddr: "x" }, /localAddr must be an Address/],
    ["physicalAddr not ip", { physicalAddr: uuidAddr() }, /physicalAddr must be an address of kind ip/],
    ["negative heartbeat", { heartbeatIntervalMs: -1 }, /heartbeatIntervalMs must be an integer/],
    [
      "timeout not above interval",
      { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 1000 },
      /heartbeatTimeoutMs must be greater/,
    ],
    ["fractional timeout", { connectTimeoutMs: 1.5 }, /connectTimeoutMs must be an integer/],
    [
      "max below initial",
      { reconnectInitialMs: 500, reconnectMaxMs: 100 },
      /reconnectMaxMs must be >= reconnectInitialMs/,
    ],
    ["jitter above 1", { reconnectJitter: 2 }, /reconnectJitter must be a number in 0\.\.1/],
    ["negative pending bound", { maxPendingBytes: -1 }, /maxPendingBytes must be an integer/],
    ["cert without key", { tls: { cert: "-----BEGIN CERTIFICATE-----" } }, /tls\.key is required/],
    [
      "unreadable CA file",
      { tls: { ca: "/nonexistent/ca.pem" } },
      /tls\.ca names a file that cannot be read/,
    ],
  ];
  test.each(cases)("%s", (_name, patch, message) => {
    const opts = { ...good, ...patch } as TunnelOptions;
    let err: unknown;
    try {
      new TunnelClient(opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("BAD_OPTION");
    expect((err as ConfigError).message).toMatch(message);
  });
});
