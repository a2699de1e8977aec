// Identity and authorization at the router (issue 13, items 1 and 2): each test reproduces one of
// the attacks the issue found on main and fails there. Real sockets, real TLS with certificates
// whose URI SAN names the site (as RelayPki issues them), real token files.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { pino } from "pino";
import { authFrame } from "../../runtime/protocol/auth.js";
import { decodeBody, decodeMessageSender, encodeFrame } from "../../runtime/protocol/codec.js";
import {
  getMbrsFrame,
  heartbeatFrame,
  messageFrame,
  unregisterFrame,
} from "../../runtime/protocol/frames.js";
import { type Address, GossipType, type SiteAddress } from "../../runtime/protocol/types.js";
import { siteFromSubjectAltName } from "../../runtime/router/identity.js";
import { resolveRouterOptions } from "../../runtime/router/options.js";
import { senderStart } from "../../runtime/router/source.js";
import { TunnelClient } from "../../runtime/tunnel/client.js";
import { makeTestPki, siteCert, type TestPki } from "../helpers/certs.js";
import { waitFor } from "../helpers/wait.js";
import { arbAddress } from "../protocol/arbitraries.js";
import { loadCaptures } from "../protocol/captures.js";
import { requireBuild, runCli } from "../relay/cli.js";
import { RouterHarness, type TestClient, uuid } from "./util.js";

let pki: TestPki;
const certs: Record<string, { cert: string; key: string }> = {};

beforeAll(async () => {
  pki = await makeTestPki(mkdtempSync(path.join(os.tmpdir(), "relay-authz-pki-")));
  for (const site of ["nyc", "sfc"]) certs[site] = await siteCert(pki, site);
}, 60_000);

const h = new RouterHarness();
afterEach(() => h.teardown());

const mtls = { certFile: "", keyFile: "", caFile: "", clientAuth: true };
function mtlsOptions() {
  return { ...mtls, certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert };
}

/** A TLS client presenting site `site`'s certificate. */
function as(site: string): Promise<TestClient> {
  const c = certs[site]!;
  return tlsClient(c.cert, c.key);
}

function tlsClient(cert: string, key: string): Promise<TestClient> {
  const pem = (f: string) => readFileSync(f);
  return h.client({ ca: pem(pki.caCert), cert: pem(cert), key: pem(key), servername: "localhost" });
}

function siteUuid(site: string, name: string, n: number): SiteAddress {
  return { kind: "site-uuid", uuid: uuid(n).uuid, flags: 0, extensions: [], site, name };
}

const refused = (reason: string) => h.router.stats().refused[reason] ?? 0;

