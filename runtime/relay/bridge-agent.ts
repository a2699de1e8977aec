// The bridge side of a site master: one TunnelClient registered in group `bridge` on every router
// with a site-qualified address, the merged bridge membership, the other sites' announced views,
// and the forwarding of envelopes to the site masters of other sites.
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import type { RouterEndpoint } from "../../contract/initial-hosts.js";
import type { Logger } from "../observability/log.js";
import { addressKey } from "../protocol/codec.js";
import type { Address, IpAddress, SiteAddress } from "../protocol/types.js";
import { TunnelClient, type TunnelMessage, type TunnelSuspect } from "../tunnel/client.js";
import type { TunnelTlsOptions } from "../tunnel/options.js";
import type { TunnelStatusEvent } from "../tunnel/status.js";
import { type BridgeMember, BridgeMembership, type RouteChange } from "./bridge-view.js";
import {
  decodeSiteView,
  encodeControl,
  type RouteInfo,
  type RouterInfo,
  type SiteViewInfo,
} from "./control.js";
import { decodeEnvelope, type Envelope, EnvelopeError, EnvelopeKind, encodeEnvelope } from "./envelope.js";
import { remoteSitesFor } from "./routing.js";

export const DEFAULT_BRIDGE_GROUP = "bridge";
/** How often a site master re-reads the bridge membership from the routers. */
export const DEFAULT_POLL_INTERVAL_MS = 2000;
/** How often a site master re-announces its site's view (also keeps routes "heard"). */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 10_000;
/** Envelopes for a site with no reachable site master wait this long for one to appear. */
export const DEFAULT_HOLD_MS = 3000;
/** Bound of the hold queue (bytes); beyond it an envelope is reported undeliverable at once. */
export const DEFAULT_HOLD_BYTES = 8 * 1024 * 1024;

export interface BridgeAgentOptions {
  readonly site: string;
  readonly name: string;
  /** UUID of the SiteUUID address this site master registers (its member uuid). */
  readonly uuid: string;
  /** Physical address shown by the routers (GET_MBRS, `relay dump`). */
  readonly host: string;
  readonly port: number;
  readonly routers: readonly RouterEndpoint[];
  readonly group?: string;
  readonly tls?: TunnelTlsOptions;
  /** Our site's token for routers in token mode (sent in an AUTH frame before REGISTER). */
  readonly routerToken?: string;
  readonly heartbeatIntervalMs?: number;
  readonly pollIntervalMs?: number;
  readonly announceIntervalMs?: number;
  readonly holdMs?: number;
  readonly holdBytes?: number;
  /** Our site's current view, announced to the other sites. */
  readonly siteView: () => SiteViewInfo;
  readonly logger: Logger;
}

/** An envelope that could not be handed to the bridge. */
export interface Undeliverable {
  readonly site: string;
  readonly reason: "no-route" | "send-failed";
  readonly envelope: Envelope;
}

export interface BridgeAgentEvents {
  /** A routed envelope (data, probe) from another site, for local delivery. */
  envelope: [Envelope, Buffer];
  route: [RouteChange];
  /** Something shown by topology() changed (site views, routes, routers). */
  changed: [];
  /** Our router connections changed state. */
  status: [TunnelStatusEvent];
  undeliverable: [Undeliverable];
  /** An envelope dropped because it did not come from the site it speaks for (see #onMessage). */
  refused: [BridgeRefusal];
}

/** An envelope from the bridge that did not count. */
export interface BridgeRefusal {
  /** `site-mismatch`: its origin site is not the sender's site; `local-only`: a kind that never crosses sites. */
  readonly reason: "site-mismatch" | "local-only";
  readonly kind: EnvelopeKind;
  /** The site of the SiteUUID it came from, and the site it claimed. */
  readonly from: string;
  readonly claimed: string;
}

/** At most one warning per interval about refused bridge envelopes (plus how many were not logged). */
const REFUSED_LOG_INTERVAL_MS = 1_000;

interface Held {
  readonly site: string;
  readonly env: Envelope;
  readonly bytes: Buffer;
  readonly until: number;
}

/**
 * `host[port]` of a router. Memoized per endpoint object (one per router connection) like
 * toBridgeMember: both run for every envelope from the bridge, and a string built anew is hashed
 * anew at every map lookup.
 */
