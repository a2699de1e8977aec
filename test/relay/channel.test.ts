// RelayChannel in one process, for real: two GossipRouters and two sites of LocalCluster members
// on loopback. Checks the cross-site paths (multicast, unicast, replies), the topology each member
// sees, site-master failover and a router loss.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { DiscoveredAddress, Discovery } from "../../runtime/cluster/discovery.js";
import { RelayChannel } from "../../runtime/relay/channel.js";
import type { RelayChannelOptions } from "../../runtime/relay/options.js";
import { answerBroadcasts } from "../../runtime/relay/responder.js";
import type { RelayMessage } from "../../runtime/relay/types.js";
import type { RouterTlsOptions } from "../../runtime/router/options.js";
import { GossipRouter } from "../../runtime/router/router.js";
import { makeTestPki, siteCert } from "../helpers/certs.js";
import { waitFor } from "../helpers/wait.js";

const quiet = () => pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const FAST = { heartbeatIntervalMs: 50, suspectTimeoutMs: 400, discoveryIntervalMs: 150, joinTimeoutMs: 500 };

class ListDiscovery implements Discovery {
  addresses: DiscoveredAddress[] = [];
  async find(): Promise<DiscoveredAddress[]> {
    return [...this.addresses];
  }
}

let routers: GossipRouter[] = [];
let channels: RelayChannel[] = [];
const discovery: Record<string, ListDiscovery> = {};

async function startRouters(n: number, tls?: RouterTlsOptions): Promise<{ host: string; port: number }[]> {
  routers = [];
  for (let i = 0; i < n; i++) {
    const r = new GossipRouter(
      { port: 0, bind: "127.0.0.1", httpPort: null, ...(tls ? { tls } : {}) },
      quiet(),
    );
    await r.start();
    routers.push(r);
  }
  return routers.map((r) => ({ host: "127.0.0.1", port: r.port! }));
}

async function join(
  site: string,
  name: string,
  routerList: { host: string; port: number }[],
  extra: Partial<RelayChannelOptions> = {},
): Promise<RelayChannel> {
  discovery[site] ??= new ListDiscovery();
  const ch = new RelayChannel({
    site,
    cluster: "relay",
    name,
    discovery: discovery[site],
    routers: routerList,
    bindAddr: "127.0.0.1",
    bindPort: 0,
    clusterTuning: FAST,
    pollIntervalMs: 300,
    logger: quiet(),
    ...extra,
  });
  await ch.connect();
  discovery[site].addresses.push({ host: "127.0.0.1", port: ch.localMember.port });
  answerBroadcasts(ch);
  channels.push(ch);
  return ch;
}

function collect(ch: RelayChannel): RelayMessage[] {
  const got: RelayMessage[] = [];
  ch.on("message", (m) => got.push(m));
  return got;
}

const text = (m: RelayMessage) => Buffer.from(m.payload).toString();
const label = (m: RelayMessage, site: string) =>
  m.from.site === site ? m.from.name : `${m.from.name}:${m.from.site}`;

afterEach(async () => {
  await Promise.allSettled(channels.map((c) => c.close()));
  await Promise.allSettled(routers.map((r) => r.stop()));
  channels = [];
  routers = [];
  for (const k of Object.keys(discovery)) delete discovery[k];
});

async function twoSites(nyc: number, sfc: number) {
  const list = await startRouters(2);
  const n: RelayChannel[] = [];
  const s: RelayChannel[] = [];
  for (let i = 1; i <= nyc; i++) n.push(await join("nyc", `nyc-${i}`, list));
  for (let i = 1; i <= sfc; i++) s.push(await join("sfc", `sfc-${i}`, list));
  const all = [...n, ...s];
  await waitFor("nyc view", () => n.every((c) => c.view?.members.length === nyc), { timeoutMs: 8000 });
  await waitFor("sfc view", () => s.every((c) => c.view?.members.length === sfc), { timeoutMs: 8000 });
  // Every member sees both sites (site masters through the bridge, others through TOPOLOGY).
  await waitFor("both sites visible everywhere", () => all.every((c) => c.topology().sites.length === 2), {
    timeoutMs: 8000,
  });
  return { n, s, list };
}