describe("mutual TLS: the certificate's site is the identity", () => {
  beforeEach(() => h.start({ tls: mtlsOptions() }).then(() => undefined));

  test("hijack: sfc's certificate cannot register nyc-1's address; nyc-1 keeps 100 % of its unicasts", async () => {
    // Issue 13: a client with sfc's valid certificate registered nyc-1's address and got 10 of 10
    // unicasts meant for nyc-1 (the real nyc-1 got 0, nothing logged).
    const nyc1 = await as("nyc");
    const nyc1Addr = siteUuid("nyc", "nyc-1", 1);
    nyc1.register("bridge", nyc1Addr, "nyc-1");
    const sender = await as("sfc");
    const sfcAddr = siteUuid("sfc", "sfc-1", 2);
    sender.register("bridge", sfcAddr, "sfc-1");
    await h.registered(2);

    const spy = await as("sfc");
    spy.register("bridge", nyc1Addr, "nyc-1");
    await spy.waitClosed();
    expect(refused("foreign-address")).toBe(1);
    // A plain UUID (a JGroups member) held by nyc cannot be taken over by sfc either.
    const member = uuid(10);
    nyc1.register("chat", member, "jg-1");
    await h.registered(3);
    const spy2 = await as("sfc");
    spy2.register("chat", member, "jg-1");
    await spy2.waitClosed();
    expect(refused("takeover")).toBe(1);

    for (let i = 0; i < 10; i++) sender.message("bridge", nyc1Addr, sfcAddr, `u${i}`);
    await waitFor("nyc-1 got its 10 unicasts", () => nyc1.texts().length === 10);
    expect(nyc1.texts()).toEqual([...Array(10).keys()].map((i) => `u${i}`));
    expect(spy.texts()).toEqual([]);
    expect(h.router.registry.group("bridge")!.members.size).toBe(2);
  });

  test("the same identity may take over its own address (a site master reconnecting)", async () => {
    const addr = siteUuid("nyc", "nyc-1", 1);
    const old = await as("nyc");
    old.register("bridge", addr, "nyc-1");
    await h.registered(1);
    const again = await as("nyc");
    again.register("bridge", addr, "nyc-1");
    await waitFor(
      "taken over",
      () => h.router.registry.group("bridge")!.members.values().next().value?.conn.id === 2,
    );
    expect(Object.keys(h.router.stats().refused)).toEqual([]);
  });

  test("foreign UNREGISTER is refused: the next messages still reach nyc-1", async () => {
    // Issue 13: sfc's UNREGISTER of nyc-1 sent the next 5 messages to `unknown-dest`.
    const nyc1 = await as("nyc");
    const nyc1Addr = siteUuid("nyc", "nyc-1", 1);
    nyc1.register("bridge", nyc1Addr, "nyc-1");
    const sfc = await as("sfc");
    const sfcAddr = siteUuid("sfc", "sfc-1", 2);
    sfc.register("bridge", sfcAddr, "sfc-1");
    await h.registered(2);
    sfc.send(unregisterFrame("bridge", nyc1Addr));
    await waitFor("refused", () => refused("foreign-unregister") === 1);
    for (let i = 0; i < 5; i++) sfc.message("bridge", nyc1Addr, sfcAddr, `m${i}`);
    await waitFor("5 messages", () => nyc1.texts().length === 5);
    expect(h.router.stats().undelivered["unknown-dest"] ?? 0).toBe(0);
    // Its own UNREGISTER works.
    sfc.send(unregisterFrame("bridge", sfcAddr));
    await h.registered(1);
  });

  test("a MESSAGE must carry a sender the connection registered (no forged source)", async () => {
    const nyc1 = await as("nyc");
    const nyc1Addr = siteUuid("nyc", "nyc-1", 1);
    nyc1.register("bridge", nyc1Addr, "nyc-1");
    const sfc = await as("sfc");
    const sfcAddr = siteUuid("sfc", "sfc-1", 2);
    sfc.register("bridge", sfcAddr, "sfc-1");
    await h.registered(2);
    // sfc claims to be another nyc member, then nobody; then itself.
    sfc.message("bridge", nyc1Addr, siteUuid("nyc", "nyc-2", 3), "forged");
    sfc.message("bridge", null, null, "anonymous");
    sfc.message("bridge", nyc1Addr, sfcAddr, "honest");
    await waitFor("the honest one arrives", () => nyc1.texts().includes("honest"));
    expect(nyc1.texts()).toEqual(["honest"]);
    expect(refused("source")).toBe(2);
    // The verified sender is cached per connection; its own UNREGISTER invalidates it.
    for (let i = 0; i < 3; i++) sfc.message("bridge", nyc1Addr, sfcAddr, `again${i}`);
    sfc.send(unregisterFrame("bridge", sfcAddr));
    sfc.message("bridge", nyc1Addr, sfcAddr, "after unregister");
    await waitFor("refused after its unregister", () => refused("source") === 3);
    await waitFor("the three before it arrived", () => nyc1.texts().length === 4);
    expect(nyc1.texts()).toEqual(["honest", "again0", "again1", "again2"]);
  });

  test("a verified certificate without a site identity is refused at once", async () => {
    const c = await tlsClient(pki.noSiteCert, pki.noSiteKey);
    await c.waitClosed();
    expect(refused("no-identity")).toBe(1);
    expect(h.router.stats().closes["refused"]).toBe(1);
  });

  test("JGroups TUNNEL traffic (tunnel-chat capture) passes unchanged with a site certificate", async () => {
    // Plain-UUID registrations of JGroups members, messages with their own sender: all allowed.
    const lines = loadCaptures().get("tunnel-chat.jsonl")!;
    const conns = new Map<number, TestClient>();
    const framesRead = () => Object.values(h.router.stats().framesIn).reduce((x, y) => x + y, 0);
    let read = 0;
    for (const l of lines) {
      if (!conns.has(l.stream)) conns.set(l.stream, await as("nyc"));
      if (l.dir !== "client->router") continue;
      conns.get(l.stream)!.send(l.bytes);
      // In capture order across connections: the router handles each frame before the next.
      read++;
      await waitFor(`frame ${l.index} read`, () => framesRead() >= read);
    }
    for (const [stream, c] of conns) {
      const want = lines.filter((l) => l.stream === stream && l.dir === "router->client" && l.bytes[4] === 4);
      await waitFor(`stream ${stream}: its captured MESSAGE frames`, () => {
        const got = new Set(c.received.map((r) => r.hex));
        return want.every((l) => got.has(l.hex));
      });
    }
    expect(h.router.stats().refused).toEqual({});
  });

  test("JGroups RELAY2 site masters (relay2-bridge capture) pass with their own site's certificate", async () => {
    // Each stream is one site master's connection; its site is the one of the SiteUUID it registers.
    // Even streams went to router 12001, odd ones to 12002: replay the first router's.
    const lines = loadCaptures()
      .get("relay2-bridge.jsonl")!
      .filter((l) => l.stream % 2 === 0);
    const siteOf = new Map<number, string>();
    for (const l of lines) {
      if (l.dir !== "client->router" || l.bytes[4] !== GossipType.Register) continue;
      const addr = decodeBody(l.bytes.subarray(4)).addr;
      if (addr?.kind === "site-uuid" && addr.site) siteOf.set(l.stream, addr.site);
    }
    expect([...new Set(siteOf.values())].sort()).toEqual(["nyc", "sfc"]);
    const conns = new Map<number, TestClient>();
    const framesRead = () => Object.values(h.router.stats().framesIn).reduce((x, y) => x + y, 0);
    let read = 0;
    for (const l of lines) {
      if (l.dir !== "client->router") continue;
      if (!conns.has(l.stream)) conns.set(l.stream, await as(siteOf.get(l.stream)!));
      conns.get(l.stream)!.send(l.bytes);
      read++;
      await waitFor(`frame ${l.index} read`, () => framesRead() >= read);
    }
    expect(h.router.stats().refused).toEqual({});
    expect(h.router.stats().decodeErrors).toEqual({});
  });
});