const endpointTexts = new WeakMap<RouterEndpoint, string>();
function endpointText(r: RouterEndpoint): string {
  let text = endpointTexts.get(r);
  if (text === undefined) {
    text = `${r.host}[${r.port}]`;
    endpointTexts.set(r, text);
  }
  return text;
}

export class BridgeAgent extends EventEmitter<BridgeAgentEvents> {
  readonly #o: BridgeAgentOptions;
  readonly #log: Logger;
  readonly #tunnel: TunnelClient;
  readonly #addr: SiteAddress;
  readonly #membership: BridgeMembership<Address>;
  readonly #siteViews = new Map<string, SiteViewInfo>();
  /** Bridge members that have our current site view. */
  readonly #greeted = new Set<string>();
  #held: Held[] = [];
  #heldBytes = 0;
  /** True once a GET_MBRS answer arrived: before that, "no route" only means "not known yet". */
  #synced = false;
  #pollTimer: NodeJS.Timeout | null = null;
  #announceTimer: NodeJS.Timeout | null = null;
  #holdTimer: NodeJS.Timeout | null = null;
  #polling = false;
  #pollAgain = false;
  #closed = false;
  #forwarded = 0;
  #received = 0;
  #undeliverable = 0;
  #refused = 0;
  #refusedLog = { at: 0, suppressed: 0 };

