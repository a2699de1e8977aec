// Zero-loss delivery across router failures (docs/DELIVERY.md): a sender in each site streams
// 2,000 numbered messages to everyone at 500/s while one of the two routers is killed (and, in the
// second case, started again on the same port); every member must get every message of both
// senders exactly once and in order.
import { describe, expect, jest, test } from "@jest/globals";
import { requireBuild } from "./cli.js";
import { runScenario } from "./delivery-scenario.js";

jest.setTimeout(60_000);
requireBuild();

describe("delivery across router failures", () => {
  test("kill -9 of one router", async () => {
    const r = await runScenario("kill -9 one router", async (w) => w.routers[0]!.kill());
    expect(r.problems).toEqual([]);
  });

  test("a router killed and restarted on the same port", async () => {
    const r = await runScenario("router restart", async (w) => {
      w.routers[1]!.kill();
      await new Promise((res) => setTimeout(res, 700));
      await w.routers[1]!.start();
    });
    expect(r.problems).toEqual([]);
  });
});