describe("--allow-groups: which identities may use which groups", () => {
  beforeEach(() =>
    h
      .start({ tls: mtlsOptions(), allowGroups: { bridge: ["nyc", "sfc"], "nyc-only": ["nyc"] } })
      .then(() => undefined),
  );

  test("GET_MBRS is scoped to the identity's groups; REGISTER and MESSAGE outside them are refused", async () => {
    // Issue 13: a client with sfc's certificate listed every group and member.
    const nyc = await as("nyc");
    nyc.register("bridge", siteUuid("nyc", "nyc-1", 1), "nyc-1");
    nyc.register("nyc-only", uuid(5), "secret-member");
    await h.registered(2);
    const sfc = await as("sfc");
    sfc.register("bridge", siteUuid("sfc", "sfc-1", 2), "sfc-1");
    await h.registered(3);

    sfc.send(getMbrsFrame(null));
    const [all] = await sfc.waitType(GossipType.GetMbrsRspLast);
    expect(sfc.ofType(GossipType.GetMbrsRsp)).toEqual([]);
    expect(all!.group).toBe("<<all-groups>>:bridge");
    expect(all!.pingData.map((p) => p.logicalName)).toEqual(["nyc-1", "sfc-1"]);
    sfc.send(getMbrsFrame("nyc-only"));
    const answers = await sfc.waitType(GossipType.GetMbrsRspLast, 2);
    expect(answers[1]).toMatchObject({ group: "nyc-only", pingData: [] });

    nyc.send(getMbrsFrame(null));
    await nyc.waitType(GossipType.GetMbrsRspLast);
    expect(nyc.ofType(GossipType.GetMbrsRsp).length + 1).toBe(2);

    sfc.message("nyc-only", null, siteUuid("sfc", "sfc-1", 2), "intrusion");
    await waitFor("refused MESSAGE", () => refused("group") === 2);
    sfc.register("nyc-only", uuid(6), "intruder");
    await sfc.waitClosed();
    expect(refused("group")).toBe(3);
    expect(nyc.texts()).toEqual([]);
  });
});