  constructor(options: BridgeAgentOptions) {
    super();
    this.#o = options;
    this.#log = options.logger;
    this.#addr = {
      kind: "site-uuid",
      uuid: options.uuid,
      flags: 0,
      extensions: [],
      site: options.site,
      name: options.name,
    };
    this.#membership = new BridgeMembership<Address>(options.site);
    const physical: IpAddress | null =
      isIP(options.host) === 4 || isIP(options.host) === 6
        ? { kind: "ip", host: options.host, port: options.port }
        : null;
    this.#tunnel = new TunnelClient({
      routers: options.routers,
      group: options.group ?? DEFAULT_BRIDGE_GROUP,
      localAddr: this.#addr,
      logicalName: options.name,
      physicalAddr: physical,
      ...(options.tls ? { tls: options.tls } : {}),
      ...(options.routerToken !== undefined
        ? { authToken: { site: options.site, token: options.routerToken } }
        : {}),
      ...(options.heartbeatIntervalMs !== undefined
        ? { heartbeatIntervalMs: options.heartbeatIntervalMs }
        : {}),
      logger: options.logger,
    });
    this.#tunnel.on("message", (m) => this.#onMessage(m));
    this.#tunnel.on("suspect", (s) => this.#onSuspect(s));
    this.#tunnel.on("status", (e) => this.#onStatus(e));
  }

  /** Our SiteUUID on the bridge. */
  get address(): SiteAddress {
    return this.#addr;
  }

  /** True while at least one router has our registration. */
  get registered(): boolean {
    return this.#tunnel.status().routers.some((r) => r.state === "registered");
  }

  start(): void {
    this.#tunnel.start();
    const poll = this.#o.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#pollTimer = setInterval(() => this.poll(), poll);
    this.#announceTimer = setInterval(
      () => this.announce(),
      this.#o.announceIntervalMs ?? DEFAULT_ANNOUNCE_INTERVAL_MS,
    );
    this.#holdTimer = setInterval(() => this.#expireHeld(), Math.min(500, this.#o.holdMs ?? DEFAULT_HOLD_MS));
  }

  /** Our site's view changed: tell every other site. */
  announce(): void {
    if (this.#closed || !this.registered) return;
    this.#greeted.clear();
    for (const m of this.#allMembers()) this.#greeted.add(m.key);
    this.#sendControl(null, EnvelopeKind.SiteView, encodeControl(this.#o.siteView()));
  }

  /**
   * Sends an envelope from our site to the site master of every remote site it is for. `bytes` is
   * its encoding (sent as is). With no route yet, it waits (bounded) for one.
   */
  forward(env: Envelope, bytes: Buffer): void {
    if (this.#closed) return;
    // A lane envelope (reliable delivery) is a copy for exactly one site.
    const laneSite = env.lane?.site;
    if (!this.#synced) {
      this.#hold(laneSite ?? (env.dest.kind === "all" ? "*" : env.dest.site), env, bytes);
      return;
    }
    if (laneSite !== undefined) {
      if (laneSite !== this.#o.site) this.#sendTo(laneSite, env, bytes);
      return;
    }
    for (const site of remoteSitesFor(env.dest, this.#o.site, this.#membership.sites())) {
      this.#sendTo(site, env, bytes);
    }
  }

  routes(): RouteInfo[] {
    return this.#membership.routes();
  }

  /** Views announced by the other sites' site masters, for the sites currently reachable. */
  siteViews(): SiteViewInfo[] {
    const up = new Set(this.#membership.sites());
    return [...this.#siteViews.values()]
      .filter((v) => up.has(v.site))
      .sort((a, b) => (a.site < b.site ? -1 : 1));
  }

  routers(): RouterInfo[] {
    return this.#tunnel.status().routers.map((r) => ({ endpoint: endpointText(r.endpoint), state: r.state }));
  }

  stats(): { forwarded: number; received: number; undeliverable: number; held: number; refused: number } {
    return {
      forwarded: this.#forwarded,
      received: this.#received,
      undeliverable: this.#undeliverable,
      held: this.#held.length,
      refused: this.#refused,
    };
  }

  /** Re-reads the bridge membership from the routers (coalesces concurrent calls). */
  poll(): void {
    if (this.#closed) return;
    if (this.#polling) {
      this.#pollAgain = true;
      return;
    }
    if (!this.registered) return;
    this.#polling = true;
    this.#tunnel
      .getMembers(this.#o.group ?? DEFAULT_BRIDGE_GROUP, 2000)
      .then((pings) => {
        if (this.#closed) return;
        const members: BridgeMember<Address>[] = [];
        for (const p of pings) {
          const m = p.member ? toBridgeMember(p.member) : null;
          if (m && m.key !== addressKey(this.#addr)) members.push(m);
        }
        this.#apply(this.#membership.snapshot(members, Date.now()));
        this.#synced = true;
        this.#flushHeld();
      })
      .catch((err: unknown) => {
        this.#log.debug({ err: (err as Error).message }, "bridge membership poll failed");
      })
      .finally(() => {
        this.#polling = false;
        if (this.#pollAgain) {
          this.#pollAgain = false;
          this.poll();
        }
      });
  }

  /** Says goodbye on the bridge (so other sites drop us at once) and closes the router connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.registered) {
      try {
        this.#sendControl(null, EnvelopeKind.SiteBye, new Uint8Array(0));
      } catch {
        // closing anyway
      }
    }
    this.#closed = true;
    for (const t of [this.#pollTimer, this.#announceTimer, this.#holdTimer]) if (t) clearInterval(t);
    for (const h of this.#held) this.#reportUndeliverable(h.site, h.env, "no-route");
    this.#held = [];
    this.#heldBytes = 0;
    await this.#tunnel.close();
    for (const r of this.#membership.clear()) this.emit("route", r);
  }

  #allMembers(): BridgeMember<Address>[] {
    const out: BridgeMember<Address>[] = [];
    for (const r of this.#membership.routes()) out.push(...this.#membership.membersOf(r.site));
    return out;
  }

  #sendTo(site: string, env: Envelope, bytes: Buffer): void {
    const target = this.#membership.targetFor(site, env.origin.name);
    if (!target) {
      this.#hold(site, env, bytes);
      return;
    }
    try {
      // Retransmissions and stability reports go through every router: the router we normally
      // use may be on a path that is broken silently (no reset, no SUSPECT until a heartbeat
      // timeout), and receivers drop the duplicates.
      if (env.lane?.retry || env.kind === EnvelopeKind.Stable) this.#tunnel.sendAll(target.addr, bytes);
      else this.#tunnel.send(target.addr, bytes);
      this.#forwarded++;
    } catch (err) {
      this.#log.warn({ site, err: (err as Error).message }, "bridge send failed");
      this.#reportUndeliverable(site, env, "send-failed");
    }
  }

  #hold(site: string, env: Envelope, bytes: Buffer): void {
    const limit = this.#o.holdBytes ?? DEFAULT_HOLD_BYTES;
    if (this.#heldBytes + bytes.length > limit) {
      this.#reportUndeliverable(site, env, "no-route");
      return;
    }
    this.#held.push({ site, env, bytes, until: Date.now() + (this.#o.holdMs ?? DEFAULT_HOLD_MS) });
    this.#heldBytes += bytes.length;
  }

  #flushHeld(): void {
    if (this.#held.length === 0 || !this.#synced) return;
    const known = new Set(this.#membership.sites());
    const keep: Held[] = [];
    const now = Date.now();
    const held = this.#held;
    this.#held = [];
    for (const h of held) {
      if (h.site === "*") {
        for (const s of known) this.#sendTo(s, h.env, h.bytes);
      } else if (known.has(h.site)) {
        this.#sendTo(h.site, h.env, h.bytes);
      } else if (h.until > now) {
        keep.push(h);
        continue;
      } else this.#reportUndeliverable(h.site, h.env, "no-route");
      this.#heldBytes -= h.bytes.length;
    }
    this.#held = [...keep, ...this.#held];
  }

  #expireHeld(): void {
    if (this.#held.length === 0) return;
    const now = Date.now();
    if (this.#synced) {
      this.#flushHeld();
      return;
    }
    const keep: Held[] = [];
    for (const h of this.#held) {
      if (h.until > now) keep.push(h);
      else {
        this.#heldBytes -= h.bytes.length;
        this.#reportUndeliverable(h.site, h.env, "no-route");
      }
    }
    this.#held = keep;
  }

  #reportUndeliverable(site: string, env: Envelope, reason: Undeliverable["reason"]): void {
    this.#undeliverable++;
    this.#log.debug({ site, reason, origin: env.origin.name, seq: env.seq }, "envelope undeliverable");
    this.emit("undeliverable", { site, reason, envelope: env });
  }

  #sendControl(dest: Address | null, kind: EnvelopeKind, payload: Uint8Array): void {
    const env: Envelope = {
      kind,
      hops: 0,
      origin: { site: this.#o.site, name: this.#o.name, incarnation: this.#o.uuid },
      seq: 0,
      dest: { kind: "all" },
      payload,
    };
    this.#tunnel.send(dest, encodeEnvelope(env));
  }

  #apply(changes: RouteChange[]): void {
    for (const r of changes) {
      this.#log.info({ site: r.site, up: r.up, routers: r.routers, siteMasters: r.siteMasters }, "route");
      this.emit("route", r);
    }
    if (changes.length > 0) {
      this.#flushHeld();
      this.emit("changed");
    }
  }

  #onStatus(e: TunnelStatusEvent): void {
    this.emit("status", e);
    if (e.type !== "router-up" && e.type !== "router-down") return;
    const up = this.#tunnel
      .status()
      .routers.filter((r) => r.state === "registered")
      .map((r) => endpointText(r.endpoint));
    this.#apply(this.#membership.setRouters(up));
    if (e.type === "router-up") {
      this.announce();
      this.poll();
    }
    this.emit("changed");
  }

  #onSuspect(s: TunnelSuspect): void {
    const key = addressKey(s.addr);
    this.#greeted.delete(key);
    this.#apply(this.#membership.suspect(key, endpointText(s.router), Date.now()));
    this.poll();
  }

  #onMessage(m: TunnelMessage): void {
    const from = m.sender ? toBridgeMember(m.sender) : null;
    if (!from || from.site === this.#o.site) return;
    let env: Envelope;
    try {
      env = decodeEnvelope(m.payload);
    } catch (err) {
      const code = err instanceof EnvelopeError ? err.code : "unknown";
      this.#log.warn({ from: from.name, site: from.site, code }, "bad envelope from the bridge (dropped)");
      return;
    }
    // Binding: an envelope speaks only for the site of the SiteUUID it came from. A router with
    // client identities lets a connection send only from addresses it registered, and register
    // only its own site's SiteUUIDs, so `from.site` is the sender's authenticated site; a forged
    // Stable (or ack, or site announcement) for another site is dropped here.
    if (env.origin.site !== from.site) {
      this.#refuse(
        { reason: "site-mismatch", kind: env.kind, from: from.site, claimed: env.origin.site },
        from,
      );
      return;
    }
    if (env.kind === EnvelopeKind.Ack || env.kind === EnvelopeKind.Topology) {
      this.#refuse({ reason: "local-only", kind: env.kind, from: from.site, claimed: env.origin.site }, from);
      return;
    }
    this.#apply(this.#membership.heard(endpointText(m.router), from));
    this.#fromBridge[env.kind](env, from, m);
  }

  #refuse(r: BridgeRefusal, from: BridgeMember<Address>): void {
    this.#refused++;
    const now = Date.now();
    if (now - this.#refusedLog.at < REFUSED_LOG_INTERVAL_MS) this.#refusedLog.suppressed++;
    else {
      this.#log.warn(
        {
          reason: r.reason,
          kind: EnvelopeKind[r.kind],
          from: `${from.name}:${from.site}`,
          claimed: r.claimed,
          suppressed: this.#refusedLog.suppressed,
        },
        "envelope from the bridge refused",
      );
      this.#refusedLog = { at: now, suppressed: 0 };
    }
    this.emit("refused", r);
  }

  /** What we do with an envelope from another site's site master, by kind. */
  readonly #fromBridge = {
    [EnvelopeKind.Data]: (env, _from, m) => this.#passUp(env, m),
    [EnvelopeKind.SiteView]: (env, from) => this.#onSiteView(env, from),
    [EnvelopeKind.SiteBye]: (_env, from) => this.#onSiteBye(from),
    [EnvelopeKind.Topology]: () => {}, // local only: refused in #onMessage
    [EnvelopeKind.ProbeRequest]: (env, _from, m) => this.#passUp(env, m),
    [EnvelopeKind.ProbeResponse]: (env, _from, m) => this.#passUp(env, m),
    [EnvelopeKind.Ack]: () => {}, // local only: refused in #onMessage
    [EnvelopeKind.Stable]: (env, _from, m) => this.#passUp(env, m),
    [EnvelopeKind.LaneMark]: (env, _from, m) => this.#passUp(env, m),
  } satisfies Record<EnvelopeKind, (env: Envelope, from: BridgeMember<Address>, m: TunnelMessage) => void>;

  #onSiteView(env: Envelope, from: BridgeMember<Address>): void {
    let view: SiteViewInfo;
    try {
      view = decodeSiteView(env.payload);
    } catch (err) {
      this.#log.warn({ from: from.name, err: (err as Error).message }, "bad site view (dropped)");
      return;
    }
    if (view.site !== from.site) return;
    this.#siteViews.set(view.site, view);
    // Bounded like the membership's sites: views of sites it forgot are dropped.
    for (const site of this.#siteViews.keys()) {
      if (!this.#membership.knows(site)) this.#siteViews.delete(site);
    }
    this.#membership.announce(view.site, view.siteMasters);
    // A site master we have not told about our site yet (a newcomer): answer it directly.
    if (!this.#greeted.has(from.key)) {
      this.#greeted.add(from.key);
      this.#sendControl(from.addr, EnvelopeKind.SiteView, encodeControl(this.#o.siteView()));
    }
    this.emit("changed");
  }

  #onSiteBye(from: BridgeMember<Address>): void {
    this.#greeted.delete(from.key);
    this.#apply(this.#membership.remove(from.key));
    this.poll();
  }

  /** Traffic for our site: up to the channel. */
  #passUp(env: Envelope, m: TunnelMessage): void {
    if (env.origin.site === this.#o.site) return;
    this.#received++;
    this.emit("envelope", env, Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength));
  }
}

const bridgeMembers = new WeakMap<Address, BridgeMember<Address>>();

/** A bridge member from a router's address, or null when it is not a site-qualified address. */
export function toBridgeMember(addr: Address): BridgeMember<Address> | null {
  if (addr.kind !== "site-uuid" || addr.site === null || addr.name === null) return null;
  // The codec hands out the same frozen address for the same sender (protocol/codec.ts), so this
  // is computed once per site master, not per envelope.
  let m = bridgeMembers.get(addr);
  if (m === undefined) {
    m = { key: addressKey(addr), addr, site: addr.site, name: addr.name };
    bridgeMembers.set(addr, m);
  }
  return m;
}
