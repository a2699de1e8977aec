// RelayChannel: the library API applications embed. One member of one site: it joins the site's
// local cluster, becomes a site master when it is one of the oldest members (and then joins the
// bridge through every router), and sends/receives messages to a member, a site or everyone.
//
// Path of a cross-site message: sender -> (local unicast, or the local multicast for "everyone")
// its site's forwarding site master -> bridge (router MESSAGE to a site master of each target
// site) -> that site master -> local multicast, or unicast to the target member. That routing is
// in forwarding.ts; the channel keeps the API, the views, and what is addressed to us.

import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { ConfigError } from "../../contract/errors.js";
import { LocalCluster } from "../cluster/local-cluster.js";
import { type Member, memberKey, type View } from "../cluster/member.js";
import { createLogger, type Logger } from "../observability/log.js";
import {
  decodeProbeInfo,
  encodeControl,
  MAX_PROBE_MAP_LINE,
  MAX_PROBE_MAPS,
  type ProbeInfo,
  type SiteViewInfo,
} from "./control.js";
import { DeliveryEngine, type DeliveryPath } from "./delivery/engine.js";
import type { StableLatency } from "./delivery/latency.js";
import type { SendBufferLimits } from "./delivery/send-buffer.js";
import {
  DEFAULT_HOPS,
  type Destination,
  type Envelope,
  EnvelopeKind,
  encodedSize,
  encodeEnvelope,
} from "./envelope.js";
import { RelayError, toRelayError } from "./errors.js";
import { Forwarding, type ForwardingOwner, notForUs } from "./forwarding.js";
import { DEFAULT_CHANNEL_MAX_PAYLOAD, type RelayChannelOptions, siteClusterOptions } from "./options.js";
import { crossesSites, pickFor, reachesSite, siteMastersOf } from "./routing.js";
import type { SiteCluster } from "./site-cluster.js";
import { SiteMasterRole } from "./site-master.js";
import type { RelayAddress, RelayChannelEvents, RelayStats, SiteBacklog, Topology } from "./types.js";
import { RELAY_VERSION } from "./version.js";