describe("token mode (--auth-tokens): the first frame proves the site", () => {
  let dir: string;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "relay-tokens-"));
    writeFileSync(path.join(dir, "nyc"), "nyc-secret-token\n");
    writeFileSync(path.join(dir, "sfc"), "sfc-secret-token");
    await h.start({ authTokens: dir });
  });

  test("no token, a wrong token, another site's token: closed and counted; the right one works", async () => {
    // Issue 13: with TLS off anyone who could connect read every site announcement.
    const none = await h.client();
    none.send(getMbrsFrame(null));
    await none.waitClosed();
    expect(none.ofType(GossipType.GetMbrsRspLast)).toEqual([]);
    expect(refused("auth-missing")).toBe(1);

    const wrong = await h.client();
    wrong.send(authFrame("nyc", "guess"));
    wrong.register("bridge", siteUuid("nyc", "nyc-1", 1));
    await wrong.waitClosed();
    const other = await h.client();
    other.send(authFrame("nyc", "sfc-secret-token"));
    await other.waitClosed();
    const unknown = await h.client();
    unknown.send(authFrame("lon", "x"));
    await unknown.waitClosed();
    expect(refused("auth-failed")).toBe(3);
    expect(h.router.registry.size).toBe(0);

    const nyc = await h.client();
    nyc.send(authFrame("nyc", "nyc-secret-token"));
    const nycAddr = siteUuid("nyc", "nyc-1", 1);
    nyc.register("bridge", nycAddr, "nyc-1");
    const sfc = await h.client();
    sfc.send(authFrame("sfc", "sfc-secret-token"));
    const sfcAddr = siteUuid("sfc", "sfc-1", 2);
    sfc.register("bridge", sfcAddr, "sfc-1");
    await h.registered(2);
    sfc.message("bridge", nycAddr, sfcAddr, "hello");
    await waitFor("delivered", () => nyc.texts().includes("hello"));
    // Token identities follow the same rules: sfc may not register nyc's address.
    sfc.register("bridge", siteUuid("nyc", "nyc-9", 9));
    await sfc.waitClosed();
    expect(refused("foreign-address")).toBe(1);
  });

  test("TunnelClient's authToken: the right token registers, a wrong one never does", async () => {
    const opts = (token: string) => ({
      routers: [{ host: "127.0.0.1", port: h.port }],
      group: "bridge",
      localAddr: siteUuid("nyc", "nyc-1", 1),
      authToken: { site: "nyc", token },
      reconnectInitialMs: 50,
      logger: pino({ level: "silent" }),
    });
    const bad = new TunnelClient(opts("wrong"));
    const failures: string[] = [];
    bad.on("status", (e) => {
      if (e.type === "connect-failed") failures.push(e.reason);
    });
    bad.start();
    await waitFor("two refused attempts", () => failures.length >= 2);
    expect(bad.status().routers[0]!.state).not.toBe("registered");
    await bad.close();
    const good = new TunnelClient(opts("nyc-secret-token"));
    good.start();
    await good.waitForRouters(1);
    await h.registered(1);
    await good.close();
    expect(refused("auth-failed")).toBeGreaterThanOrEqual(2);
  });

  test("relay dump --token-file lists what that site may see; without it the router closes", async () => {
    requireBuild();
    const c = await h.client();
    c.send(authFrame("sfc", "sfc-secret-token"));
    c.register("bridge", siteUuid("sfc", "sfc-1", 2), "sfc-1");
    await h.registered(1);
    const target = `127.0.0.1[${h.port}]`;
    const ok = await runCli(["dump", "--token-file", path.join(dir, "nyc"), target]);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringContaining("sfc-1")]);
    const no = await runCli(["dump", target]);
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/needs --token-file/);
  });

  test("hostile first frames (fuzzed, AUTH-shaped or not) never authenticate and never break the router", async () => {
    const good = authFrame("nyc", "nyc-secret-token");
    const mutated = fc.tuple(fc.integer({ min: 4, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }));
    const frames = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => {
        const f = Buffer.alloc(4 + b.length);
        f.writeInt32BE(b.length, 0);
        f.set(b, 4);
        return f;
      }),
      mutated.map(([i, v]) => {
        const f = Buffer.from(good);
        f[i] = v === f[i] ? (v + 1) & 0xff : v;
        return f;
      }),
    );
    await fc.assert(
      fc.asyncProperty(frames, async (f) => {
        const c = await h.client();
        c.send(f, heartbeatFrame());
        await c.waitClosed();
        expect(c.ofType(GossipType.Heartbeat)).toEqual([]);
      }),
      { numRuns: 40 },
    );
    // Still serving, and the right token still works.
    const ok = await h.client();
    ok.send(good, heartbeatFrame());
    await ok.waitType(GossipType.Heartbeat);
  });

  test("a rotated token file is read again", async () => {
    writeFileSync(path.join(dir, "nyc"), "rotated-token-with-another-size");
    const c = await h.client();
    c.send(authFrame("nyc", "rotated-token-with-another-size"));
    c.register("g", uuid(1));
    await h.registered(1);
    const old = await h.client();
    old.send(authFrame("nyc", "nyc-secret-token"));
    await old.waitClosed();
  });
});

