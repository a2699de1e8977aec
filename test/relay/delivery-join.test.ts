// A member that joins a site while both senders stream (the late-joiner rule, docs/DELIVERY.md):
// it gets each cross-site sender's messages as one in-order run, exactly once, ending at the last
// one; everyone else still gets everything.
import { expect, jest, test } from "@jest/globals";
import { waitFor } from "../helpers/wait.js";
import { requireBuild } from "./cli.js";
import { tailProblems } from "./delivery-harness.js";
import { COUNT, runScenario } from "./delivery-scenario.js";

jest.setTimeout(60_000);
requireBuild();

test("a member joining nyc mid-stream gets an in-order run of sfc's messages up to the last", async () => {
  const r = await runScenario(
    "nyc-4 joins mid-stream",
    async (w) => {
      const late = w.members.nyc![3]!;
      late.start();
      await waitFor("nyc-4 in a view of 4", () => late.state?.members.length === 4, {
        timeoutMs: 10_000,
        intervalMs: 25,
      });
    },
    { sites: { nyc: 4, sfc: 3 }, late: { nyc: 1 }, lateJoiners: ["nyc-4"] },
  );
  expect(r.problems).toEqual([]);
  const late = r.world.members.nyc![3]!;
  expect(tailProblems(late.received, "sfc-3:sfc", COUNT)).toEqual([]);
  expect(late.received.filter((x) => x.from === "sfc-3:sfc").length).toBeGreaterThan(100);
});
