// The walkthrough's last paragraph, for real: relay node processes hosting a replicated map (KV_MAPS)
// in two sites behind two router processes. 10,000 keys written in nyc through the nodes' HTTP
// API; once nyc reports them acknowledged by sfc, 500 more with ack=remote; then every nyc member
// is killed with SIGKILL at once. sfc holds every acknowledged write, and clients that fail over
// to sfc keep reading and writing.
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, expect, test } from "@jest/globals";
import {
  freePort,
  RELAY_CLI,
  REPO_ROOT,
  type RouterProcess,
  startRouterProcess,
} from "../helpers/processes.js";
import { CONTRACT_VARS, getJson, killOnExit, requireBuild } from "../helpers/relay-cli.js";
import { waitFor } from "../helpers/wait.js";

interface NodeProc {
  readonly name: string;
  readonly site: string;
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly kvPort: number;
}

const routers: RouterProcess[] = [];
const nodes: NodeProc[] = [];

afterAll(async () => {
  for (const n of nodes) n.child.kill("SIGKILL");
  await Promise.allSettled(routers.map((r) => r.stop()));
});

async function startSite(site: string, count: number, routerList: string): Promise<NodeProc[]> {
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const members = ports.map((p) => `127.0.0.1[${p}]`).join(",");
  const out: NodeProc[] = [];
  for (let i = 0; i < count; i++) {
    const [httpPort, kvPort] = [await freePort(), await freePort()];
    const env: Record<string, string | undefined> = { ...process.env };
    for (const v of CONTRACT_VARS) delete env[v];
    Object.assign(env, {
      SITE: site,
      CLUSTER: "relay",
      STATIC_MEMBERS: members,
      TUNNEL_INITIAL_HOSTS: routerList,
      NODE_NAME: `${site}-${i + 1}`,
      BIND_ADDR: "127.0.0.1",
      BIND_PORT: String(ports[i]),
      HTTP_PORT: String(httpPort),
      KV_MAPS: "orders",
      KV_PORT: String(kvPort),
      LOG_LEVEL: "warn",
    });
    const child = spawn(process.execPath, [RELAY_CLI, "node"], { cwd: REPO_ROOT, env, stdio: "ignore" });
    killOnExit(child);
    out.push({ name: `${site}-${i + 1}`, site, child, httpPort, kvPort });
  }
  nodes.push(...out);
  return out;
}

async function kv(n: NodeProc, method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${n.kvPort}/v1/maps/orders${path}`, {
    method,
    ...(body !== undefined
      ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } }
      : {}),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

type Status = {
  sites: unknown[];
  view: { members: unknown[] } | null;
  kv?: { maps: { ready: boolean; backups: { site: string; pendingKeys: number; online: boolean }[] }[] };
};

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

test("the seed's story: kill -9 every nyc member; sfc has every acknowledged write; clients fail over", async () => {
  requireBuild();
  for (let i = 0; i < 2; i++) routers.push(await startRouterProcess());
  const routerList = routers.map((r) => `127.0.0.1[${r.port}]`).join(",");
  const nyc = await startSite("nyc", 3, routerList);
  const sfc = await startSite("sfc", 2, routerList);
  const all = [...nyc, ...sfc];
  await waitFor(
    "every node ready (maps included), seeing both sites and its whole site",
    async () => {
      const states = await Promise.all(all.map((n) => getJson<Status>(n.httpPort, "/status")));
      const ready = await Promise.all(all.map((n) => getJson<unknown>(n.httpPort, "/readyz")));
      return states.every((s, i) => {
        const own = all[i]!.site === "nyc" ? 3 : 2;
        return s?.body.sites.length === 2 && s.body.view?.members.length === own && ready[i]?.status === 200;
      });
    },
    { timeoutMs: 60_000 },
  );

  // 10,000 asynchronous writes, spread over the nyc members.
  const keys = Array.from({ length: 10_000 }, (_, i) => i);
  let acknowledged = 0;
  await pool(keys, 64, async (i) => {
    const r = await kv(nyc[i % 3]!, "PUT", `/keys/order-${i}`, { id: i, total: i * 3 });
    expect(r.status).toBe(200);
    acknowledged++;
  });
  expect(acknowledged).toBe(10_000);
  // "Acknowledged as replicated": every nyc member reports nothing pending for sfc.
  await waitFor(
    "sfc acknowledged every write of every nyc member",
    async () => {
      const states = await Promise.all(nyc.map((n) => getJson<Status>(n.httpPort, "/status")));
      return states.every((s) =>
        s?.body.kv?.maps.every((m) =>
          m.backups.some((b) => b.site === "sfc" && b.online && b.pendingKeys === 0),
        ),
      );
    },
    { timeoutMs: 60_000 },
  );

  // 500 synchronous writes: each resolves only once sfc applied it. The kill follows at once.
  await pool(
    Array.from({ length: 500 }, (_, i) => i),
    32,
    async (i) => {
      const r = await kv(nyc[i % 3]!, "PUT", `/keys/sync-${i}?ack=remote&timeoutMs=30000`, { sync: i });
      expect(r.status).toBe(200);
    },
  );
  for (const n of nyc) n.child.kill("SIGKILL");
  await waitFor(
    "every nyc member gone",
    () => nyc.every((n) => n.child.exitCode !== null || n.child.signalCode !== null),
    {
      timeoutMs: 10_000,
    },
  );

  // Every acknowledged write is in sfc, at both members.
  for (const n of sfc) {
    const got = new Map<string, unknown>();
    let after: string | null = null;
    do {
      const q: string = `/entries?limit=10000${after ? `&after=${encodeURIComponent(after)}` : ""}`;
      const r = await kv(n, "GET", q);
      expect(r.status).toBe(200);
      for (const e of r.body["entries"] as { key: string; value: unknown }[]) got.set(e.key, e.value);
      after = r.body["next"] as string | null;
    } while (after !== null);
    expect(got.size).toBe(10_500);
    for (let i = 0; i < 10_000; i += 997) expect(got.get(`order-${i}`)).toEqual({ id: i, total: i * 3 });
    expect(keys.filter((i) => (got.get(`order-${i}`) as { id?: number } | undefined)?.id !== i)).toEqual([]);
    expect(Array.from({ length: 500 }, (_, i) => i).filter((i) => !got.has(`sync-${i}`))).toEqual([]);
  }

  // Clients fail over to sfc: reads and writes go on there.
  const w = await kv(sfc[0]!, "PUT", "/keys/after-failover", { ok: true });
  expect(w.status).toBe(200);
  await waitFor(
    "the write after the failover at the other sfc member",
    async () => (await kv(sfc[1]!, "GET", "/keys/after-failover")).status === 200,
    { timeoutMs: 15_000 },
  );
  expect((await kv(sfc[1]!, "GET", "/keys/order-42")).body["value"]).toEqual({ id: 42, total: 126 });

  // nyc is rebuilt from nothing: its first member pulls the map from sfc before it reports ready.
  const [reborn] = await startSite("nyc", 1, routerList);
  await waitFor(
    "the new nyc member ready",
    async () => (await getJson(reborn!.httpPort, "/readyz"))?.status === 200,
    {
      timeoutMs: 60_000,
    },
  );
  const st = await kv(reborn!, "GET", "/status");
  expect(st.body["entries"]).toBe(10_501);
  expect((await kv(reborn!, "GET", "/keys/after-failover")).body["value"]).toEqual({ ok: true });
}, 300_000);
