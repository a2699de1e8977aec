// close() leaves nothing behind: no timers, no sockets. Alone in its file so that no other test's
// leftovers blur the count of live handles.
import { expect, test } from "@jest/globals";
import { TunnelClient } from "../../runtime/tunnel/index.js";
import { FakeRouter } from "./fake-router.js";
import { quietLog, uuidAddr } from "./util.js";

const handles = (kind: string) => process.getActiveResourcesInfo().filter((x) => x === kind).length;

test("after close() no timer or socket of the client remains (heartbeats on, two routers, one down)", async () => {
  const routers = [await FakeRouter.start(), await FakeRouter.start()];
  const dead = await FakeRouter.start();
  const deadPort = dead.port;
  await dead.stop();
  const timers = handles("Timeout");
  const sockets = handles("TCPSocketWrap");
  const clients = [0, 1].map(
    () =>
      new TunnelClient({
        routers: [
          ...routers.map((r) => ({ host: "127.0.0.1", port: r.port })),
          { host: "127.0.0.1", port: deadPort },
        ],
        group: "g",
        localAddr: uuidAddr(),
        heartbeatIntervalMs: 20,
        reconnectInitialMs: 5,
        reconnectMaxMs: 20,
        logger: quietLog,
      }),
  );
  for (const c of clients) c.start();
  await Promise.all(clients.map((c) => c.waitForRouters(2)));
  await Promise.all(clients.map((c) => c.getMembers()));
  clients[0]!.send(null, Buffer.from("x"));
  await new Promise((r) => setTimeout(r, 60)); // heartbeats and reconnect attempts running
  expect(handles("Timeout")).toBeGreaterThan(timers);
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(routers.map((r) => r.stop()));
  await new Promise((r) => setImmediate(r)); // handles are released right after the close events
  expect(handles("Timeout")).toBeLessThanOrEqual(timers);
  expect(handles("TCPSocketWrap")).toBeLessThanOrEqual(sockets);
  for (const c of clients)
    expect(c.status().routers.map((s) => s.state)).toEqual(["closed", "closed", "closed"]);
});
