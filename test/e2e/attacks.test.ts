// Issue 13's attacks repeated inside the cloud default (docs/E2E.md, docs/SECURITY.md): mutual TLS
// on every router link with certificates shaped like RelayPki's, `--allow-groups bridge=nyc,sfc`,
// TLS_SERVER_NAME, a cluster secret per site. The attacker (test/e2e/apps/attacker.ts) runs in a
// pod of its own on a site's network, holding a stolen copy of that site's Secret:
// [forged-stable] an nyc intruder sends nyc's site master Stable reports and acks from a forged sfc
//                 address, claiming that sfc has a sender's whole backlog while sfc is not up yet:
//                 both routers refuse the forged sender (and count it), and when sfc comes up its
//                 site master still receives every message;
// [hijack]        an sfc intruder registers nyc's site master's address on both routers while sfc
//                 streams to everyone: both routers refuse and close it, and every nyc member
//                 keeps receiving all of the stream, once and in order;
// [stranger]      a client with a certificate of its own CA, or with none, gets no answer.
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ROUTER_TLS_SERVER_NAME, siteCertProfile } from "../../constructs/relay-pki.js";
import { ROUTER_HTTP_PORT } from "../../contract/ports.js";
import { issueShapedCert, makeShapedCa } from "../helpers/certs.js";
import { waitFor } from "../helpers/wait.js";
import { checkStream, parseRecord } from "./delivery.js";
import { anySelected, scenario, unavailable } from "./scenarios.js";
import { ATTACKER_APP, type Pod, type PodProcess, ROUTER_ADDRS, type SiteName, World } from "./world.js";

const IDS = ["forged-stable", "hijack", "stranger"];
const REPLICAS = { nyc: 2, sfc: 2 } as const;
const BACKLOG = 300;
const STREAM = 600;
const FORM_TIMEOUT_MS = 40_000;

let world: World | null = null;
const members = new Map<string, PodProcess>();
let dir = "";

const pod = (name: string): Pod => world!.pods.get(name)!;

function lastEvent(p: PodProcess, event: string): Record<string, unknown> | undefined {
  return p
    .json()
    .filter((r) => r["event"] === event)
    .at(-1);
}
const stateOf = (p: PodProcess) =>
  lastEvent(p, "state") as
    | { members: number; sites: string[]; siteMaster: boolean; ready: boolean }
    | undefined;

function start(name: string, args: readonly string[] = []): PodProcess {
  const p = world!.startMember(pod(name), ["--record", path.join(dir, `${name}.rec`), ...args]);
  members.set(name, p);
  return p;
}

/** What one member recorded from `sender` (name:site), checked against 1..count. */
function streamAt(member: string, sender: string, count: number) {
  let text = "";
  try {
    text = readFileSync(path.join(dir, `${member}.rec`), "utf8");
  } catch {
    // nothing recorded yet
  }
  return checkStream(parseRecord(text).get(sender) ?? [], count);
}

/** Runs the attacker app in `from` and returns its one JSON line. */
async function runAttack(from: Pod, args: readonly string[]): Promise<Record<string, unknown>> {
  const p = world!.startApp(from, ATTACKER_APP, args, `${from.name}-${args[0]}-${Date.now() % 100_000}`);
  const line = await p.waitFor((l) => l.startsWith('{"attack"'), `${args[0]} result`, 30_000);
  await p.exited;
  return JSON.parse(line) as Record<string, unknown>;
}

/** The TLS arguments of a stolen copy of `site`'s Secret. */
function stolen(site: SiteName): string[] {
  const t = world!.siteTls(site);
  return ["--cert", t.cert, "--key", t.key, "--ca", t.ca, "--servername", ROUTER_TLS_SERVER_NAME];
}

const routerAt = (i: number) => `${ROUTER_ADDRS[i]}:${world!.deployment.routerPort}`;

