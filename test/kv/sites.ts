// Two sites in one process for the replicated-map tests: real GossipRouters on loopback, real
// LocalCluster members, one RelayChannel and one KvService per member.
import { pino } from "pino";
import { KvService } from "../../runtime/kv/service.js";
import { RelayChannel } from "../../runtime/relay/channel.js";
import type { RelayChannelOptions } from "../../runtime/relay/options.js";
import { GossipRouter } from "../../runtime/router/router.js";
import { ListDiscovery } from "../cluster/util.js";
import { waitFor } from "../helpers/wait.js";

const quiet = () => pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
/** Failure detection slow enough for a saturated machine: these tests are about data, not detection. */
const TUNING = {
  heartbeatIntervalMs: 100,
  suspectTimeoutMs: 5000,
  discoveryIntervalMs: 200,
  joinTimeoutMs: 600,
};

export interface Member {
  readonly channel: RelayChannel;
  readonly kv: KvService;
}

export class Sites {
  readonly routers: GossipRouter[] = [];
  readonly members: Member[] = [];
  readonly #discovery = new Map<string, ListDiscovery>();

  static async start(): Promise<Sites> {
    const s = new Sites();
    for (let i = 0; i < 2; i++) {
      const r = new GossipRouter({ port: 0, bind: "127.0.0.1", httpPort: null }, quiet());
      await r.start();
      s.routers.push(r);
    }
    return s;
  }

  get routerList() {
    return this.routers.map((r) => ({ host: "127.0.0.1", port: r.port! }));
  }

  async join(site: string, name: string, extra: Partial<RelayChannelOptions> = {}): Promise<Member> {
    let d = this.#discovery.get(site);
    if (!d) {
      d = new ListDiscovery();
      this.#discovery.set(site, d);
    }
    const channel = new RelayChannel({
      site,
      cluster: "relay",
      name,
      discovery: d,
      routers: this.routerList,
      bindAddr: "127.0.0.1",
      bindPort: 0,
      clusterTuning: TUNING,
      pollIntervalMs: 300,
      logger: quiet(),
      ...extra,
    });
    await channel.connect();
    d.addresses.push({ host: "127.0.0.1", port: channel.localMember.port });
    const m = { channel, kv: new KvService(channel, { logger: quiet() }) };
    this.members.push(m);
    return m;
  }

  /** Members of `sites` (name -> count), started in order; waits until every member sees every site. */
  async startSites(sites: Record<string, number>): Promise<Member[]> {
    const out: Member[] = [];
    for (const [site, n] of Object.entries(sites))
      for (let i = 1; i <= n; i++) out.push(await this.join(site, `${site}-${i}`));
    await this.settled(out, Object.keys(sites).length);
    return out;
  }

  async settled(ms: readonly Member[], sites: number): Promise<void> {
    await waitFor(
      "every member sees every site and its whole own site",
      () =>
        ms.every((m) => {
          const t = m.channel.topology();
          const own = ms.filter((x) => x.channel.site === m.channel.site).length;
          return t.sites.length === sites && m.channel.view?.members.length === own;
        }),
      { timeoutMs: 20_000 },
    );
  }

  /** Stops both routers (the bridge is down: the sites cannot see each other). */
  async stopRouters(): Promise<number[]> {
    const ports = this.routers.map((r) => r.port!);
    await Promise.all(this.routers.map((r) => r.stop()));
    return ports;
  }

  /** Starts the routers again on the same ports (the members reconnect by themselves). */
  async restartRouters(ports: readonly number[]): Promise<void> {
    this.routers.length = 0;
    for (const port of ports) {
      const r = new GossipRouter({ port, bind: "127.0.0.1", httpPort: null }, quiet());
      await r.start();
      this.routers.push(r);
    }
  }

  async close(): Promise<void> {
    for (const m of this.members) m.kv.close();
    await Promise.allSettled(this.members.map((m) => m.channel.close()));
    await Promise.allSettled(this.routers.map((r) => r.stop()));
  }
}
