// Forged delivery reports on the bridge (issue 13, item 3): "forged Stable reports made the sender
// drop 20 of 20 messages for good". A real router, a real RelayChannel (nyc-1, reliable delivery)
// with 20 unstable messages for site sfc, and a forger on the bridge speaking raw protocol. The
// forged Stable must not make nyc-1 drop anything: sfc-1, started afterwards, gets all 20.
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { DiscoveredAddress, Discovery } from "../../runtime/cluster/discovery.js";
import { authFrame } from "../../runtime/protocol/auth.js";
import type { SiteAddress } from "../../runtime/protocol/types.js";
import { RelayChannel } from "../../runtime/relay/channel.js";
import { readRouterToken } from "../../runtime/relay/config.js";
import { ackEnvelope, encodeStable } from "../../runtime/relay/delivery/reports.js";
import { EnvelopeKind, encodeEnvelope } from "../../runtime/relay/envelope.js";
import type { RelayMessage } from "../../runtime/relay/types.js";
import type { RouterOptions } from "../../runtime/router/options.js";
import { GossipRouter } from "../../runtime/router/router.js";
import { waitFor } from "../helpers/wait.js";
import { TestClient } from "../router/util.js";

const quiet = () => pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const FAST = { heartbeatIntervalMs: 50, suspectTimeoutMs: 400, discoveryIntervalMs: 150, joinTimeoutMs: 500 };

class ListDiscovery implements Discovery {
  addresses: DiscoveredAddress[] = [];
  async find(): Promise<DiscoveredAddress[]> {
    return [...this.addresses];
  }
}

let router: GossipRouter | null = null;
const channels: RelayChannel[] = [];
const clients: TestClient[] = [];
let tokenDir = "";

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const ch of channels.splice(0)) await ch.close();
  await router?.stop();
  router = null;
});

beforeAll(() => {
  tokenDir = mkdtempSync(path.join(os.tmpdir(), "relay-forged-"));
  for (const site of ["nyc", "sfc", "lon"])
    writeFileSync(path.join(tokenDir, site), `${site}-token-${randomUUID()}\n`);
});

const tokenOf = (site: string) => readRouterToken(path.join(tokenDir, site));

async function startRouter(o: RouterOptions): Promise<number> {
  router = new GossipRouter({ port: 0, bind: "127.0.0.1", httpPort: null, ...o }, quiet());
  await router.start();
  return router.port!;
}

async function join(site: string, name: string, port: number, withToken: boolean): Promise<RelayChannel> {
  const discovery = new ListDiscovery();
  const ch = new RelayChannel({
    site,
    cluster: "relay",
    name,
    discovery,
    routers: [{ host: "127.0.0.1", port }],
    bindAddr: "127.0.0.1",
    bindPort: 0,
    clusterTuning: FAST,
    pollIntervalMs: 200,
    logger: quiet(),
    ...(withToken ? { routerToken: tokenOf(site) } : {}),
  });
  await ch.connect();
  discovery.addresses.push({ host: "127.0.0.1", port: ch.localMember.port });
  channels.push(ch);
  return ch;
}

function siteUuid(site: string, name: string): SiteAddress {
  return { kind: "site-uuid", uuid: randomUUID(), flags: 0, extensions: [], site, name };
}

/** nyc-1 up, 20 messages for site sfc (not there yet) unstable in its send buffer. */
async function senderWithBacklog(port: number, withToken: boolean): Promise<RelayChannel> {
  const nyc = await join("nyc", "nyc-1", port, withToken);
  await waitFor("nyc-1 on the bridge", () => nyc.ready, { timeoutMs: 10_000 });
  for (let i = 0; i < 20; i++) nyc.sendToSite("sfc", Buffer.from(`m${i}`));
  await waitFor("20 unstable messages", () => nyc.stats().bufferedMessages === 20, { timeoutMs: 5_000 });
  return nyc;
}

