// The authenticated cluster port (issue 13, item 5): the secret file, the mutual challenge-response
// between real members over real sockets, and what a peer without the secret gets (a bare
// "refused", nothing processed). Each test says which attack of the issue it reproduces.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "@jest/globals";
import { pino } from "pino";
import { parseRelayEnv } from "../../contract/relay-env.js";
import { prove } from "../../runtime/cluster/auth.js";
import { authTranscript, CLUSTER_PROTOCOL_VERSION, type ClusterFrame } from "../../runtime/cluster/codec.js";
import { MAX_PENDING_HANDSHAKES } from "../../runtime/cluster/handshake.js";
import type { LocalCluster } from "../../runtime/cluster/local-cluster.js";
import { LocalCluster as Cluster } from "../../runtime/cluster/local-cluster.js";
import { makeView, memberKey } from "../../runtime/cluster/member.js";
import {
  type ClusterSecret,
  clusterSecretFromFile,
  estimatedBits,
  parseClusterSecret,
  readClusterSecretFile,
} from "../../runtime/cluster/secret.js";
import { channelOptionsFor } from "../../runtime/relay/config.js";
import { siteClusterOptions } from "../../runtime/relay/options.js";
import { waitFor } from "../helpers/wait.js";
import { fakeMember, RawPeer, viewFrameWithSeq } from "./raw-peer.js";
import { ListDiscovery, member, quietLog as quiet, sameView } from "./util.js";

const secretOf = (text: string): ClusterSecret => parseClusterSecret(Buffer.from(text), "test");
const newSecret = () => secretOf(randomBytes(32).toString("base64"));

const live: LocalCluster[] = [];
afterEach(async () => {
  RawPeer.destroyAll();
  await Promise.all(live.splice(0).map((c) => c.close()));
});

async function site(
  names: string[],
  secretFor: (i: number) => ClusterSecret | undefined,
  d = new ListDiscovery(),
): Promise<LocalCluster[]> {
  const cs: LocalCluster[] = [];
  for (const [i, n] of names.entries()) {
    const s = secretFor(i);
    const c = member(n, d, s ? { secret: s } : {});
    live.push(c);
    cs.push(c);
    await c.start();
    d.addresses.push({ host: "127.0.0.1", port: c.localMember.port });
  }
  return cs;
}

describe("cluster secret file", () => {
  test("base64 or hex of 32 random bytes is accepted; trimmed; extra lines are accepted too", () => {
    const a = randomBytes(32).toString("base64");
    const b = randomBytes(32).toString("hex");
    const s = secretOf(`  ${a}\r\n\n${b}\n`);
    expect(s.current.toString()).toBe(a);
    expect(s.accepted.map((x) => x.toString())).toEqual([a, b]);
  });

  test("too short, weak, empty, repeated, too many: ConfigError naming the file and the fix", () => {
    expect(() => secretOf("short")).toThrow(/test: line 1 is 5 bytes.*at least 32.*urandom/);
    expect(() => secretOf("changeme-changeme-changeme-changeme")).toThrow(/too weak/);
    expect(() => secretOf("a".repeat(64))).toThrow(/too weak/);
    expect(() => secretOf(" \n\n ")).toThrow(/no cluster secret/);
    const a = randomBytes(32).toString("base64");
    expect(() => secretOf(`${a}\n${a}`)).toThrow(/line 2 repeats/);
    const five = Array.from({ length: 5 }, () => randomBytes(32).toString("base64")).join("\n");
    expect(() => secretOf(five)).toThrow(/at most 4/);
    expect(estimatedBits(Buffer.from(randomBytes(32).toString("base64")))).toBeGreaterThan(128);
  });

  test("read from a file (error names CLUSTER_SECRET_FILE), followed when the file changes", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "secret-"));
    const file = path.join(dir, "secret");
    expect(() => readClusterSecretFile(file)).toThrow(/CLUSTER_SECRET_FILE: cannot read .*ENOENT/);
    const a = randomBytes(32).toString("base64");
    writeFileSync(file, `${a}\n`);
    const source = clusterSecretFromFile(file, { checkEveryMs: 0 });
    expect(source().current.toString()).toBe(a);
    const b = randomBytes(32).toString("base64");
    writeFileSync(file, `${b}\n${a}\n`);
    await waitFor("the new secret", () => source().current.toString() === b);
    expect(source().accepted.length).toBe(2);
    // A bad update keeps the last good secret.
    writeFileSync(file, "oops\n");
    await new Promise((r) => setTimeout(r, 20));
    expect(source().current.toString()).toBe(b);
  });
});

