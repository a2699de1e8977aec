// A sender whose process stalls (a GC pause, a starved CPU) resumes with its delivery tick overdue
// and the other site's stability reports waiting unread in its socket. Timers run before the event
// loop polls the sockets: a tick that judged the lanes at once found their messages older than
// retransmitTimeoutMs and sent every one of them again, although each had been delivered and
// acknowledged (a burst of duplicates across the WAN after every long pause of a busy sender).
// nyc × 1 (the sender is its site master: the reports reach it straight from the router, which
// runs in its own process and is not stalled) and sfc × 2.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, jest, test } from "@jest/globals";
import { waitFor } from "../helpers/wait.js";
import { requireBuild } from "./cli.js";
import { World } from "./delivery-harness.js";

jest.setTimeout(120_000);
requireBuild();

const RETRANSMIT_MS = 400;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const COUNT = 200;

test("a sender whose loop stalls past retransmitTimeoutMs reads the acknowledgements before it retransmits", async () => {
  const w = await World.start({ sites: { nyc: 1, sfc: 2 }, app: { retransmitTimeoutMs: RETRANSMIT_MS } });
  try {
    const sender = w.members.nyc![0]!;
    const stats = async () => {
      const before = sender.events.length;
      sender.command("stats");
      await waitFor("stats", () => sender.events.slice(before).some((e) => e.type === "stats"), {
        timeoutMs: 10_000,
        intervalMs: 10,
      });
      return sender.lastEvent("stats")!.stats as { bufferedMessages: number; retransmitted: number };
    };
    const fromSender = (m: (typeof w.members.sfc)[number]) =>
      m.received.filter((r) => r.from === "nyc-1:nyc");
    // One round: a burst, then a stall of at least three retransmit timeouts (every lane is overdue
    // when the loop comes back) that lasts until sfc has had the time to acknowledge everything
    // (so a retransmission afterwards is the tick's misjudgement, not a late acknowledgement).
    const round = async (first: number) => {
      const dir = mkdtempSync(path.join(tmpdir(), "delivery-stall-"));
      const acknowledged = path.join(dir, "acknowledged");
      const events = sender.events.length;
      sender.command(`burst-stall ${COUNT} sfc ${3 * RETRANSMIT_MS} ${acknowledged} ${first}`);
      for (const m of w.members.sfc!)
        await waitFor(`${m.name} has ${first + COUNT - 1}`, () => fromSender(m).length >= first + COUNT - 1, {
          timeoutMs: 30_000,
          intervalMs: 25,
        });
      await sleep(1000); // the receivers' reports and sfc's Stable: a few ack intervals (50 ms)
      writeFileSync(acknowledged, "");
      await waitFor("the stall", () => sender.events.slice(events).some((e) => e.type === "stalled"), {
        timeoutMs: 60_000,
        intervalMs: 25,
      });
      rmSync(dir, { recursive: true, force: true });
      const stalled = sender.lastEvent("stalled")!;
      await waitFor("everything acknowledged", async () => (await stats()).bufferedMessages === 0, {
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      const after = await stats();
      return {
        unacknowledged: stalled.unacknowledged as number,
        retransmitted: after.retransmitted - (stalled.retransmittedBefore as number),
      };
    };
    // The premise is that the messages were still unacknowledged when the stall began; a round in
    // which sfc acknowledged them all first (this process preempted between two turns of its loop
    // on a saturated machine) proves nothing, and another is run.
    const rounds: { unacknowledged: number; retransmitted: number }[] = [];
    while (rounds.length < 3 && !rounds.some((r) => r.unacknowledged > 0))
      rounds.push(await round(rounds.length * COUNT + 1));
    expect(rounds.some((r) => r.unacknowledged > 0)).toBe(true);
    expect(rounds.map((r) => r.retransmitted)).toEqual(rounds.map(() => 0));
    // Delivered once each, in order, at both sfc members.
    for (const m of w.members.sfc!)
      expect(fromSender(m).map((r) => r.n)).toEqual(
        Array.from({ length: rounds.length * COUNT }, (_, i) => i + 1),
      );
  } finally {
    await w.stop();
  }
});
