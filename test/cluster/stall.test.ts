// A member whose process stalls (a GC pause, a starved CPU, SIGSTOP) resumes with its heartbeat
// timer overdue and its peers' frames waiting in the socket buffers. Timers run before the event
// loop polls the sockets: a tick that judged silence at once suspected peers that never went quiet.
import { afterEach, expect, test } from "@jest/globals";
import type { LocalCluster } from "../../runtime/cluster/local-cluster.js";
import { memberKey } from "../../runtime/cluster/member.js";
import { waitFor } from "../helpers/wait.js";
import { ListDiscovery, member, sameView } from "./util.js";

const live: LocalCluster[] = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((c) => c.close()));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a member whose loop stalls past suspectTimeoutMs reads what its peers sent before it judges them silent", async () => {
  const d = new ListDiscovery();
  // a judges quickly; b is patient, so only a's judgement is on trial (both live in this process
  // and stall together).
  const a = member("a", d, { suspectTimeoutMs: 400 });
  await a.start();
  d.addresses.push({ host: "127.0.0.1", port: a.localMember.port });
  live.push(a);
  const b = member("b", d, { suspectTimeoutMs: 60_000 });
  await b.start();
  live.push(b);
  await waitFor("one view of a and b", () => sameView([a, b]), { timeoutMs: 20_000 });
  expect(a.isCoordinator).toBe(true);
  await sleep(300);
  const before = a.stats();
  // b sends now: its connection flushes in this turn's check phase, before the stall below, so
  // the frame is in a's socket buffer while the loop is stalled.
  b.send(memberKey(a.localMember), Buffer.from("still here"));
  await new Promise<void>((resolve) =>
    setImmediate(() => {
      const until = Date.now() + 1200; // three suspect timeouts of a
      while (Date.now() < until) {
        // the stall
      }
      resolve();
    }),
  );
  await sleep(500);
  const after = a.stats();
  expect(after.viewsInstalled).toBe(before.viewsInstalled);
  expect(after.suspects).toBe(0);
  expect(sameView([a, b])).toBe(true);
});
