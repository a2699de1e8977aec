// The cluster port's refusals reach a node's /metrics (issue 13, item 5: every refusal counted):
// a relay node with CLUSTER_SECRET_FILE, and a member of its site and cluster that holds another
// secret and keeps trying to get in. relay_cluster_auth_failures_total counts its handshakes, and
// the node's view stays its own.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, jest, test } from "@jest/globals";
import { pino } from "pino";
import { parseRelayEnv } from "../../contract/relay-env.js";
import type { LocalCluster } from "../../runtime/cluster/local-cluster.js";
import { parseClusterSecret } from "../../runtime/cluster/secret.js";
import { RelayNode } from "../../runtime/relay/node.js";
import { GossipRouter } from "../../runtime/router/router.js";
import { ListDiscovery, member } from "../cluster/util.js";
import { waitFor } from "../helpers/wait.js";

jest.setTimeout(60_000);

const quiet = () => pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const stops: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : Number.NaN;
}

test("a member with another cluster secret is refused and counted in relay_cluster_auth_failures_total", async () => {
  const router = new GossipRouter({ port: 0, bind: "127.0.0.1", httpPort: null }, quiet());
  await router.start();
  stops.push(() => router.stop());
  const dir = mkdtempSync(path.join(os.tmpdir(), "relay-cluster-metrics-"));
  const file = path.join(dir, "cluster-secret");
  writeFileSync(file, randomBytes(32).toString("hex"));
  const config = parseRelayEnv({
    SITE: "nyc",
    CLUSTER: "chat",
    STATIC_MEMBERS: "127.0.0.1[9]",
    TUNNEL_INITIAL_HOSTS: `127.0.0.1[${router.port}]`,
    NODE_NAME: "nyc-1",
    BIND_ADDR: "127.0.0.1",
    CLUSTER_SECRET_FILE: file,
  });
  const node = new RelayNode(config, { bindPort: 0, httpPort: 0, logger: quiet() });
  stops.push(() => node.stop());
  await node.start();
  expect(await metric(node.httpPort!, "relay_cluster_auth_failures_total")).toBe(0);

  const discovery = new ListDiscovery();
  discovery.addresses.push({ host: "127.0.0.1", port: node.channel.localMember.port });
  const other = parseClusterSecret(Buffer.from(randomBytes(32).toString("hex")), "test");
  const intruder: LocalCluster = member("nyc-0", discovery, { secret: other });
  stops.push(() => intruder.leave());
  await intruder.start();
  await waitFor(
    "the intruder's handshakes counted",
    async () => (await metric(node.httpPort!, "relay_cluster_auth_failures_total")) >= 1,
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  expect(node.channel.view!.members.map((m) => m.name)).toEqual(["nyc-1"]);
  expect(intruder.members.map((m) => m.name)).toEqual(["nyc-0"]);
});