test("a line to everyone reaches every member of both sites; every answer comes back", async () => {
  const { n, s } = await twoSites(3, 2);
  const temp = s[1]!;
  const got = collect(temp);
  const seen = n.map((c) => collect(c));
  temp.sendToAll(Buffer.from("hello"));
  await waitFor("5 responses", () => got.filter((m) => text(m) === "response").length >= 5, {
    timeoutMs: 8000,
  });
  await new Promise((r) => setTimeout(r, 200)); // anything extra would show up now
  expect(got.filter((m) => text(m) === "hello").map((m) => label(m, "sfc"))).toEqual(["sfc-2"]);
  const responders = got.filter((m) => text(m) === "response").map((m) => label(m, "sfc"));
  expect(responders.sort()).toEqual(["nyc-1:nyc", "nyc-2:nyc", "nyc-3:nyc", "sfc-1", "sfc-2"]);
  for (const list of seen) {
    expect(list.filter((m) => text(m) === "hello").map((m) => `${m.from.name}:${m.from.site}`)).toEqual([
      "sfc-2:sfc",
    ]);
  }
});

test("topology: both sites with members and one site master each; routes through both routers", async () => {
  const { n, s, list } = await twoSites(2, 2);
  const t = s[1]!.topology();
  expect(t.sites.map((x) => x.site)).toEqual(["sfc", "nyc"]);
  expect(t.sites[0]!.siteMasters).toEqual(["sfc-1"]);
  expect(t.sites[1]!.siteMasters).toEqual(["nyc-1"]);
  expect(t.sites[1]!.members.map((m) => m.name)).toEqual(["nyc-1", "nyc-2"]);
  const routerNames = list.map((r) => `${r.host}[${r.port}]`).sort();
  await waitFor("route via 2 routers", () => s[1]!.topology().routes[0]?.routers.length === 2, {
    timeoutMs: 8000,
  });
  expect(s[1]!.topology().routes).toEqual([
    { site: "nyc", up: true, routers: routerNames, siteMasters: ["nyc-1"] },
  ]);
  expect(n[0]!.isSiteMaster).toBe(true);
  expect(n[1]!.isSiteMaster).toBe(false);
});

test("unicast to a member of another site, and to a whole site", async () => {
  const { n, s } = await twoSites(2, 2);
  const atNyc2 = collect(n[1]!);
  const atSfc = s.map((c) => collect(c));
  s[1]!.sendToMember({ name: "nyc-2", site: "nyc" }, Buffer.from("direct"));
  n[1]!.sendToSite("sfc", Buffer.from("to-sfc"));
  await waitFor("unicast arrives", () => atNyc2.some((m) => text(m) === "direct"), { timeoutMs: 8000 });
  await waitFor("site multicast arrives", () => atSfc.every((l) => l.some((m) => text(m) === "to-sfc")), {
    timeoutMs: 8000,
  });
  expect(atNyc2.find((m) => text(m) === "direct")!.from).toEqual({ name: "sfc-2", site: "sfc" });
  // Per-sender sequence numbers.
  const a = s[1]!.sendToAll(Buffer.from("x"));
  const b = s[1]!.sendToAll(Buffer.from("y"));
  expect(b).toBe(a + 1);
});

