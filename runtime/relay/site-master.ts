// The site-master role of one member: while the member is one of its site's site masters it runs a
// BridgeAgent (it joins the bridge through every router); the primary site master tells the other
// members of its site what the bridge looks like (TOPOLOGY), and the others keep the last TOPOLOGY
// they got. Either way this is the remote half of RelayChannel.topology().
import { EventEmitter } from "node:events";
import type { Member, View } from "../cluster/member.js";
import type { Logger } from "../observability/log.js";
import type { TunnelStatusEvent } from "../tunnel/status.js";
import { BridgeAgent, type BridgeRefusal, type Undeliverable } from "./bridge-agent.js";
import {
  decodeTopology,
  encodeControl,
  type RouteInfo,
  type RouterInfo,
  type SiteViewInfo,
  type TopologyInfo,
} from "./control.js";
import { type Envelope, EnvelopeKind, encodeEnvelope, type Origin } from "./envelope.js";
import type { RelayChannelOptions } from "./options.js";

/** What the role needs from its channel. */
export interface SiteMasterHost {
  readonly options: RelayChannelOptions;
  /** Us, as the origin of our envelopes. */
  readonly origin: Origin;
  readonly log: Logger;
  localMember(): Member;
  view(): View | null;
  siteMasters(): readonly Member[];
  isMe(m: Member | undefined): boolean;
  /** Our site's view as announced on the bridge. */
  siteView(): SiteViewInfo;
  /** Multicast to our site (a failure is logged and counted, never thrown). */
  multicast(env: Envelope, bytes: Buffer): void;
}

export interface SiteMasterEvents {
  /** An envelope from another site. */
  envelope: [Envelope, Buffer];
  route: [RouteInfo];
  "bridge-status": [TunnelStatusEvent];
  /** Not sent towards a site (lane copies are left out: their origin still has them). */
  undeliverable: [Undeliverable];
  /** An envelope from the bridge that did not speak for the site it came from (dropped). */
  "bridge-refused": [BridgeRefusal];
  "site-master": [{ readonly active: boolean }];
  /** What remote() returns may have changed. */
  changed: [];
}

/** The remote half of a topology. */
export interface RemoteTopology {
  readonly sites: readonly SiteViewInfo[];
  readonly routes: readonly RouteInfo[];
  readonly routers: readonly RouterInfo[];
}

export class SiteMasterRole extends EventEmitter<SiteMasterEvents> {
  readonly #host: SiteMasterHost;
  #bridge: BridgeAgent | null = null;
  /** The last TOPOLOGY of our primary site master (while we are not a site master). */
  #remote: TopologyInfo | null = null;
  #queued = false;
  #closed = false;
  #changes = 0;

  constructor(host: SiteMasterHost) {
    super();
    this.#host = host;
  }

  /** Our bridge agent while we are a site master. */
  get bridge(): BridgeAgent | null {
    return this.#bridge;
  }

  /** How many times we started or stopped acting as a site master. */
  get changes(): number {
    return this.#changes;
  }

  remote(): RemoteTopology {
    const bridge = this.#bridge;
    return bridge
      ? { sites: bridge.siteViews(), routes: bridge.routes(), routers: bridge.routers() }
      : (this.#remote ?? { sites: [], routes: [], routers: [] });
  }

  /** A new view of our site: join or leave the bridge, and announce the view on it. */
  update(amSiteMaster: boolean): void {
    if (amSiteMaster && !this.#bridge) this.#start();
    else if (!amSiteMaster && this.#bridge) this.#stop();
    this.#bridge?.announce();
  }

  /** Stops everything; returns the bridge agent for the caller to close once it has left the site. */
  detach(): BridgeAgent | null {
    this.#closed = true;
    const bridge = this.#bridge;
    this.#bridge = null;
    return bridge;
  }

  /** Coalesces changes: one "changed" (and one TOPOLOGY to the site) per turn of the loop. */
  changed(): void {
    if (this.#queued) return;
    this.#queued = true;
    setImmediate(() => {
      this.#queued = false;
      if (this.#closed) return;
      this.#broadcastTopology();
      this.emit("changed");
    });
  }

  /** A TOPOLOGY from a member of our site: kept when it comes from one of our site masters. */
  onTopology(env: Envelope): void {
    if (this.#bridge || env.origin.site !== this.#host.origin.site) return;
    if (!this.#host.siteMasters().some((m) => m.name === env.origin.name)) return;
    try {
      this.#remote = decodeTopology(env.payload);
    } catch (err) {
      this.#host.log.warn({ err: (err as Error).message }, "bad topology (dropped)");
      return;
    }
    this.emit("changed");
  }

  #start(): void {
    const { options: o, log } = this.#host;
    if (o.routers.length === 0) {
      log.warn("site master without routers (TUNNEL_INITIAL_HOSTS empty): this site stays alone");
      return;
    }
    const me = this.#host.localMember();
    const bridge = new BridgeAgent({
      site: this.#host.origin.site,
      name: this.#host.origin.name,
      uuid: me.uuid,
      host: me.host,
      port: me.port,
      routers: o.routers,
      ...(o.bridgeGroup ? { group: o.bridgeGroup } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
      ...(o.routerToken !== undefined ? { routerToken: o.routerToken } : {}),
      ...(o.routerHeartbeatIntervalMs !== undefined
        ? { heartbeatIntervalMs: o.routerHeartbeatIntervalMs }
        : {}),
      ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
      ...(o.announceIntervalMs !== undefined ? { announceIntervalMs: o.announceIntervalMs } : {}),
      siteView: () => this.#host.siteView(),
      logger: log,
    });
    bridge.on("envelope", (env, bytes) => this.emit("envelope", env, bytes));
    bridge.on("route", (r) => this.emit("route", r));
    bridge.on("changed", () => this.changed());
    bridge.on("status", (e) => this.emit("bridge-status", e));
    bridge.on("refused", (r) => this.emit("bridge-refused", r));
    bridge.on("undeliverable", (u) => {
      // A lane copy is still in its origin's send buffer and will be sent again: not lost.
      if (!u.envelope.lane) this.emit("undeliverable", u);
    });
    this.#bridge = bridge;
    this.#remote = null;
    this.#changes++;
    log.info("became site master: joining the bridge");
    bridge.start();
    this.emit("site-master", { active: true });
  }

  #stop(): void {
    const bridge = this.#bridge!;
    this.#bridge = null;
    this.#changes++;
    this.#host.log.info("no longer site master: leaving the bridge");
    bridge
      .close()
      .catch((err: unknown) => this.#host.log.warn({ err: (err as Error).message }, "bridge close failed"));
    this.emit("site-master", { active: false });
  }

  /** The primary site master tells the other local members what the bridge looks like. */
  #broadcastTopology(): void {
    const bridge = this.#bridge;
    const view = this.#host.view();
    if (!bridge || !view || !this.#host.isMe(view.members[0])) return;
    const origin = this.#host.origin;
    const info: TopologyInfo = {
      from: origin.name,
      sites: bridge.siteViews(),
      routes: bridge.routes(),
      routers: bridge.routers(),
    };
    const env: Envelope = {
      kind: EnvelopeKind.Topology,
      hops: 0,
      origin,
      seq: 0,
      dest: { kind: "site", site: origin.site },
      payload: encodeControl(info),
    };
    this.#host.multicast(env, encodeEnvelope(env));
  }
}