/** `relay_router_refused_total` by reason, read from a router's /metrics inside its namespace. */
function refused(i: number): Record<string, number> {
  const httpPort = ROUTER_HTTP_PORT; // as the construct renders it (the e2e routers keep the default)
  const r = world!.routers[i]!.exec(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const t = await (await fetch("http://127.0.0.1:${httpPort}/metrics")).text(); console.log(JSON.stringify(t.split("\\n").filter((l) => l.startsWith("relay_router_refused_total{"))));`,
    ],
    10_000,
  );
  const out: Record<string, number> = {};
  for (const l of JSON.parse(r.stdout) as string[]) {
    const m = /reason="([^"]+)"\} (\d+)/.exec(l);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

beforeAll(async () => {
  if (unavailable || !anySelected(IDS)) return;
  world = new World(REPLICAS, { mode: "cloud" });
  await world.build();
  dir = path.join(world.logDir, "attacks");
  for (const site of ["nyc", "sfc"] as const) for (let i = 1; i <= 2; i++) world.addPod(site, `${site}-${i}`);
  world.addPod("nyc", "intruder-nyc", false);
  world.addPod("sfc", "intruder-sfc", false);
  await Promise.all([world.startRouter(0), world.startRouter(1)]);
  mkdirSync(dir, { recursive: true });
}, 90_000);

afterAll(async () => {
  await world?.destroy();
  if (world) expect(world.run.isGone()).toBe(true);
}, 30_000);

scenario(
  "forged-stable",
  "a Stable and an ack from a forged sfc address, with a stolen nyc certificate: refused by both routers, nyc drops nothing",
  async () => {
    // nyc up, sfc not yet: nyc-2's messages for sfc wait, unstable, in its send buffer.
    start("nyc-1");
    await waitFor("nyc-1 site master", () => stateOf(members.get("nyc-1")!)?.siteMaster === true, {
      timeoutMs: FORM_TIMEOUT_MS,
    });
    const sender = start("nyc-2", ["--send", String(BACKLOG), "--rate", "300", "--to-site", "sfc"]);
    await waitFor("nyc-2 joined", () => stateOf(sender)?.members === 2 && stateOf(sender)!.ready, {
      timeoutMs: FORM_TIMEOUT_MS,
    });
    sender.signal("SIGUSR2");
    await waitFor("the backlog is sent", () => lastEvent(sender, "sent") !== undefined, {
      timeoutMs: 30_000,
    });
    const incarnation = lastEvent(sender, "sending")!["incarnation"] as string;
    const before = [0, 1].map(refused);
    for (const i of [0, 1]) {
      const r = await runAttack(pod("intruder-nyc"), [
        "forge-stable",
        "--router",
        routerAt(i),
        ...stolen("nyc"),
        "--claim-site",
        "sfc",
        "--target-site",
        "nyc",
        "--sender",
        "nyc-2",
        "--incarnation",
        incarnation,
        "--seq",
        String(BACKLOG),
      ]);
      // An nyc identity may register an nyc address; what it may not do is send from sfc's.
      expect(r).toMatchObject({ connected: true, found: true, target: "nyc-1", closedByRouter: false });
    }
    for (const i of [0, 1]) {
      expect((refused(i)["source"] ?? 0) - (before[i]!["source"] ?? 0)).toBe(10);
    }
    // sfc comes up (its first member, the site master to be): every message of the backlog must
    // still reach it, so nyc dropped nothing. (A member that joins sfc later is not owed messages
    // its site had before it joined.)
    start("sfc-1");
    await waitFor(
      "sfc-1 has nyc-2's whole backlog",
      () => streamAt("sfc-1", "nyc-2:nyc", BACKLOG).received >= BACKLOG,
      {
        timeoutMs: 60_000,
        intervalMs: 200,
      },
    );
    expect(streamAt("sfc-1", "nyc-2:nyc", BACKLOG)).toMatchObject({
      missing: 0,
      duplicates: 0,
      reordered: 0,
    });
    // sfc-2 is the streamer of [hijack] (it starts sending on SIGUSR2).
    start("sfc-2", ["--send", String(STREAM), "--rate", "300"]);
  },
  150_000,
);

scenario(
  "hijack",
  "sfc's stolen certificate cannot register nyc's site master's address; nyc keeps 100 %",
  async () => {
    // After forged-stable (same world) both sites are up; alone, it starts them itself.
    for (const n of ["nyc-1", "nyc-2", "sfc-1", "sfc-2"]) {
      if (!members.has(n)) start(n, n === "sfc-2" ? ["--send", String(STREAM), "--rate", "300"] : []);
    }
    await waitFor(
      "both sites formed",
      () =>
        ["nyc-1", "nyc-2", "sfc-1", "sfc-2"].every((n) => {
          const s = members.get(n) && stateOf(members.get(n)!);
          return s?.members === 2 && s.sites.join() === "nyc,sfc" && s.ready;
        }),
      { timeoutMs: FORM_TIMEOUT_MS, intervalMs: 100 },
    );
    const streamer = members.get("sfc-2")!;
    streamer.signal("SIGUSR2");
    const before = [0, 1].map(refused);
    for (const i of [0, 1]) {
      const r = await runAttack(pod("intruder-sfc"), [
        "hijack",
        "--router",
        routerAt(i),
        ...stolen("sfc"),
        "--victim-site",
        "nyc",
      ]);
      expect(r).toMatchObject({ connected: true, found: true, closedByRouter: true });
    }
    for (const i of [0, 1]) {
      expect((refused(i)["foreign-address"] ?? 0) - (before[i]!["foreign-address"] ?? 0)).toBe(1);
    }
    await waitFor("sfc-2 done", () => lastEvent(streamer, "sent") !== undefined, { timeoutMs: 60_000 });
    await waitFor(
      "both nyc members have all of sfc-2's stream",
      () => ["nyc-1", "nyc-2"].every((m) => streamAt(m, "sfc-2:sfc", STREAM).received >= STREAM),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    for (const m of ["nyc-1", "nyc-2"]) {
      expect(streamAt(m, "sfc-2:sfc", STREAM)).toMatchObject({ missing: 0, duplicates: 0, reordered: 0 });
    }
  },
  150_000,
);

scenario(
  "stranger",
  "a certificate of another CA, or none at all, gets no answer from either router",
  async () => {
    const rogueDir = path.join(world!.logDir, "rogue");
    const ca = await makeShapedCa(rogueDir, "rogue-ca", "cross-cloud-relay");
    // The same subject and SANs as nyc's real certificate, from a CA nobody trusts.
    const cert = await issueShapedCert(rogueDir, "rogue-nyc", ca, siteCertProfile("nyc"));
    const t = world!.siteTls("nyc");
    for (const i of [0, 1]) {
      const rogue = await runAttack(pod("intruder-nyc"), [
        "connect",
        "--router",
        routerAt(i),
        "--cert",
        cert.cert,
        "--key",
        cert.key,
        "--ca",
        t.ca,
        "--servername",
        ROUTER_TLS_SERVER_NAME,
      ]);
      expect(rogue).toMatchObject({ connected: false });
      const none = await runAttack(pod("intruder-nyc"), [
        "connect",
        "--router",
        routerAt(i),
        "--ca",
        t.ca,
        "--servername",
        ROUTER_TLS_SERVER_NAME,
      ]);
      expect(none).toMatchObject({ connected: false });
    }
  },
  90_000,
);
