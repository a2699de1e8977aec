// TunnelClient.sendAll, which the delivery guarantee uses for retransmissions and stability reports
// (docs/DELIVERY.md): one copy through every registered router, and still one when only one is up.
import { afterEach, expect, test } from "@jest/globals";
import type { GossipRouter } from "../../runtime/router/router.js";
import type { TunnelClient } from "../../runtime/tunnel/client.js";
import { waitFor } from "../helpers/wait.js";
import { startRouter } from "../router/util.js";
import { inbox, testClient, text } from "../tunnel/util.js";

const clients: TunnelClient[] = [];
const routers: GossipRouter[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(routers.splice(0).map((r) => r.stop()));
});

test("sendAll sends one copy through each registered router", async () => {
  const a = await startRouter();
  const b = await startRouter();
  routers.push(a.router, b.router);
  const ports = [a.port, b.port];
  const sender = testClient(ports, clients).start();
  const receiver = testClient(ports, clients).start();
  const got = inbox(receiver);
  await sender.waitForRouters(2);
  await receiver.waitForRouters(2);
  expect(sender.sendAll(receiver.options.localAddr, Buffer.from("twice"))).toBe(2);
  await waitFor("two copies", () => got.length >= 2);
  expect(got.map(text)).toEqual(["twice", "twice"]);
  expect(new Set(got.map((m) => m.router.port))).toEqual(new Set(ports));

  await b.router.stop();
  routers.pop();
  await waitFor("b down", () => sender.status().routers.filter((r) => r.state === "registered").length === 1);
  expect(sender.sendAll(receiver.options.localAddr, Buffer.from("once"))).toBe(1);
  await waitFor("one more copy", () => got.length >= 3);
  await new Promise((r) => setTimeout(r, 100));
  expect(got.map(text)).toEqual(["twice", "twice", "once"]);
});
