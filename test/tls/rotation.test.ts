// Certificate rotation without restarts (issue 13, item 6). The TLS files live in a directory laid
// out and updated like a Kubernetes Secret volume (a `..data` symlink swapped atomically to a new
// timestamped directory). Reproduces what main did: the router read its certificate, key and CA
// once at start, so a rotated Secret was ignored until a restart (a client of a new CA stayed
// refused); the tunnel client re-read the files at each connect without checking them, so a
// half-written or mismatched key made every reconnect fail. Now: the router and the node reload
// checked material, new handshakes use it, existing links keep streaming without losing a
// message, and bad files are refused (counted) while the old material keeps serving.
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { pino } from "pino";
import { parseRelayEnv } from "../../contract/relay-env.js";
import type { Discovery } from "../../runtime/cluster/discovery.js";
import { heartbeatFrame, registerFrame } from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import { RelayChannel } from "../../runtime/relay/channel.js";
import { RelayNode } from "../../runtime/relay/node.js";
import type { RelayMessage } from "../../runtime/relay/types.js";
import type { RouterTlsOptions } from "../../runtime/router/options.js";
import { GossipRouter } from "../../runtime/router/router.js";
import { type CertPair, issueCert, makeCa } from "../helpers/certs.js";
import { type RouterProcess, startRouterProcess } from "../helpers/processes.js";
import { SecretVolume } from "../helpers/secret-volume.js";
import { waitFor } from "../helpers/wait.js";
import { sleep, TestClient, uuid } from "../router/util.js";

const quiet = () => pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const LONG = { timeoutMs: 20_000 };
const FAST = { heartbeatIntervalMs: 50, suspectTimeoutMs: 400, discoveryIntervalMs: 150, joinTimeoutMs: 500 };

