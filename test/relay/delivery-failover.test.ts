// Zero-loss delivery across kill -9 of site masters (docs/DELIVERY.md): a sender in each site
// streams 2,000 numbered messages to everyone at 500/s; every surviving member must get every
// message of both senders exactly once and in order.
import { describe, expect, jest, test } from "@jest/globals";
import { requireBuild } from "./cli.js";
import { runScenario } from "./delivery-scenario.js";

jest.setTimeout(60_000);
requireBuild();

describe("delivery across site master crashes", () => {
  test("kill -9 of the nyc site master", async () => {
    const r = await runScenario("kill -9 nyc site master", async (w) => w.members.nyc![0]!.kill());
    expect(r.problems).toEqual([]);
  });

  test("kill -9 of the sfc site master", async () => {
    const r = await runScenario("kill -9 sfc site master", async (w) => w.members.sfc![0]!.kill());
    expect(r.problems).toEqual([]);
  });

  test("kill -9 of both site masters at once", async () => {
    const r = await runScenario("kill -9 both site masters", async (w) => {
      w.members.nyc![0]!.kill();
      w.members.sfc![0]!.kill();
    });
    expect(r.problems).toEqual([]);
  });
});
