// A member that joins a site while a remote sender streams (the late-joiner rule, docs/DELIVERY.md).
// The order of join and stream is controlled, not timed: sfc-3 sends 1..1000; nyc-4 is started
// only then; 1001..2000 are sent only once every nyc member (its site master included) has nyc-4
// in its view. So whatever the machine's speed, 1001..2000 cannot become stable without nyc-4:
// it must get one in-order run ending at 2000 that starts at 1001 or before, exactly once; every
// other member gets 1..2000. (The earlier version started nyc-4 during a 4 s stream: on a loaded
// machine it joined after the stream was stable and rightly got nothing.)
import { expect, jest, test } from "@jest/globals";
import { waitFor } from "../helpers/wait.js";
import { requireBuild } from "./cli.js";
import { fifoProblems, tailProblems, World } from "./delivery-harness.js";

jest.setTimeout(120_000);
requireBuild();

const HALF = 1000;
const poll = { intervalMs: 25 };

test("a member that joins nyc between two halves of a stream gets the second half, in order", async () => {
  const w = await World.start({ sites: { nyc: 4, sfc: 3 }, late: { nyc: 1 } });
  try {
    const sender = w.members.sfc![2]!;
    const late = w.members.nyc![3]!;
    const sentHalf = (first: number) => sender.events.some((e) => e.type === "sent" && e.first === first);
    sender.command(`send ${HALF} 500 all 1`);
    await waitFor("the first half sent", () => sentHalf(1), { ...poll, timeoutMs: 60_000 });
    late.start();
    await waitFor(
      "nyc-4 in every nyc member's view",
      () => w.members.nyc!.every((m) => m.state?.members.includes("nyc-4") === true),
      { ...poll, timeoutMs: 60_000 },
    );
    sender.command(`send ${HALF} 500 all ${HALF + 1}`);
    await waitFor("the second half sent", () => sentHalf(HALF + 1), { ...poll, timeoutMs: 60_000 });
    const from = "sfc-3:sfc";
    const count = (m: (typeof w.members.nyc)[number]) => m.received.filter((r) => r.from === from).length;
    await waitFor(
      "nyc-4 has up to the last message",
      () => late.received.some((r) => r.from === from && r.n === 2 * HALF),
      {
        ...poll,
        timeoutMs: 60_000,
      },
    );
    const others = w.all().filter((m) => m !== late && m !== sender);
    await waitFor("everyone else has everything", () => others.every((m) => count(m) >= 2 * HALF), {
      ...poll,
      timeoutMs: 60_000,
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 300)); // late duplicates would show now
    expect(tailProblems(late.received, from, 2 * HALF)).toEqual([]);
    const first = late.received.find((r) => r.from === from)!.n;
    expect(first).toBeLessThanOrEqual(HALF + 1);
    for (const m of others)
      expect({ member: m.name, problems: fifoProblems(m.received, from, 2 * HALF) }).toEqual({
        member: m.name,
        problems: [],
      });
  } finally {
    await w.stop();
  }
});