let dir = "";
let oldCa: CertPair;
let newCa: CertPair;
/** Router certificates: one per CA. */
let server1: CertPair;
let server2: CertPair;
/** Client certificates. */
let clientOld: CertPair;
let clientNew: CertPair;
let nycNew: CertPair;
let sfcCert: CertPair;
const pem: Record<string, Buffer> = {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "tls-rotation-"));
  [oldCa, newCa] = await Promise.all([makeCa(dir, "ca-old"), makeCa(dir, "ca-new")]);
  [server1, server2, clientOld, clientNew, nycNew, sfcCert] = await Promise.all([
    issueCert(dir, "server1", oldCa),
    issueCert(dir, "server2", newCa),
    // Site identities (URI SANs): the router in mutual-TLS mode authorizes by them.
    issueCert(dir, "client-old", oldCa, undefined, "nyc"),
    issueCert(dir, "client-new", newCa, undefined, "nyc"),
    issueCert(dir, "nyc-new", newCa, undefined, "nyc"),
    issueCert(dir, "sfc", newCa, undefined, "sfc"),
  ]);
  const all = { oldCa, newCa, server1, server2, clientOld, clientNew, nycNew, sfcCert };
  for (const [name, pair] of Object.entries(all)) {
    pem[`${name}.crt`] = await readFile(pair.cert);
    pem[`${name}.key`] = await readFile(pair.key);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bothCas = () => Buffer.concat([pem["oldCa.crt"]!, pem["newCa.crt"]!]);
const half = (b: Buffer) => b.subarray(0, Math.floor(b.length / 2));

let routers: GossipRouter[] = [];
let clients: TestClient[] = [];
let stops: (() => Promise<unknown>)[] = [];
/** Cleared by afterEach too, so a failed test's pump stops. */
let pumping = false;
afterEach(async () => {
  pumping = false;
  for (const c of clients) c.destroy();
  await Promise.allSettled(stops.map((s) => s()));
  await Promise.allSettled(routers.map((r) => r.stop()));
  routers = [];
  clients = [];
  stops = [];
});

async function volume(name: string, files: Record<string, Buffer>): Promise<SecretVolume> {
  const v = new SecretVolume(path.join(dir, `${name}-${Math.random().toString(36).slice(2)}`));
  await v.write(files);
  return v;
}

function routerTls(v: SecretVolume): RouterTlsOptions {
  return {
    certFile: v.file("tls.crt"),
    keyFile: v.file("tls.key"),
    caFile: v.file("ca.crt"),
    clientAuth: true,
    reloadIntervalMs: 50,
  };
}

async function startRouter(tlsOptions: RouterTlsOptions, port = 0): Promise<GossipRouter> {
  const r = new GossipRouter({ bind: "127.0.0.1", port, httpPort: 0, tls: tlsOptions }, quiet());
  await r.start();
  routers.push(r);
  return r;
}

/** One sample of an unlabelled metric from a /metrics endpoint (undefined when absent). */
async function metric(httpPort: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** A raw client with this certificate, trusting both CAs for the router's certificate. */
async function client(port: number, pair: "clientOld" | "clientNew"): Promise<TestClient> {
  const c = await TestClient.connect(port, {
    ca: bothCas(),
    cert: pem[`${pair}.crt`]!,
    key: pem[`${pair}.key`]!,
  });
  clients.push(c);
  return c;
}

/** Issuer CN of the certificate the router presents to a new handshake. */
function presentedIssuer(c: TestClient): string {
  return (c.socket as tls.TLSSocket).getPeerX509Certificate()?.issuer.trim() ?? "(none)";
}

/**
 * Connects with `pair` and tries to register. Resolves with whether the router kept the
 * registration and the issuer of the certificate it presented. Waits for the router's verdict
 * before closing: a TLS 1.3 client that closes right after its own handshake leaves a socket the
 * router (allowHalfOpen) never closes, and stop() would wait for it.
 */
async function admitted(
  router: GossipRouter,
  pair: "clientOld" | "clientNew",
  n: number,
): Promise<{ ok: boolean; issuer: string }> {
  const before = router.stats().tlsRejected;
  const socket = tls.connect({
    host: "127.0.0.1",
    port: router.port!,
    ca: bothCas(),
    cert: pem[`${pair}.crt`]!,
    key: pem[`${pair}.key`]!,
  });
  socket.on("error", () => {});
  let issuer = "(none)";
  socket.on("secureConnect", () => {
    issuer = socket.getPeerX509Certificate()?.issuer.trim() ?? "(none)";
    socket.write(registerFrame("probe", uuid(1000 + n), null, null));
  });
  await waitFor(
    "the router to keep or refuse the probe client",
    () => router.stats().tlsRejected > before || router.registry.group("probe") !== undefined,
    LONG,
  );
  const ok = router.registry.group("probe") !== undefined;
  socket.destroy();
  await waitFor("the probe to be gone", () => router.registry.group("probe") === undefined, LONG);
  return { ok, issuer };
}

test("router: a swapped Secret volume is reloaded; a new CA's client gets in; the old link loses nothing", async () => {
  const v = await volume("router", {
    "tls.crt": pem["server1.crt"]!,
    "tls.key": pem["server1.key"]!,
    "ca.crt": pem["oldCa.crt"]!,
  });
  const router = await startRouter(routerTls(v));
  const port = router.port!;
  const httpPort = router.httpPort!;
  expect((await admitted(router, "clientNew", 1)).ok).toBe(false); // the new CA is not trusted yet
  expect(await metric(httpPort, "relay_router_tls_cert_not_after_seconds")).toBe(
    Math.floor(Date.parse(new X509Certificate(pem["server1.crt"]!).validTo) / 1000),
  );

  const a = await client(port, "clientOld");
  const b = await client(port, "clientOld");
  expect(presentedIssuer(a)).toContain("CN=ca-old");
  a.register("chat", uuid(1));
  b.register("chat", uuid(2));
  await waitFor("a and b registered", () => router.registry.size === 2, LONG);

  // a streams numbered unicasts to b for the whole rotation.
  let sent = 0;
  pumping = true;
  const pump = (async () => {
    while (pumping) {
      for (let i = 0; i < 10; i++) a.message("chat", uuid(2), uuid(1), `m${sent++}`);
      await sleep(2);
    }
  })();
  await waitFor("traffic before the swap", () => b.ofType(GossipType.Message).length > 100, LONG);

  await v.write({
    "tls.crt": pem["server2.crt"]!,
    "tls.key": pem["server2.key"]!,
    "ca.crt": bothCas(),
  });
  await waitFor("the router to reload", () => router.tlsReload?.reloads === 1, LONG);
  const sentAtReload = sent;
  expect(await metric(httpPort, "relay_router_tls_reloads_total")).toBe(1);
  expect(await metric(httpPort, "relay_router_tls_reload_rejected_total")).toBe(0);
  expect(await metric(httpPort, "relay_router_tls_cert_not_after_seconds")).toBe(
    Math.floor(Date.parse(new X509Certificate(pem["server2.crt"]!).validTo) / 1000),
  );

  // A client of the new CA gets in, and sees the new server certificate.
  const c = await client(port, "clientNew");
  expect(presentedIssuer(c)).toContain("CN=ca-new");
  c.register("chat", uuid(3));
  await waitFor("c registered", () => router.registry.size === 3, LONG);
  c.message("chat", uuid(2), uuid(3), "from the new CA");
  await waitFor("b to get c's message", () => b.texts().includes("from the new CA"), LONG);
  // A client of the old CA still gets in too (the bundle holds both during the rotation).
  expect((await admitted(router, "clientOld", 2)).ok).toBe(true);

  await waitFor("traffic after the reload", () => sent > sentAtReload + 100, LONG);
  pumping = false;
  await pump;
  const total = sent;
  await waitFor(
    `b to get all ${total} messages`,
    () => b.texts().filter((t) => t.startsWith("m")).length >= total,
    LONG,
  );
  expect(b.texts().filter((t) => t.startsWith("m"))).toEqual(
    Array.from({ length: total }, (_, i) => `m${i}`),
  );
  expect(a.closed || a.ended || b.closed || b.ended).toBe(false);
  // a, b, c and the admitted probe (the refused one never became a connection): nobody reconnected.
  expect(router.stats().connectionsTotal).toBe(4);
});

test("router: a mismatched key, a half-written key or CA bundle is refused and the old material keeps serving", async () => {
  const v = await volume("router-bad", {
    "tls.crt": pem["server1.crt"]!,
    "tls.key": pem["server1.key"]!,
    "ca.crt": pem["oldCa.crt"]!,
  });
  const router = await startRouter(routerTls(v));
  const httpPort = router.httpPort!;
  const a = await client(router.port!, "clientOld");
  a.register("chat", uuid(1));
  await waitFor("a registered", () => router.registry.size === 1, LONG);

  const bad: Record<string, Buffer>[] = [
    // The new certificate with the old key (the cert was updated before the key).
    { "tls.crt": pem["server2.crt"]!, "tls.key": pem["server1.key"]!, "ca.crt": bothCas() },
    // A key cut in the middle.
    { "tls.crt": pem["server2.crt"]!, "tls.key": half(pem["server2.key"]!), "ca.crt": bothCas() },
    // A CA bundle whose second certificate is cut in the middle.
    {
      "tls.crt": pem["server2.crt"]!,
      "tls.key": pem["server2.key"]!,
      "ca.crt": Buffer.concat([pem["oldCa.crt"]!, half(pem["newCa.crt"]!)]),
    },
    // A certificate cut in the middle.
    { "tls.crt": half(pem["server2.crt"]!), "tls.key": pem["server2.key"]!, "ca.crt": bothCas() },
  ];
  for (const [i, files] of bad.entries()) {
    await v.write(files);
    await waitFor(`bad rotation #${i + 1} to be refused`, () => router.tlsReload?.rejected === i + 1, LONG);
    // Still the old material: an old-CA client gets in and sees the old certificate; a new-CA one does not.
    const old = await admitted(router, "clientOld", i);
    expect(old.ok).toBe(true);
    expect(old.issuer).toContain("CN=ca-old");
    expect((await admitted(router, "clientNew", i)).ok).toBe(false);
  }
  expect(router.tlsReload?.reloads).toBe(0);
  expect(await metric(httpPort, "relay_router_tls_reload_rejected_total")).toBe(4);

  // Fixed files are taken at the next poll.
  await v.write({ "tls.crt": pem["server2.crt"]!, "tls.key": pem["server2.key"]!, "ca.crt": bothCas() });
  await waitFor("the good rotation to be loaded", () => router.tlsReload?.reloads === 1, LONG);
  expect((await admitted(router, "clientNew", 9)).ok).toBe(true);
  // The link made before all this never noticed: it still carries a message to itself.
  a.message("chat", null, uuid(1), "still here");
  await waitFor("a's multicast echo", () => a.texts().includes("still here"), LONG);
  expect(a.closed || a.ended).toBe(false);
});

test("router: a CA removed from the bundle closes the links it authenticated; the others keep running", async () => {
  // What it guards against: after a CA rotation meant to cut a compromised or retired CA, a
  // link authenticated through that CA stayed up (and kept its registrations) until it
  // happened to reconnect.
  for (const closeUntrustedOnReload of [true, false]) {
    const v = await volume("router-untrusted", {
      "tls.crt": pem["server1.crt"]!,
      "tls.key": pem["server1.key"]!,
      "ca.crt": bothCas(),
    });
    const router = await startRouter({ ...routerTls(v), closeUntrustedOnReload });
    const old = await client(router.port!, "clientOld");
    const neu = await client(router.port!, "clientNew");
    old.register("chat", uuid(1));
    neu.register("chat", uuid(2));
    await waitFor("both registered", () => router.registry.size === 2, LONG);

    await v.write({
      "tls.crt": pem["server2.crt"]!,
      "tls.key": pem["server2.key"]!,
      "ca.crt": pem["newCa.crt"]!,
    });
    await waitFor("the reload", () => router.tlsReload?.reloads === 1, LONG);
    if (closeUntrustedOnReload) {
      await old.waitClosed(LONG.timeoutMs);
      expect(old.gracefulCloses).toBe(1);
      expect(router.stats().closes["tls-untrusted"]).toBe(1);
      // The remaining member hears that the other one is gone.
      await neu.waitType(GossipType.Suspect);
    } else {
      // Opt-out: the old link stays until it reconnects by itself.
      old.message("chat", uuid(2), uuid(1), "still trusted by its session");
      await waitFor(
        "the old link's message",
        () => neu.texts().includes("still trusted by its session"),
        LONG,
      );
      expect(router.stats().closes["tls-untrusted"]).toBeUndefined();
    }
    neu.message("chat", null, uuid(2), "new link");
    await waitFor("the new-CA link's echo", () => neu.texts().includes("new link"), LONG);
    expect(neu.closed || neu.ended).toBe(false);
    expect((await admitted(router, "clientOld", 5)).ok).toBe(false);
    for (const c of clients) c.destroy();
    clients = [];
    await router.stop();
    routers = [];
  }
});

test("relay router (the built CLI, default 10 s poll): a rotated Secret admits the new CA's client without a restart", async () => {
  const v = await volume("cli", {
    "tls.crt": pem["server1.crt"]!,
    "tls.key": pem["server1.key"]!,
    "ca.crt": pem["oldCa.crt"]!,
  });
  const proc: RouterProcess = await startRouterProcess([
    "--bind",
    "127.0.0.1",
    "--tls-cert",
    v.file("tls.crt"),
    "--tls-key",
    v.file("tls.key"),
    "--tls-ca",
    v.file("ca.crt"),
    "--tls-client-auth",
  ]);
  stops.push(() => proc.stop());
  /** Whether a client of `pair` gets an answer to REGISTER + HEARTBEAT from the router process. */
  const answered = async (pair: "clientOld" | "clientNew"): Promise<boolean> => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: proc.port,
      ca: bothCas(),
      cert: pem[`${pair}.crt`]!,
      key: pem[`${pair}.key`]!,
    });
    let answer = false;
    socket.on("data", () => {
      answer = true;
    });
    socket.on("error", () => {});
    socket.on("secureConnect", () => {
      socket.write(registerFrame("probe", uuid(7), null, null));
      socket.write(heartbeatFrame());
    });
    await waitFor("an answer or a refusal", () => answer || socket.destroyed, LONG);
    socket.destroy();
    return answer;
  };
  const old = await client(proc.port, "clientOld");
  old.register("chat", uuid(1));
  expect(await answered("clientNew")).toBe(false);

  await v.write({ "tls.crt": pem["server2.crt"]!, "tls.key": pem["server2.key"]!, "ca.crt": bothCas() });
  await waitFor(
    "the router process to log the reload",
    () => proc.logs.some((l) => l.includes("TLS material reloaded")),
    {
      timeoutMs: 40_000,
      intervalMs: 100,
    },
  );
  expect(await metric(proc.httpPort, "relay_router_tls_reloads_total")).toBe(1);
  expect(await answered("clientNew")).toBe(true);
  // The link made before the rotation is still served.
  old.message("chat", null, uuid(1), "after the reload");
  await waitFor("the old link's echo", () => old.texts().includes("after the reload"), LONG);
}, 90_000);

