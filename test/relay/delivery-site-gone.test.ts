// A site that appears and vanishes for good (docs/DELIVERY.md, "Sites that vanish"): its share of
// the send buffer fills, but traffic to the healthy site keeps flowing; after siteGoneMs it is
// declared gone, its backlog is dropped with a "site-gone" event, and messages to everyone flow
// again. Three sites: nyc × 2 (sender nyc-2), sfc × 2, lon × 1 (killed for good).
import { expect, jest, test } from "@jest/globals";
import { waitFor } from "../helpers/wait.js";
import { requireBuild } from "./cli.js";
import { World } from "./delivery-harness.js";

jest.setTimeout(120_000);
requireBuild();

const SITE_GONE_MS = 15_000;

test("a vanished site cannot block the others, and is declared gone with its backlog", async () => {
  const w = await World.start({
    sites: { nyc: 2, sfc: 2, lon: 1 },
    app: { sendBuffer: { maxMessages: 50 }, siteGoneMs: SITE_GONE_MS },
  });
  try {
    const sender = w.members.nyc![1]!;
    const lon = w.members.lon![0]!;
    lon.kill();
    // Messages to everyone: lon's share fills at 50 and that stream waits for it ...
    sender.command("send 200 100");
    // ... while a stream to sfc alone, from the same member, must not wait for lon at all.
    sender.command("send 300 100 site:sfc 1001");
    const sfcStreamDone = () => sender.events.some((e) => e.type === "sent" && e.first === 1001);
    await waitFor("the stream to sfc is sent", sfcStreamDone, { timeoutMs: 60_000, intervalMs: 25 });
    expect(sender.lastEvent("site-gone")).toBeUndefined(); // it was not waiting for lon to go
    await waitFor("lon declared gone", () => sender.lastEvent("site-gone") !== undefined, {
      timeoutMs: SITE_GONE_MS + 40_000,
      intervalMs: 25,
    });
    const gone = sender.lastEvent("site-gone")!;
    expect(gone).toMatchObject({ site: "lon" });
    expect(gone.messages as number).toBeGreaterThan(0);
    await waitFor(
      "the stream to everyone is sent",
      () => sender.events.some((e) => e.type === "sent" && e.first === 1),
      { timeoutMs: 40_000, intervalMs: 25 },
    );
    // sfc got both streams whole, in order, once each.
    for (const m of w.members.sfc!) {
      await waitFor(
        `${m.name} has both streams`,
        () => m.received.filter((r) => r.from === "nyc-2:nyc").length >= 500,
        { timeoutMs: 30_000, intervalMs: 25 },
      );
      const ns = m.received.filter((r) => r.from === "nyc-2:nyc").map((r) => r.n);
      const all = ns.filter((n) => n <= 200);
      const toSfc = ns.filter((n) => n > 1000);
      expect(all).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(toSfc).toEqual(Array.from({ length: 300 }, (_, i) => i + 1001));
    }
    sender.command("stats");
    await waitFor("stats", () => sender.lastEvent("stats") !== undefined, {
      timeoutMs: 10_000,
      intervalMs: 25,
    });
    const stats = sender.lastEvent("stats")!.stats as {
      sitesGone: number;
      droppedForGoneSites: number;
      bufferedMessages: number;
    };
    expect(stats.sitesGone).toBe(1);
    expect(stats.droppedForGoneSites).toBe(gone.messages);
    // Nothing is kept for lon any more: the buffer drains to empty once sfc has everything.
    await waitFor(
      "send buffer empty",
      () => {
        sender.command("stats");
        return (sender.lastEvent("stats")!.stats as { bufferedMessages: number }).bufferedMessages === 0;
      },
      { timeoutMs: 20_000, intervalMs: 25 },
    );
  } finally {
    await w.stop();
  }
});
