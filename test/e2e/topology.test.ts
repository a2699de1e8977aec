// Scenarios 1 and 2 of issue 6 in network namespaces (docs/E2E.md):
// [isolation] nyc and sfc reach both routers but not each other, and each site's dnsmasq answers
//             its DNS_QUERY with that site's pod addresses;
// [walkthrough] `relay node` x5 in nyc and x3 in sfc (DNS discovery, the construct's env), then
//             `relay chat` as Temp in its own sfc pod: `--send hello --expect 9` gets exactly 9
//             answers, nyc's suffixed with `:nyc`.
import { RELAY_ENV } from "../../contract/relay-env.js";
import { waitFor } from "../helpers/wait.js";
import { anySelected, scenario, unavailable } from "./scenarios.js";
import { type Pod, type PodProcess, ROUTER_ADDRS, type SiteName, World } from "./world.js";

const IDS = ["isolation", "walkthrough"];
const REPLICAS = { nyc: 5, sfc: 3 } as const;
const NYC = ["nyc-1", "nyc-2", "nyc-3", "nyc-4", "nyc-5"];
const SFC = ["sfc-1", "sfc-2", "sfc-3"];
const FORM_TIMEOUT_MS = 40_000;

let world: World | null = null;
const nodes = new Map<string, PodProcess>();

const pod = (name: string): Pod => world!.pods.get(name)!;

/** The members of the last view a node logged, or null. */
function lastView(p: PodProcess): string[] | null {
  const views = p.json().filter((r) => r["msg"] === "view" && typeof r["view"] === "string");
  const v = views.at(-1)?.["view"] as string | undefined;
  const m = v ? /\((\d+)\) \[(.*)\]$/.exec(v) : null;
  return m ? m[2]!.split(", ") : null;
}

beforeAll(async () => {
  if (unavailable || !anySelected(IDS)) return;
  world = new World(REPLICAS);
  await world.build();
  for (const [site, names] of [
    ["nyc", NYC],
    ["sfc", SFC],
  ] as [SiteName, string[]][]) {
    for (const n of names) world.addPod(site, n);
  }
  await Promise.all([world.startRouter(0), world.startRouter(1)]);
  // All pods of a Deployment start at once, as in Kubernetes.
  for (const n of [...NYC, ...SFC]) nodes.set(n, world.startNode(pod(n)));
  const want = (n: string) => (n.startsWith("nyc") ? NYC : SFC);
  await waitFor(
    "views of 5 (nyc) and 3 (sfc) at every node",
    () => [...nodes].every(([n, p]) => JSON.stringify(lastView(p)?.sort()) === JSON.stringify(want(n))),
    { timeoutMs: FORM_TIMEOUT_MS, intervalMs: 100 },
  );
}, 90_000);

afterAll(async () => {
  await world?.destroy();
  if (world) expect(world.run.isGone()).toBe(true);
}, 30_000);

interface ConnectResult {
  readonly ok: boolean;
  readonly error?: string;
}

/** Opens a TCP connection from inside `from` (bounded by 1.5 s) and closes it. */
function connect(from: Pod, host: string, port: number): ConnectResult {
  const script = `
    import net from "node:net";
    const s = net.connect({ host: ${JSON.stringify(host)}, port: ${port} });
    const t = setTimeout(() => { console.log(JSON.stringify({ ok: false, error: "timeout" })); process.exit(0); }, 1500);
    s.on("connect", () => { console.log(JSON.stringify({ ok: true })); s.destroy(); clearTimeout(t); });
    s.on("error", (e) => { console.log(JSON.stringify({ ok: false, error: e.code ?? e.message })); clearTimeout(t); });
  `;
  return world!.nodeEval(from, script) as ConnectResult;
}

/** Resolves `name` inside `from` with the system resolver (the pod's resolv.conf), as DnsDiscovery does. */
function resolve4(from: Pod, name: string): { addresses?: string[]; error?: string } {
  const script = `
    import { Resolver } from "node:dns/promises";
    const r = new Resolver({ timeout: 1000, tries: 2 });
    r.resolve4(${JSON.stringify(name)}).then(
      (a) => console.log(JSON.stringify({ addresses: a.sort(), servers: r.getServers() })),
      (e) => console.log(JSON.stringify({ error: e.code ?? e.message, servers: r.getServers() })),
    );
  `;
  return world!.nodeEval(from, script) as { addresses?: string[]; error?: string };
}