test("service data (sendService) travels with the application's messages but only to service listeners", async () => {
  const { n, s } = await twoSites(2, 2);
  const services = [...n, ...s].map((c) => {
    const got: RelayMessage[] = [];
    c.on("service", (m) => got.push(m));
    return got;
  });
  const apps = [...n, ...s].map((c) => collect(c));
  const sender = n[1]!;
  const seqs: number[] = [];
  for (let i = 0; i < 50; i++) {
    seqs.push(sender.sendService({ kind: "all" }, Buffer.from(`svc-${i}`)));
    seqs.push(sender.sendToAll(Buffer.from(`app-${i}`)));
  }
  seqs.push(sender.sendService({ kind: "member", site: "sfc", name: "sfc-2" }, Buffer.from("svc-one")));
  const isSvc = (m: RelayMessage) => text(m).startsWith("svc-");
  await waitFor(
    "50 service messages everywhere and the unicast at sfc-2",
    () =>
      services.every((l) => l.filter(isSvc).length >= 50) && services[3]!.some((m) => text(m) === "svc-one"),
    { timeoutMs: 15_000 },
  );
  await waitFor(
    "50 app messages everywhere",
    () => apps.every((l) => l.filter((m) => text(m).startsWith("app-")).length >= 50),
    {
      timeoutMs: 15_000,
    },
  );
  for (const [i, l] of services.entries()) {
    const want = Array.from({ length: 50 }, (_, k) => `svc-${k}`);
    expect(l.map(text)).toEqual(i === 3 ? [...want, "svc-one"] : want); // in order, exactly once
    expect(l.every((m) => m.from.name === "nyc-2" && m.from.site === "nyc")).toBe(true);
  }
  for (const l of apps) expect(l.filter(isSvc)).toEqual([]); // never an application message
  expect(seqs).toEqual(Array.from({ length: 101 }, (_, k) => seqs[0]! + k)); // one sequence space
});

test("a cross-site unicast's body reaches only its addressee; the other members' lanes stay gap-free", async () => {
  const { n, s } = await twoSites(2, 3);
  const [, sfc2, sfc3] = s;
  const atSfc2 = collect(sfc2!);
  const atSfc3 = collect(sfc3!);
  const sender = n[1]!;
  const before = sfc3!.stats().clusterBytesIn;
  const BODY = 64 * 1024;
  for (let i = 0; i < 20; i++) sender.sendToMember({ name: "sfc-2", site: "sfc" }, Buffer.alloc(BODY, i));
  sender.sendToSite("sfc", Buffer.from("after"));
  await waitFor("20 unicasts at sfc-2", () => atSfc2.filter((m) => m.payload.length === BODY).length === 20, {
    timeoutMs: 15_000,
  });
  // The site multicast after them is delivered at sfc-3 without a gap: its lane moved past the
  // 20 unicasts (each a payload-less lane position there).
  await waitFor("the site multicast at sfc-3", () => atSfc3.some((m) => text(m) === "after"), {
    timeoutMs: 15_000,
  });
  expect(atSfc3.map(text)).toEqual(["after"]);
  expect(atSfc2.filter((m) => m.payload.length === BODY).map((m) => m.payload[0])).toEqual(
    Array.from({ length: 20 }, (_, i) => i),
  );
  // 20 x 64 KiB went to sfc-2; sfc-3 (not the site master) read far less than one of them.
  expect(sfc3!.stats().clusterBytesIn - before).toBeLessThan(BODY);
  expect(sfc3!.stats().missed).toBe(0);
});

test("the site master leaves: the next member takes over and cross-site traffic flows again", async () => {
  const { n, s } = await twoSites(3, 2);
  const temp = s[1]!;
  const got = collect(temp);
  await n[0]!.close();
  await waitFor("nyc-2 becomes site master", () => n[1]!.isSiteMaster, { timeoutMs: 8000 });
  let responses = 0;
  for (let attempt = 0; attempt < 40 && responses < 4; attempt++) {
    got.length = 0;
    temp.sendToAll(Buffer.from("again"));
    await new Promise((r) => setTimeout(r, 250));
    responses = new Set(got.filter((m) => text(m) === "response").map((m) => label(m, "sfc"))).size;
  }
  expect(responses).toBe(4);
  await waitFor("sfc sees nyc-2 as site master", () => temp.topology().sites[1]?.siteMasters[0] === "nyc-2", {
    timeoutMs: 8000,
  });
});