export class RelayChannel extends EventEmitter<RelayChannelEvents> {
  readonly site: string;
  readonly name: string;
  readonly clusterName: string;
  /** This channel instance's origin id (a restart is a new incarnation). */
  readonly incarnation = randomUUID();
  /** The origin of every envelope we send (one object: envelopes are never modified). */
  readonly #origin: Envelope["origin"];
  readonly #o: RelayChannelOptions;
  readonly #log: Logger;
  readonly #cluster: SiteCluster;
  readonly #siteMasterCount: number;
  readonly #maxPayload: number;
  #view: View | null = null;
  #seq = 0;
  #connected = false;
  #closed = false;
  /** Probe lines of the services on this channel (setProbeMaps). */
  #probeMaps: (() => readonly string[]) | null = null;
  /** The delivery guarantee (docs/DELIVERY.md). */
  readonly #delivery: DeliveryEngine;
  #stats = {
    sent: 0,
    delivered: 0,
    forwarded: 0,
    fromBridge: 0,
    undeliverable: 0,
    decodeErrors: 0,
    bridgeRefused: 0,
  };
  /** The bridge while we are a site master, and what we know of the other sites. */
  readonly #role: SiteMasterRole;
  /** Envelopes between the local cluster, the bridge and the delivery engine. */
  readonly #routes: Forwarding;
  /** What we do with an envelope addressed to us (from our site or another), by kind. */
  readonly #toUs = {
    [EnvelopeKind.Data]: (env) => this.#emitMessage(env),
    [EnvelopeKind.SiteView]: notForUs,
    [EnvelopeKind.SiteBye]: notForUs,
    [EnvelopeKind.Topology]: notForUs, // handled on arrival (SiteMasterRole.onTopology)
    [EnvelopeKind.ProbeRequest]: (env) => this.#answerProbe(env),
    [EnvelopeKind.ProbeResponse]: (env) => this.#onProbeResponse(env),
    [EnvelopeKind.Ack]: notForUs, // handled on arrival (DeliveryEngine.onAck)
    [EnvelopeKind.Stable]: (env) => this.#delivery.onStable(env),
    [EnvelopeKind.LaneMark]: notForUs, // lane envelopes go to the engine on arrival
  } satisfies Record<EnvelopeKind, (env: Envelope) => void>;

  constructor(options: RelayChannelOptions) {
    super();
    this.#o = options;
    this.site = options.site;
    this.name = options.name;
    this.#origin = Object.freeze({ site: this.site, name: this.name, incarnation: this.incarnation });
    this.clusterName = options.cluster;
    this.#siteMasterCount = options.siteMasters ?? 1;
    if (!Number.isInteger(this.#siteMasterCount) || this.#siteMasterCount < 1) {
      throw new ConfigError(`siteMasters must be an integer >= 1 (got ${options.siteMasters})`);
    }
    this.#maxPayload = options.maxPayload ?? DEFAULT_CHANNEL_MAX_PAYLOAD;
    this.#log = options.logger ?? createLogger("relay", { site: options.site, node: options.name });
    this.#delivery = new DeliveryEngine(this.#deliveryPath(), options);
    this.#delivery.on("drain", () => this.emit("drain"));
    this.#delivery.on("site-unreachable", (b) => this.emit("site-unreachable", b));
    this.#delivery.on("site-reachable", (b) => this.emit("site-reachable", b));
    this.#delivery.on("site-gone", (g) => this.emit("site-gone", g));
    this.#delivery.on("gap", (g) => this.emit("gap", g));
    this.#role = this.#siteMasterRole();
    this.#cluster = (options.createCluster ?? ((o) => new LocalCluster(o)))(
      siteClusterOptions(options, this.#log),
    );
    this.#cluster.on("view", (v) => this.#onView(v));
    this.#cluster.on("message", (m) => this.#routes.fromLocal(m.from, m.payload));
    this.#routes = new Forwarding(this.#forwardingOwner());
  }

  /** Joins the site (and the bridge, if we are a site master). Resolves once we are in a view. */
  async connect(): Promise<void> {
    if (this.#closed) throw new RelayError("CLOSED", "connect() after close()");
    await this.#cluster.start();
    this.#connected = true;
    if (!this.#closed) this.#delivery.start();
    const v = this.#cluster.view;
    if (v && v !== this.#view) this.#onView(v);
  }

  get localMember(): Member {
    return this.#cluster.localMember;
  }

  get view(): View | null {
    return this.#view;
  }

  get isSiteMaster(): boolean {
    return this.#role.bridge !== null;
  }

  /** Joined, and (for a site master) registered with at least one router. */
  get ready(): boolean {
    if (!this.#connected || this.#closed || !this.#view) return false;
    const bridge = this.#role.bridge;
    return bridge === null || bridge.registered;
  }

  stats(): RelayStats {
    const d = this.#delivery.stats();
    const decodeErrors = this.#stats.decodeErrors + d.decodeErrors;
    const c = this.#cluster.stats?.();
    return {
      ...this.#stats,
      siteMasterChanges: this.#role.changes,
      ...d,
      decodeErrors,
      clusterAuthFailures: c?.authFailures ?? 0,
      clusterHandshakesRefused: c?.refusedHandshakes ?? 0,
      clusterViewsRefused: c?.viewsRefused ?? 0,
      clusterInternalErrors: c?.internalErrors ?? 0,
      clusterBytesIn: c?.bytesIn ?? 0,
      clusterBytesOut: c?.bytesOut ?? 0,
    };
  }

  /** Whether we are reliable (docs/DELIVERY.md). */
  get reliable(): boolean {
    return this.#delivery.reliable;
  }

  /**
   * False while some destination site's share of the send buffer (or its total) is full; use
   * writableTo() to ask about one destination. A refused send() throws BUFFER_FULL; wait for "drain".
   */
  get writable(): boolean {
    return this.#delivery.writable;
  }

  /** False while send(dest, ...) would throw BUFFER_FULL (a full share of a site it goes to). */
  writableTo(dest: Destination): boolean {
    return this.#delivery.writableTo(dest);
  }

  /** Our unstable messages per destination site (reliable mode). */
  backlog(): SiteBacklog[] {
    return this.#delivery.backlog();
  }
  /** Send -> Stable latency counters of our cross-site messages (the delivery metrics read them). */
  deliveryLatency(): StableLatency {
    return this.#delivery.latency;
  }

  /** Destination sites of our send buffer and whether each is unreachable now. */
  siteReachability(): { site: string; unreachable: boolean }[] {
    return this.#delivery.reachability();
  }

  /** The send buffer's limits in force. */
  sendBufferLimits(): SendBufferLimits {
    return this.#delivery.sendBufferLimits;
  }

  /** send() that waits (without bound: this is back-pressure) while the send buffer is full. */
  async sendAsync(dest: Destination, payload: Uint8Array): Promise<number> {
    for (;;) {
      try {
        return this.send(dest, payload);
      } catch (err) {
        if (!(err instanceof RelayError) || err.code !== "BUFFER_FULL") throw err;
      }
      await new Promise<void>((resolve) => this.once("drain", resolve));
    }
  }

  /** Sends to everyone in every site (ourselves included). Returns the message's sequence number. */
  sendToAll(payload: Uint8Array): number {
    return this.send({ kind: "all" }, payload);
  }

  sendToSite(site: string, payload: Uint8Array): number {
    return this.send({ kind: "site", site }, payload);
  }

  sendToMember(to: RelayAddress, payload: Uint8Array): number {
    return this.send({ kind: "member", site: to.site, name: to.name }, payload);
  }

  /** Sends application data. Throws RelayError when it cannot be accepted (never drops silently). */
  send(dest: Destination, payload: Uint8Array): number {
    return this.#sendData(dest, payload, false);
  }

  /**
   * Sends data of a runtime service built on this channel (replicated maps): like send() — same
   * order per sender, same delivery guarantee, same limits — but received as a "service" event,
   * never as a "message", so the application's own traffic and the services' stay apart. The
   * first payload byte names the service.
   */
  sendService(dest: Destination, payload: Uint8Array): number {
    return this.#sendData(dest, payload, true);
  }

  #sendData(dest: Destination, payload: Uint8Array, service: boolean): number {
    this.#checkOpen();
    if (payload.length > this.#maxPayload) {
      throw new RelayError("PAYLOAD_TOO_LARGE", `payload of ${payload.length} bytes > ${this.#maxPayload}`);
    }
    if (this.#delivery.reliable && crossesSites(dest, this.site)) this.#delivery.admit(dest, payload.length);
    const seq = ++this.#seq;
    try {
      this.#emitEnvelope(EnvelopeKind.Data, dest, payload, seq, service);
    } catch (err) {
      throw toRelayError(err);
    }
    this.#stats.sent++;
    return seq;
  }

  /** Asks every member of `site` (or of every site) for its state; answers arrive as "probe-response". */
  probe(site?: string): void {
    this.#checkOpen();
    this.#emitEnvelope(
      EnvelopeKind.ProbeRequest,
      site ? { kind: "site", site } : { kind: "all" },
      new Uint8Array(0),
      0,
    );
  }

  /**
   * Lines a service built on this channel adds to its probe answers (KvService: one per map);
   * null removes them. Each line is cut to MAX_PROBE_MAP_LINE characters, at most MAX_PROBE_MAPS.
   */
  setProbeMaps(lines: (() => readonly string[]) | null): void {
    this.#probeMaps = lines;
  }

  /** What this member answers to a probe. */
  probeInfo(): ProbeInfo {
    const me = this.#cluster.localMember;
    let maps: string[] | undefined;
    try {
      maps = this.#probeMaps?.()
        .slice(0, MAX_PROBE_MAPS)
        .map((l) => l.slice(0, MAX_PROBE_MAP_LINE))
        .filter((l) => l.length > 0);
    } catch (err) {
      this.#log.warn(
        { err: (err as Error).message },
        "probe lines of a service failed (answered without them)",
      );
    }
    return {
      name: this.name,
      site: this.site,
      local_addr: `${this.name} [${me.uuid}]`,
      physical_addr: `${me.host}:${me.port}`,
      view: this.#view ? describeView(this.#view) : "(none)",
      cluster: this.clusterName,
      version: `cross-cloud-relay ${RELAY_VERSION}`,
      site_master: this.isSiteMaster,
      ...(maps && maps.length > 0 ? { maps } : {}),
    };
  }

  topology(): Topology {
    const own = this.#view ? this.#siteView(this.#view) : null;
    const remote = this.#role.remote();
    const up = new Set(remote.routes.filter((r) => r.up).map((r) => r.site));
    return {
      site: this.site,
      self: this.name,
      sites: [...(own ? [own] : []), ...remote.sites.filter((s) => s.site !== this.site && up.has(s.site))],
      routes: remote.routes,
      routers: remote.routers,
    };
  }

  /** Leaves the site (the next member takes over as site master) and the bridge. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#delivery.close();
    this.emit("drain"); // sendAsync waiters see CLOSED
    const bridge = this.#role.detach();
    try {
      await this.#cluster.leave();
    } finally {
      if (bridge) await bridge.close();
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new RelayError("CLOSED", "the channel is closed");
    if (!this.#connected || !this.#view) throw new RelayError("NOT_CONNECTED", "connect() first");
  }

  #siteMasters(): Member[] {
    return this.#view ? siteMastersOf(this.#view.members, this.#siteMasterCount) : [];
  }

  /** The local site master that carries `originName`'s traffic to other sites. */
  #forwarderFor(originName: string): Member | undefined {
    return pickFor(this.#siteMasters(), originName);
  }

  #isMe(m: Member | undefined): boolean {
    return m !== undefined && memberKey(m) === memberKey(this.#cluster.localMember);
  }

  /**
   * Sends an envelope of ours: encoded once, then delivered in our site, and for other sites either
   * buffered on their lanes (reliable Data) or forwarded bare.
   */
  #emitEnvelope(
    kind: EnvelopeKind,
    dest: Destination,
    payload: Uint8Array,
    seq: number,
    service = false,
  ): void {
    const plain: Envelope = { kind, hops: DEFAULT_HOPS, origin: this.#origin, seq, dest, payload };
    const env: Envelope = service ? { ...plain, service: true } : plain;
    const inSite = reachesSite(dest, this.site);
    const crosses = crossesSites(dest, this.site);
    const onLanes = crosses && this.#delivery.reliable && kind === EnvelopeKind.Data;
    // A message only for other sites with the guarantee is encoded once per lane copy (by the
    // engine), not also without a lane; its size is checked (computed) once, here.
    const bytes = inSite || !onLanes ? this.#encode(env) : null;
    const size = bytes === null ? this.#check(env) : bytes.length;
    if (inSite) this.#routes.sendInSite(env, bytes!);
    if (!crosses) return;
    if (onLanes) this.#delivery.enqueue(env, size);
    else this.#routes.forwardOwn(env, bytes!);
  }

  /** An envelope we cannot write names a destination that cannot exist. */
  #encode(env: Envelope): Buffer {
    try {
      return encodeEnvelope(env);
    } catch (err) {
      throw new RelayError("BAD_DESTINATION", (err as Error).message);
    }
  }

  /** #encode's checks without the encoding; the size it would have. */
  #check(env: Envelope): number {
    try {
      return encodedSize(env);
    } catch (err) {
      throw new RelayError("BAD_DESTINATION", (err as Error).message);
    }
  }

  #deliver(env: Envelope): void {
    if (this.#closed) return;
    this.#toUs[env.kind](env);
  }

  #emitMessage(env: Envelope): void {
    this.#stats.delivered++;
    this.emit(env.service ? "service" : "message", {
      from: { name: env.origin.name, site: env.origin.site },
      dest: env.dest,
      seq: env.seq,
      payload: env.payload,
    });
  }

  #answerProbe(env: Envelope): void {
    try {
      this.#emitEnvelope(
        EnvelopeKind.ProbeResponse,
        { kind: "member", site: env.origin.site, name: env.origin.name },
        encodeControl(this.probeInfo()),
        0,
      );
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, "probe answer not sent");
    }
  }

  #onProbeResponse(env: Envelope): void {
    try {
      this.emit("probe-response", decodeProbeInfo(env.payload));
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, "bad probe answer (dropped)");
    }
  }

  #onView(view: View): void {
    if (this.#closed) return;
    this.#view = view;
    const me = this.#cluster.localMember;
    const amSiteMaster = this.#siteMasters().some((m) => memberKey(m) === memberKey(me));
    this.#log.info({ view: describeView(view), siteMaster: amSiteMaster }, "view");
    this.#role.update(amSiteMaster);
    this.#delivery.onView(view);
    this.emit("view", view);
    this.#role.changed();
  }

  /** The site-master role and what it sees of us. */
  #siteMasterRole(): SiteMasterRole {
    const role = new SiteMasterRole({
      options: this.#o,
      origin: { site: this.site, name: this.name, incarnation: this.incarnation },
      log: this.#log,
      localMember: () => this.#cluster.localMember,
      view: () => this.#view,
      siteMasters: () => this.#siteMasters(),
      isMe: (m) => this.#isMe(m),
      siteView: () => this.#siteView(this.#view!),
      multicast: (env, bytes) => this.#routes.relaySend(null, bytes, env),
    });
    role.on("envelope", (env, bytes) => this.#routes.fromBridge(env, bytes));
    role.on("route", (r) => this.emit("route", r));
    role.on("bridge-status", (e) => this.emit("bridge-status", e));
    role.on("bridge-refused", () => this.#stats.bridgeRefused++);
    role.on("undeliverable", (u) => {
      this.#stats.undeliverable++;
      this.emit("undeliverable", u);
    });
    role.on("site-master", (e) => this.emit("site-master", e));
    role.on("changed", () => {
      this.emit("topology", this.topology());
      this.#delivery.onRoutes();
    });
    return role;
  }

  /** What the delivery engine sees of us. */
  #deliveryPath(): DeliveryPath {
    return {
      origin: { site: this.site, name: this.name, incarnation: this.incarnation },
      log: this.#log,
      now: () => Date.now(),
      view: () => this.#view,
      siteMasters: () => this.#siteMasters(),
      forwarder: () => this.#forwarderFor(this.name),
      isMe: (m) => this.#isMe(m),
      topology: () => this.topology(),
      sendLane: (env, bytes) => this.#routes.sendLane(env, bytes),
      sendToMember: (m, bytes) => {
        this.#cluster.send(memberKey(m), bytes);
      },
      sendStable: (to, payload) =>
        this.#emitEnvelope(EnvelopeKind.Stable, { kind: "member", site: to.site, name: to.name }, payload, 0),
      deliver: (env) => this.#deliver(env),
    };
  }

  /** What the routing of envelopes sees of us. */
  #forwardingOwner(): ForwardingOwner {
    return {
      site: this.site,
      name: this.name,
      log: this.#log,
      maxPayload: this.#maxPayload,
      stats: this.#stats,
      delivery: this.#delivery,
      isClosed: () => this.#closed,
      view: () => this.#view,
      forwarderFor: (originName) => this.#forwarderFor(originName),
      isMe: (m) => this.#isMe(m),
      send: (to, bytes) => this.#cluster.send(to, bytes),
      bridge: () => this.#role.bridge,
      onTopology: (env) => this.#role.onTopology(env),
      deliver: (env) => this.#deliver(env),
      undeliverable: (u) => this.emit("undeliverable", u),
    };
  }

  #siteView(view: View): SiteViewInfo {
    return {
      site: this.site,
      viewId: `${view.members[0]?.name ?? "?"}|${view.id.seq}`,
      members: view.members.map((m) => ({ name: m.name, host: m.host, port: m.port })),
      siteMasters: siteMastersOf(view.members, this.#siteMasterCount).map((m) => m.name),
    };
  }
}

/** `[coordinator|seq] (n) [a, b, c]`, like a JGroups view. */
export function describeView(view: View): string {
  const names = view.members.map((m) => m.name);
  return `[${names[0] ?? "?"}|${view.id.seq}] (${names.length}) [${names.join(", ")}]`;
}