scenario(
  "isolation",
  "a pod reaches both routers and its own site, never a pod of the other site",
  async () => {
    const w = world!;
    const router = w.deployment.routerPort;
    for (const [mine, other] of [
      ["nyc-1", "sfc-1"],
      ["sfc-1", "nyc-1"],
    ] as const) {
      const from = pod(mine);
      for (const r of ROUTER_ADDRS)
        expect([mine, r, connect(from, r, router)]).toEqual([mine, r, { ok: true }]);
      // A member of our own site listens on 7800 and is reachable...
      const sibling = pod(mine === "nyc-1" ? "nyc-2" : "sfc-2");
      expect([mine, sibling.name, connect(from, sibling.ip, 7800)]).toEqual([
        mine,
        sibling.name,
        { ok: true },
      ]);
      // ...and so does the other site's member from its own site, but not from ours.
      const res = connect(from, pod(other).ip, 7800);
      expect(res.ok).toBe(false);
      expect(["EHOSTUNREACH", "ENETUNREACH", "timeout"]).toContain(res.error);
    }
    // Also the other site's gateway, seen from the public side, does not forward into its site
    // for us: sfc's bridge address is not reachable from nyc either.
    expect(connect(pod("nyc-1"), "198.51.100.53", 53).ok).toBe(false);
  },
  30_000,
);

scenario(
  "isolation",
  "each site's dnsmasq answers its DNS_QUERY with that site's pod addresses, and the nodes use it",
  async () => {
    const w = world!;
    for (const site of ["nyc", "sfc"] as const) {
      const env = w.envOf(pod(site === "nyc" ? "nyc-1" : "sfc-1"));
      // The construct renders DNS discovery (not a static list) and both routers.
      expect(env[RELAY_ENV.dnsQuery]).toBe(w.dnsQuery(site));
      expect(env[RELAY_ENV.staticMembers]).toBeUndefined();
      expect(env[RELAY_ENV.tunnelInitialHosts]).toBe(ROUTER_ADDRS.map((a) => `${a}[12001]`).join(","));
    }
    const ipsOf = (names: string[]) => names.map((n) => pod(n).ip).sort();
    expect(resolve4(pod("nyc-3"), w.dnsQuery("nyc")).addresses).toEqual(ipsOf(NYC));
    expect(resolve4(pod("sfc-2"), w.dnsQuery("sfc")).addresses).toEqual(ipsOf(SFC));
    // A site's DNS server knows nothing of the other site.
    expect(resolve4(pod("nyc-3"), w.dnsQuery("sfc")).addresses).toBeUndefined();
    expect(resolve4(pod("sfc-2"), w.dnsQuery("nyc")).addresses).toBeUndefined();
    // Every node found exactly its site's members (from DNS: the env has no static list).
    for (const [n, p] of nodes)
      expect([n, lastView(p)?.sort()]).toEqual([n, n.startsWith("nyc") ? NYC : SFC]);
  },
  30_000,
);

scenario(
  "walkthrough",
  "relay chat as Temp in an sfc pod: --send hello --expect 9 gets exactly 9 answers",
  async () => {
    const w = world!;
    // Temp is a pod of its own in sfc, not behind the headless Service (like `kubectl run`).
    const temp = w.pods.get("temp") ?? w.addPod("sfc", "temp", false);
    const chat = w.startCli(temp, [
      "chat",
      "--name",
      "Temp",
      "--wait-sites",
      "2",
      "--send",
      "hello",
      "--expect",
      "9",
      "--timeout",
      "15000",
      "--linger",
      "700",
    ]);
    await chat.exited;
    const out = chat.lines.filter((l) => l.startsWith("<< "));
    expect([chat.child.exitCode, chat.tail()]).toEqual([0, expect.any(String)]);
    expect(out[0]).toBe("<< hello from Temp");
    const responders = out
      .filter((l) => l.startsWith("<< response from "))
      .map((l) => l.slice("<< response from ".length))
      .sort();
    expect(responders).toEqual(["Temp", ...NYC.map((n) => `${n}:nyc`), ...SFC].sort());
    expect(out).toHaveLength(10);
  },
  60_000,
);
