// A site that is down, then back, with a small send buffer (docs/DELIVERY.md): the sender is told
// which site is unreachable and how many messages wait, send() refuses (BUFFER_FULL) instead of
// growing or dropping once the buffer is full, and when the site is back every message flows, in
// order, exactly once, to its new members (a member that joins once the flow resumed starts at the
// sender's position then: the late-joiner rule).
import { afterAll, beforeAll, describe, expect, jest, test } from "@jest/globals";
import { requireBuild } from "./cli.js";
import { fifoProblems, tailProblems, until, World } from "./delivery-harness.js";

jest.setTimeout(60_000);
requireBuild();

const LIMIT = 100;
const COUNT = 300;

describe("a site down, then back, with back-pressure", () => {
  let w: World;
  beforeAll(async () => {
    w = await World.start({ sites: { nyc: 2, sfc: 2 }, app: { sendBuffer: { maxMessages: LIMIT } } });
  });
  afterAll(async () => {
    await w?.stop();
  });

  test("messages wait (bounded) while sfc is down and are all delivered once it is back", async () => {
    const sender = w.members.nyc![1]!;
    const sfc = w.members.sfc!;
    for (const m of sfc) m.kill();
    await until("nyc sees sfc down", () => sender.state?.sites.includes("sfc") === false, 15_000);

    sender.command(`send ${COUNT} 2000 site:sfc`);
    const unreachable = await (async () => {
      await until(
        "a site-unreachable event",
        () => sender.lastEvent("site-unreachable") !== undefined,
        10_000,
      );
      return sender.lastEvent("site-unreachable")!;
    })();
    expect(unreachable.site).toBe("sfc");
    expect(unreachable.messages as number).toBeGreaterThan(0);

    // The buffer fills and stays at its bound: the sender is blocked, nothing is sent or dropped.
    await new Promise((r) => setTimeout(r, 1500));
    sender.command("stats");
    await until("stats while blocked", () => sender.lastEvent("stats") !== undefined);
    const blocked = sender.lastEvent("stats")!.stats as Record<string, number>;
    expect(blocked.bufferedMessages).toBe(LIMIT);
    expect(blocked.sendsRefused).toBeGreaterThan(0);
    expect(blocked.blockedMs).toBeGreaterThan(500);
    expect(sender.lastEvent("sent")).toBeUndefined();

    // sfc comes back (new processes: new incarnations, no state).
    sfc[0]!.start();
    await until("sfc-1 in a view", () => sfc[0]!.state !== undefined);
    sfc[1]!.start();
    await until("sender done", () => sender.lastEvent("sent") !== undefined, 30_000);
    await until(
      "sfc members have every message",
      () => sfc.every((m) => m.received.filter((r) => r.from === "nyc-2:nyc").length >= COUNT),
      15_000,
    ).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    // sfc-1 came back first: it gets everything. sfc-2 may have joined after sfc-1 alone made
    // the first messages stable: as a late joiner it gets an in-order run that ends at COUNT.
    expect(fifoProblems(sfc[0]!.received, "nyc-2:nyc", COUNT)).toEqual([]);
    expect(tailProblems(sfc[1]!.received, "nyc-2:nyc", COUNT)).toEqual([]);
    expect(sender.lastEvent("site-reachable")?.site).toBe("sfc");
    const sent = sender.lastEvent("sent")!;
    expect(sent.refused as number).toBeGreaterThan(0);
    expect(sent.maxBuffered as number).toBeLessThanOrEqual(LIMIT);
  });
});