/** A Stable "sfc has delivered nyc-1's messages up to seq" and an ack, both claiming to be sfc's. */
function encodeReports(incarnation: string, seq: number): { stable: Buffer; ack: Buffer } {
  const origin = { site: "sfc", name: "sfc-1", incarnation: randomUUID() };
  const stable = encodeEnvelope({
    kind: EnvelopeKind.Stable,
    hops: 0,
    origin,
    seq: 0,
    dest: { kind: "member", site: "nyc", name: "nyc-1" },
    payload: encodeStable({ incarnation, seq }),
  });
  const ack = encodeEnvelope(
    ackEnvelope(origin, "forged-view", [{ site: "nyc", name: "nyc-1", incarnation, seq }]),
  );
  return { stable, ack };
}

/** nyc-1's SiteUUID as the router holds it. */
function nycAddress(): SiteAddress {
  const reg = [...router!.registry.group("bridge")!.members.values()].find(
    (r) => r.addr.kind === "site-uuid" && r.addr.site === "nyc",
  )!;
  return reg.addr as SiteAddress;
}

async function expectNothingDropped(nyc: RelayChannel, port: number, withToken: boolean): Promise<void> {
  expect(nyc.stats().bufferedMessages).toBe(20);
  const sfc = await join("sfc", "sfc-1", port, withToken);
  const got: RelayMessage[] = [];
  sfc.on("message", (m) => got.push(m));
  await waitFor("sfc-1 received the 20 messages", () => got.length >= 20, { timeoutMs: 15_000 });
  expect(got.map((m) => Buffer.from(m.payload).toString())).toEqual(
    [...Array(20).keys()].map((i) => `m${i}`),
  );
  await waitFor("stable (the real report)", () => nyc.stats().bufferedMessages === 0, { timeoutMs: 10_000 });
}

test("open router: a Stable for sfc sent from another site's address is ignored by the relay layer", async () => {
  // The router authenticates nobody here; the relay layer's site check still stops the naive
  // forger: its SiteUUID says lon, its envelope says sfc.
  const port = await startRouter({});
  const nyc = await senderWithBacklog(port, false);
  const forger = await TestClient.connect(port);
  clients.push(forger);
  const me = siteUuid("lon", "lon-1");
  forger.register("bridge", me, "lon-1");
  await waitFor("forger registered", () => router!.registry.size === 2);
  const forged = encodeReports(nyc.incarnation, 20);
  forger.message("bridge", nycAddress(), me, forged.stable);
  forger.message("bridge", nycAddress(), me, forged.ack);
  await waitFor("both refused by nyc-1", () => nyc.stats().bridgeRefused === 2, { timeoutMs: 5_000 });
  await expectNothingDropped(nyc, port, false);
});

test("token router: the forger can neither register sfc's address nor send from it; its own site's Stable is ignored", async () => {
  const port = await startRouter({ authTokens: tokenDir });
  const nyc = await senderWithBacklog(port, true);
  const forged = encodeReports(nyc.incarnation, 20);

  // 1. lon's token, sfc's SiteUUID: the router refuses the registration and closes.
  const a = await TestClient.connect(port);
  clients.push(a);
  a.send(authFrame("lon", tokenOf("lon")));
  a.register("bridge", siteUuid("sfc", "sfc-1"), "sfc-1");
  await a.waitClosed();
  // 2. lon's own SiteUUID registered, the Stable sent with an sfc sender: dropped by the router.
  const b = await TestClient.connect(port);
  clients.push(b);
  b.send(authFrame("lon", tokenOf("lon")));
  const lon = siteUuid("lon", "lon-1");
  b.register("bridge", lon, "lon-1");
  await waitFor("lon registered", () => router!.registry.size === 2);
  b.message("bridge", nycAddress(), siteUuid("sfc", "sfc-1"), forged.stable);
  await waitFor("source refused", () => (router!.stats().refused["source"] ?? 0) === 1);
  // 3. From its own address, claiming sfc: reaches nyc-1, which does not count it.
  b.message("bridge", nycAddress(), lon, forged.stable);
  await waitFor("refused by nyc-1", () => nyc.stats().bridgeRefused === 1, { timeoutMs: 5_000 });
  expect(router!.stats().refused).toEqual({ "foreign-address": 1, source: 1 });
  await expectNothingDropped(nyc, port, true);
});