test("one router stops: the line still reaches everyone through the other", async () => {
  const { s } = await twoSites(2, 2);
  const temp = s[1]!;
  await routers[0]!.stop();
  const got = collect(temp);
  let responses = 0;
  for (let attempt = 0; attempt < 40 && responses < 4; attempt++) {
    got.length = 0;
    temp.sendToAll(Buffer.from("still there?"));
    await new Promise((r) => setTimeout(r, 250));
    responses = new Set(got.filter((m) => text(m) === "response").map((m) => label(m, "sfc"))).size;
  }
  expect(responses).toBe(4);
});

test("two site masters per site: every member still gets each line exactly once", async () => {
  const list = await startRouters(2);
  const k = { siteMasters: 2 };
  const n = [
    await join("nyc", "nyc-1", list, k),
    await join("nyc", "nyc-2", list, k),
    await join("nyc", "nyc-3", list, k),
  ];
  const s = [
    await join("sfc", "sfc-1", list, k),
    await join("sfc", "sfc-2", list, k),
    await join("sfc", "Temp", list, k),
  ];
  const all = [...n, ...s];
  await waitFor(
    "views",
    () => n.every((c) => c.view?.members.length === 3) && s.every((c) => c.view?.members.length === 3),
    { timeoutMs: 8000 },
  );
  expect(
    all
      .filter((c) => c.isSiteMaster)
      .map((c) => c.name)
      .sort(),
  ).toEqual(["nyc-1", "nyc-2", "sfc-1", "sfc-2"]);
  await waitFor("both sites visible everywhere", () => all.every((c) => c.topology().sites.length === 2), {
    timeoutMs: 8000,
  });
  await waitFor("two nyc site masters seen", () => s[2]!.topology().routes[0]?.siteMasters.length === 2, {
    timeoutMs: 8000,
  });
  const temp = s[2]!;
  const got = collect(temp);
  const seen = all.map((c) => collect(c));
  for (let i = 0; i < 5; i++) temp.sendToAll(Buffer.from(`line ${i}`));
  await waitFor("6 answers x 5 lines", () => got.filter((m) => text(m) === "response").length >= 30, {
    timeoutMs: 8000,
  });
  await new Promise((r) => setTimeout(r, 300));
  expect(got.filter((m) => text(m) === "response")).toHaveLength(30);
  for (const list of seen) {
    // Each member got the 5 lines once each, in the order they were sent.
    expect(list.filter((m) => text(m).startsWith("line")).map(text)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `line ${i}`),
    );
  }
});

test("TLS with client certificates towards the routers", async () => {
  const pki = await makeTestPki(mkdtempSync(path.join(os.tmpdir(), "relay-pki-")));
  const list = await startRouters(1, {
    certFile: pki.serverCert,
    keyFile: pki.serverKey,
    caFile: pki.caCert,
    clientAuth: true,
  });
  // One certificate per site: the router lets a site register only its own site's addresses.
  const tlsOf = async (site: string) => ({ tls: { ca: pki.caCert, ...(await siteCert(pki, site)) } });
  const nyc = await join("nyc", "nyc-1", list, await tlsOf("nyc"));
  const sfc = await join("sfc", "sfc-1", list, await tlsOf("sfc"));
  await waitFor("both site masters registered over TLS", () => nyc.ready && sfc.ready, { timeoutMs: 8000 });
  await waitFor("sfc sees nyc", () => sfc.topology().sites.length === 2, { timeoutMs: 8000 });
  const got = collect(sfc);
  sfc.sendToAll(Buffer.from("over tls"));
  await waitFor("answer from nyc", () => got.some((m) => text(m) === "response" && m.from.site === "nyc"), {
    timeoutMs: 8000,
  });
  // A site master with a certificate the routers do not trust never becomes ready.
  const rogue = await join("lon", "lon-1", list, {
    tls: { ca: pki.caCert, cert: pki.rogueCert, key: pki.rogueKey },
  });
  await new Promise((r) => setTimeout(r, 500));
  expect(rogue.isSiteMaster).toBe(true);
  expect(rogue.ready).toBe(false);
  expect(sfc.topology().sites.map((x) => x.site)).toEqual(["sfc", "nyc"]);
});