class NoDiscovery implements Discovery {
  async find() {
    return [];
  }
}

test("relay node: new router connections use the rotated client certificate and CA; a bad key is refused; no message is lost", async () => {
  const rv = await volume("router-node", {
    "tls.crt": pem["server1.crt"]!,
    "tls.key": pem["server1.key"]!,
    "ca.crt": bothCas(),
  });
  let router = await startRouter(routerTls(rv));
  const port = router.port!;
  // nyc trusts only the old CA for the router at first.
  const nv = await volume("nyc", {
    "tls.crt": pem["clientOld.crt"]!,
    "tls.key": pem["clientOld.key"]!,
    "ca.crt": pem["oldCa.crt"]!,
  });
  const config = parseRelayEnv({
    SITE: "nyc",
    CLUSTER: "relay",
    STATIC_MEMBERS: "127.0.0.1[9]",
    TUNNEL_INITIAL_HOSTS: `127.0.0.1[${port}]`,
    NODE_NAME: "nyc-1",
    BIND_ADDR: "127.0.0.1",
    TLS_CERT: nv.file("tls.crt"),
    TLS_KEY: nv.file("tls.key"),
    TLS_CA: nv.file("ca.crt"),
  });
  const node = new RelayNode(config, {
    bindPort: 0,
    httpPort: 0,
    clusterTuning: FAST,
    pollIntervalMs: 300,
    tlsReloadIntervalMs: 50,
    logger: quiet(),
  });
  stops.push(() => node.stop());
  await node.start();
  const sfc = new RelayChannel({
    site: "sfc",
    cluster: "relay",
    name: "sfc-1",
    discovery: new NoDiscovery(),
    routers: [{ host: "127.0.0.1", port }],
    bindAddr: "127.0.0.1",
    bindPort: 0,
    clusterTuning: FAST,
    pollIntervalMs: 300,
    tls: { ca: bothCas(), cert: pem["sfcCert.crt"]!, key: pem["sfcCert.key"]! },
    logger: quiet(),
  });
  stops.push(() => sfc.close());
  await sfc.connect();
  const nyc = node.channel;
  await waitFor(
    "both sites see each other",
    () => nyc.ready && sfc.ready && nyc.topology().sites.length === 2 && sfc.topology().sites.length === 2,
    LONG,
  );
  const httpPort = node.httpPort!;
  expect(await metric(httpPort, "relay_tls_reloads_total")).toBe(0);

  const got: RelayMessage[] = [];
  sfc.on("message", (m) => {
    if (m.from.site === "nyc") got.push(m);
  });
  let sent = 0;
  pumping = true;
  const pump = (async () => {
    while (pumping) {
      await nyc.sendAsync({ kind: "site", site: "sfc" }, Buffer.from(`n${sent}`));
      sent++;
      await sleep(5);
    }
  })();
  const flowing = async (what: string) => {
    const base = got.length;
    await waitFor(what, () => got.length > base + 20, LONG);
  };
  await flowing("traffic before the rotation");

  // 1. The node's Secret rotates to a new-CA certificate and a bundle trusting both router CAs.
  const connectionsBefore = router.stats().connectionsTotal;
  await nv.write({ "tls.crt": pem["nycNew.crt"]!, "tls.key": pem["nycNew.key"]!, "ca.crt": bothCas() });
  await waitFor(
    "the node to reload",
    async () => (await metric(httpPort, "relay_tls_reloads_total")) === 1,
    LONG,
  );
  expect(await metric(httpPort, "relay_tls_cert_not_after_seconds")).toBe(
    Math.floor(Date.parse(new X509Certificate(pem["nycNew.crt"]!).validTo) / 1000),
  );
  // The node's existing link was left alone (the router still trusts its old certificate).
  await flowing("traffic on the existing links after the node's reload");
  expect(router.stats().connectionsTotal).toBe(connectionsBefore);

  // 2. The router's Secret rotates to the new CA only: old-CA certificates are no longer trusted.
  //    nyc's link, authenticated with its old certificate, is closed; nyc reconnects with its new
  //    one (the only kind accepted now) and verifies server2 with its new bundle. sfc's link
  //    (new CA) stays up. The reliable relay layer re-sends what was in flight.
  await rv.write({
    "tls.crt": pem["server2.crt"]!,
    "tls.key": pem["server2.key"]!,
    "ca.crt": pem["newCa.crt"]!,
  });
  await waitFor("the router to reload", () => router.tlsReload?.reloads === 1, LONG);
  await waitFor("nyc's old link to be closed", () => router.stats().closes["tls-untrusted"] === 1, LONG);
  await waitFor("nyc back on the router", () => router.registry.size >= 2 && nyc.ready, LONG);
  await flowing("traffic after nyc's reconnect with its new certificate");
  expect(router.stats().connectionsTotal).toBe(connectionsBefore + 1); // nyc's new link only
  expect(router.stats().closes["tls-untrusted"]).toBe(1);

  // 3. The router restarts: every link reconnects, nyc's again with its new certificate.
  const restart = async () => {
    await router.stop();
    routers = routers.filter((r) => r !== router);
    router = await startRouter(routerTls(rv), port);
    await waitFor(
      "both site masters back on the router",
      () => router.registry.size >= 2 && nyc.ready && sfc.ready,
      LONG,
    );
  };
  await restart();
  await flowing("traffic through the restarted router");

  // 4. A bad rotation of the node's key (the old key with the new certificate) is refused; the
  //    next connect still uses the last good material.
  await nv.write({ "tls.crt": pem["nycNew.crt"]!, "tls.key": pem["clientOld.key"]!, "ca.crt": bothCas() });
  await waitFor(
    "the node to refuse the bad key",
    async () => (await metric(httpPort, "relay_tls_reload_rejected_total")) === 1,
    LONG,
  );
  await restart();
  await flowing("traffic after a reconnect with the last good material");

  pumping = false;
  await pump;
  const total = sent;
  await waitFor(`sfc to get all ${total} messages`, () => got.length >= total, LONG);
  await sleep(200); // a duplicate would show up now
  expect(got.map((m) => Buffer.from(m.payload).toString())).toEqual(
    Array.from({ length: total }, (_, i) => `n${i}`),
  );
}, 90_000);