describe("authenticated mesh", () => {
  test("members with the same secret form one view and exchange messages", async () => {
    const secret = newSecret();
    const cs = await site(["nyc-1", "nyc-2", "nyc-3"], () => secret);
    await waitFor("one view of 3", () => sameView(cs), { timeoutMs: 10_000 });
    const got = new Promise<string>((r) =>
      cs[2]!.once("message", (m) => r(Buffer.from(m.payload).toString())),
    );
    cs[0]!.send(memberKey(cs[2]!.localMember), Buffer.from("authenticated"));
    expect(await got).toBe("authenticated");
    expect(cs.map((c) => c.stats().authFailures)).toEqual([0, 0, 0]);
  });

  test("a rotation in three steps keeps one view (both secrets accepted in between)", async () => {
    const a = randomBytes(32).toString("base64");
    const b = randomBytes(32).toString("base64");
    // Step 2 of a rotation: nyc-1 proves with the new secret, nyc-2 still with the old one.
    const cs = await site(["nyc-1", "nyc-2"], (i) => secretOf(i === 0 ? `${b}\n${a}` : `${a}\n${b}`));
    await waitFor("one view of 2", () => sameView(cs), { timeoutMs: 10_000 });
  });

  // "The NetworkPolicy is the only guard": a member with another secret (a stranger, another
  // site's secret) or none is never admitted; the site's view does not change.
  test("a member with another secret or none does not get in; failures are counted", async () => {
    const secret = newSecret();
    const d = new ListDiscovery();
    const cs = await site(["nyc-1", "nyc-2"], () => secret, d);
    await waitFor("one view of 2", () => sameView(cs), { timeoutMs: 10_000 });
    const before = cs[0]!.view!.id;
    const intruders = await site(["nyc-0", "nyc-00"], (i) => (i === 0 ? newSecret() : undefined), d);
    // Several discovery rounds: the intruders probe the members and the members probe them.
    await waitFor("failures counted", () => cs[0]!.stats().authFailures >= 2, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 600));
    expect(cs[0]!.view!.id).toEqual(before);
    expect(cs[1]!.view!.id).toEqual(before);
    for (const x of intruders) expect(x.members.map((m) => m.name)).toEqual([x.localMember.name]);
  });

  // The attack on a member with a secret: HELLO as a fake member, then VIEW frames (seq
  // 2^32-1, and one that would make the fake member coordinator). Nothing is processed before
  // the handshake: the connection is refused, the view unchanged.
  test("a stranger's HELLO, AUTH_HELLO without proof, bad proof, early VIEW: refused, nothing processed", async () => {
    const secret = newSecret();
    const cs = await site(["nyc-1", "nyc-2"], () => secret);
    await waitFor("one view of 2", () => sameView(cs), { timeoutMs: 10_000 });
    const target = cs[0]!;
    const before = target.view!;
    const fake = fakeMember("nyc-0");
    const forged = makeView(before.id.seq + 1, [fake, ...before.members]);
    const hello: ClusterFrame = {
      type: "hello",
      version: CLUSTER_PROTOCOL_VERSION,
      cluster: "chat",
      member: fake,
    };
    const authHello: ClusterFrame = { ...hello, type: "auth-hello", nonce: randomBytes(32) };

    // 1. Plain HELLO: REJECT "refused", closed.
    let p = await RawPeer.connect(target.localMember.port);
    p.send(hello);
    p.send(viewFrameWithSeq(before, 0xffffffff));
    const reject = await p.next("reject");
    expect(reject).toEqual({ type: "reject", reason: "refused" });
    expect(await p.closedWithin(5000)).toBe(true);

    // 2. AUTH_HELLO, then a VIEW instead of the proof: closed without an AUTH_ACK.
    p = await RawPeer.connect(target.localMember.port);
    p.send(authHello);
    const challenge = await p.next("auth-challenge");
    expect(challenge).not.toBeNull();
    p.send({ type: "view", view: forged });
    expect(await p.closedWithin(5000)).toBe(true);
    expect(p.frames.some((f) => f.type === "auth-ack")).toBe(false);

    // 3. AUTH_HELLO + a proof made with a wrong secret: REJECT "refused", counted.
    const failures = target.stats().authFailures;
    p = await RawPeer.connect(target.localMember.port);
    p.send(authHello);
    const ch = (await p.next("auth-challenge")) as Extract<ClusterFrame, { type: "auth-challenge" }>;
    const t = authTranscript("dialer", "chat", fake, ch.member, authHello.nonce, ch.nonce);
    p.send({ type: "auth-proof", proof: prove(randomBytes(32), t) });
    p.send({ type: "view", view: forged });
    expect(await p.next("reject")).toEqual({ type: "reject", reason: "refused" });
    expect(await p.closedWithin(5000)).toBe(true);
    expect(p.frames.some((f) => f.type === "auth-ack")).toBe(false);
    expect(target.stats().authFailures).toBe(failures + 1);

    // 4. The start of a 4 MiB frame before the handshake: cut as a bad frame once 4 KiB arrived
    // (not parked until the handshake times out, which would not count as a bad frame).
    const bad = target.stats().badFrames;
    p = await RawPeer.connect(target.localMember.port);
    const junk = Buffer.alloc(64 * 1024);
    junk.writeInt32BE(4 * 1024 * 1024 - 1, 0);
    p.send(junk);
    expect(await p.closedWithin(5000)).toBe(true);
    expect(target.stats().badFrames).toBeGreaterThan(bad);

    expect(target.view).toBe(before);
    expect(cs[1]!.view!.id).toEqual(before.id);
    expect(target.stats().internalErrors).toBe(0);
  });

  // "2,000 TCP connections that never send a byte stay open indefinitely" (the issue, on the
  // router; the mesh port had the same hole before its handshake timeout): silent connections
  // are capped while handshaking and closed when their handshake time is up.
  test("silent connections: at most MAX_PENDING_HANDSHAKES at once, all closed in time", async () => {
    const d = new ListDiscovery();
    const c = member("nyc-1", d, { heartbeatIntervalMs: 500, suspectTimeoutMs: 5000 });
    live.push(c);
    await c.start();
    const peers = await Promise.all(
      Array.from({ length: MAX_PENDING_HANDSHAKES + 30 }, () => RawPeer.connect(c.localMember.port)),
    );
    await waitFor("the connections over the cap refused", () => c.stats().refusedHandshakes >= 30, {
      timeoutMs: 10_000,
    });
    await waitFor("every silent connection closed", () => peers.every((p) => p.closed), {
      timeoutMs: 20_000,
    });
    // The port still works: a member joins.
    d.addresses.push({ host: "127.0.0.1", port: c.localMember.port });
    const b = member("nyc-2", d);
    live.push(b);
    await b.start();
    await waitFor("one view of 2", () => sameView([c, b]), { timeoutMs: 10_000 });
  }, 40_000);

  // A stranger retrying bad proofs: each is counted, the warning (remote address, claimed member,
  // reason) is logged once per 10 s with the number left out, and no REJECT names anything.
  test("bad proofs: counted, logged rate-limited with the remote address", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "warn" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const d = new ListDiscovery();
    const c = member("nyc-1", d, { secret: newSecret(), logger });
    live.push(c);
    await c.start();
    const fake = fakeMember("nyc-0");
    for (let i = 0; i < 20; i++) {
      const p = await RawPeer.connect(c.localMember.port);
      const nonce = randomBytes(32);
      p.send({ type: "auth-hello", version: CLUSTER_PROTOCOL_VERSION, cluster: "chat", member: fake, nonce });
      await p.next("auth-challenge");
      p.send({ type: "auth-proof", proof: randomBytes(32) });
      expect(await p.next("reject")).toEqual({ type: "reject", reason: "refused" });
      p.destroy();
    }
    expect(c.stats().authFailures).toBe(20);
    const warned = lines.filter((l) => l["msg"] === "mesh connection failed authentication: closing it");
    expect(warned.length).toBe(1);
    expect(warned[0]!["remote"]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(warned[0]!["claimed"]).toBe(memberKey(fake));
    expect(String(warned[0]!["reason"])).toMatch(/bad proof/);
  });

  test("a ClusterSecret built by hand is checked too", () => {
    const d = new ListDiscovery();
    expect(() => member("nyc-1", d, { secret: { current: Buffer.from("short"), accepted: [] } })).toThrow(
      /option secret must be a ClusterSecret/,
    );
  });

  // Replay and reflection: a proof recorded from a valid handshake is useless on a new connection
  // (the acceptor's nonce is fresh), and an acceptor's proof is not a dialer's (direction).
  test("a recorded proof cannot be replayed; the acceptor proves only after the dialer", async () => {
    const secret = newSecret();
    const cs = await site(["nyc-1"], () => secret);
    const target = cs[0]!;
    const me = fakeMember("nyc-5", 7805);
    const nonce = randomBytes(32);
    const authHello: ClusterFrame = {
      type: "auth-hello",
      version: CLUSTER_PROTOCOL_VERSION,
      cluster: "chat",
      member: me,
      nonce,
    };
    // A legitimate dialer (the test knows the secret): its proof, then AUTH_ACK with a valid proof.
    let p = await RawPeer.connect(target.localMember.port);
    p.send(authHello);
    let ch = (await p.next("auth-challenge")) as Extract<ClusterFrame, { type: "auth-challenge" }>;
    const recorded = prove(secret.current, authTranscript("dialer", "chat", me, ch.member, nonce, ch.nonce));
    p.send({ type: "auth-proof", proof: recorded });
    const ack = (await p.next("auth-ack")) as Extract<ClusterFrame, { type: "auth-ack" }>;
    expect(ack).not.toBeNull();
    const acceptorT = authTranscript("acceptor", "chat", me, ch.member, nonce, ch.nonce);
    expect(Buffer.from(ack.proof).equals(prove(secret.current, acceptorT))).toBe(true);
    p.destroy();
    // The same AUTH_HELLO and the recorded proof on a new connection: refused.
    p = await RawPeer.connect(target.localMember.port);
    p.send(authHello);
    ch = (await p.next("auth-challenge")) as Extract<ClusterFrame, { type: "auth-challenge" }>;
    p.send({ type: "auth-proof", proof: recorded });
    expect(await p.next("reject")).toEqual({ type: "reject", reason: "refused" });
    // Reflection: the acceptor's proof of the first connection sent back as a dialer proof.
    p = await RawPeer.connect(target.localMember.port);
    p.send(authHello);
    await p.next("auth-challenge");
    p.send({ type: "auth-proof", proof: ack.proof });
    expect(await p.next("reject")).toEqual({ type: "reject", reason: "refused" });
  });

  // A stranger listening where discovery points (a stale address, a spoofed record): the member
  // dials it, proves first, and refuses whatever the stranger answers without the secret.
  test("a fake acceptor gets nothing usable and is never admitted", async () => {
    const secret = newSecret();
    const net = await import("node:net");
    const seen: ClusterFrame["type"][] = [];
    const sockets: import("node:net").Socket[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      const { decodeFrame, encodeFrame, meshSplitter } = codec;
      const sp = meshSplitter();
      s.on("error", () => {});
      s.on("data", (d) => {
        try {
          sp.push(d, {
            frame: (f) => {
              const fr = decodeFrame(f.subarray(4));
              seen.push(fr.type);
              if (fr.type === "auth-hello") {
                s.write(
                  encodeFrame({
                    type: "auth-challenge",
                    member: fakeMember("nyc-0"),
                    nonce: randomBytes(32),
                  }),
                );
              } else if (fr.type === "auth-proof") {
                s.write(encodeFrame({ type: "auth-ack", proof: randomBytes(32) }));
              }
            },
          });
        } catch {
          s.destroy();
        }
      });
    });
    const codec = await import("../../runtime/cluster/codec.js");
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const d = new ListDiscovery();
      d.addresses.push({ host: "127.0.0.1", port });
      const [c] = await site(["nyc-1"], () => secret, d);
      await waitFor("the fake acceptor probed and refused", () => c!.stats().authFailures >= 1, {
        timeoutMs: 10_000,
      });
      expect(seen).toContain("auth-proof");
      expect(c!.members.map((m) => m.name)).toEqual(["nyc-1"]);
      expect(c!.isCoordinator).toBe(true);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

// The relay node's path: CLUSTER_SECRET_FILE (contract/relay-env.ts) -> channel options -> the
// site cluster's `secret`. Two members built that way form a view; a bad file stops the start.
describe("relay node: CLUSTER_SECRET_FILE", () => {
  const env = {
    SITE: "nyc",
    CLUSTER: "chat",
    STATIC_MEMBERS: "127.0.0.1[7800]",
    TUNNEL_INITIAL_HOSTS: "127.0.0.1[12001]",
    NODE_NAME: "nyc-1",
    BIND_ADDR: "127.0.0.1",
  };

  test("the file's secret reaches the cluster; members built from it form one view", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relay-secret-"));
    const file = path.join(dir, "secret");
    writeFileSync(file, `${randomBytes(32).toString("base64")}\n`);
    const o = channelOptionsFor(parseRelayEnv({ ...env, CLUSTER_SECRET_FILE: file }));
    expect(typeof o.clusterSecret).toBe("function");
    const d = new ListDiscovery();
    const cs: LocalCluster[] = [];
    for (const name of ["nyc-1", "nyc-2"]) {
      const so = siteClusterOptions({ ...o, name, discovery: d, bindPort: 0 }, quiet());
      const c = new Cluster({
        ...so,
        heartbeatIntervalMs: 50,
        suspectTimeoutMs: 400,
        discoveryIntervalMs: 150,
        joinTimeoutMs: 600,
      });
      live.push(c);
      cs.push(c);
      await c.start();
      d.addresses.push({ host: "127.0.0.1", port: c.localMember.port });
    }
    await waitFor("one view of 2", () => sameView(cs), { timeoutMs: 10_000 });
    // A member of the same site without the secret stays out.
    const [outsider] = await site(["nyc-0"], () => undefined, d);
    await waitFor("refused", () => cs[0]!.stats().authFailures > 0, { timeoutMs: 10_000 });
    expect(outsider!.members.length).toBe(1);
    expect(cs[0]!.members.length).toBe(2);
  });

  test("a missing or weak file is a ConfigError naming CLUSTER_SECRET_FILE", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "relay-secret-"));
    const weak = path.join(dir, "weak");
    writeFileSync(weak, "changeme\n");
    expect(() => channelOptionsFor(parseRelayEnv({ ...env, CLUSTER_SECRET_FILE: weak }))).toThrow(
      /CLUSTER_SECRET_FILE .*weak: line 1 is 8 bytes/,
    );
    expect(() =>
      channelOptionsFor(parseRelayEnv({ ...env, CLUSTER_SECRET_FILE: path.join(dir, "absent") })),
    ).toThrow(/CLUSTER_SECRET_FILE: cannot read/);
    expect(channelOptionsFor(parseRelayEnv(env)).clusterSecret).toBeUndefined();
  });
});