test("open mode keeps JGroups' rules (anyone may take over; documented as not for the internet)", async () => {
  await h.start();
  const a = await h.client();
  a.register("bridge", siteUuid("nyc", "nyc-1", 1));
  await h.registered(1);
  const b = await h.client();
  b.send(authFrame("nyc", "ignored")); // a token sent to an open router is ignored
  b.register("bridge", siteUuid("nyc", "nyc-1", 1));
  await waitFor(
    "taken over",
    () => h.router.registry.group("bridge")!.members.values().next().value?.conn.id === 2,
  );
  expect(h.router.stats().refused).toEqual({});
  expect(h.router.stats().ignored["auth-frame"]).toBe(1);
});

test("options: tokens and client auth exclude each other; the mode follows the options", () => {
  expect(() => resolveRouterOptions({ tls: mtlsOptions(), authTokens: "/tmp" })).toThrow(/authTokens/);
  expect(resolveRouterOptions({}).authMode).toBe("open");
  expect(resolveRouterOptions({ authTokens: "/tmp" }).authMode).toBe("token");
  expect(resolveRouterOptions({ tls: mtlsOptions() }).authMode).toBe("mtls");
});

test("subjectaltname parsing", () => {
  expect(siteFromSubjectAltName("URI:spiffe://cross-cloud-relay/site/nyc, DNS:localhost")).toBe("nyc");
  expect(siteFromSubjectAltName("DNS:localhost, URI:spiffe://cross-cloud-relay/site/sfc")).toBe("sfc");
  expect(siteFromSubjectAltName("URI:spiffe://cross-cloud-relay/router/nyc")).toBeNull();
  expect(siteFromSubjectAltName("URI:spiffe://cross-cloud-relay/site/NYC")).toBeNull();
  expect(siteFromSubjectAltName('DNS:"x, URI:spiffe://cross-cloud-relay/site/nyc"')).toBeNull();
  expect(
    siteFromSubjectAltName(
      "URI:spiffe://cross-cloud-relay/site/nyc, URI:spiffe://cross-cloud-relay/site/sfc",
    ),
  ).toBeNull();
  expect(siteFromSubjectAltName(undefined)).toBeNull();
  // A DNS name with ", URI:…" inside is quoted by Node: it must not pose as a URI entry.
  expect(siteFromSubjectAltName('DNS:"x, URI:spiffe://cross-cloud-relay/site/nyc, y"')).toBeNull();
  expect(
    siteFromSubjectAltName(
      'DNS:"a\\", URI:spiffe://cross-cloud-relay/site/nyc, b", URI:spiffe://cross-cloud-relay/site/sfc',
    ),
  ).toBe("sfc");
  expect(siteFromSubjectAltName("IP Address:127.0.0.1, URI:spiffe://cross-cloud-relay/site/nyc")).toBe("nyc");
});

test("the allocation-free sender offset agrees with the codec for every address shape", () => {
  fc.assert(
    fc.property(
      fc.option(fc.string({ maxLength: 20 }), { nil: null }),
      fc.option(arbAddress, { nil: null }),
      fc.option(arbAddress, { nil: null }),
      (group, dest, sender) => {
        let frame: Buffer;
        try {
          frame = encodeFrame({
            type: GossipType.Message,
            group,
            addr: dest,
            sender,
            logicalName: null,
            pingData: [],
            physicalAddr: null,
            payload: Buffer.from("x"),
          });
        } catch {
          return; // not encodable (the codec's own limits)
        }
        const start = senderStart(frame, -1);
        expect(start).toBe(decodeMessageSender(frame.subarray(4)).start + 4);
      },
    ),
    { numRuns: 2000 },
  );
  // messageFrame keeps the group first: the cached-header shortcut agrees too.
  const f = messageFrame("g", null, uuid(1) as Address, Buffer.from("p"));
  expect(senderStart(f, -1)).toBe(decodeMessageSender(f.subarray(4)).start + 4);
});

describe("relay router: --auth-tokens and --allow-groups", () => {
  beforeAll(() => requireBuild());

  test.each<[string[], RegExp]>([
    [["--auth-tokens", "/nonexistent-token-dir"], /--auth-tokens: cannot read the directory/],
    [["--allow-groups", "=nyc"], /--allow-groups: .* is not group=site,site/],
    [["--allow-groups", "bridge=NYC"], /not a site name/],
  ])("%j is refused with a message naming the flag", async (flags, message) => {
    const r = await runCli(["router", "--port", "0", "--http-port", "0", "--bind", "127.0.0.1", ...flags]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});
