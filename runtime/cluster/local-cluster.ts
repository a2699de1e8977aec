// The members of one site form a cluster over a TCP mesh: discovery, join, views ordered by age
// (members[0] = coordinator), failure detection (connection loss + heartbeats), graceful leave,
// merge after a partition, and per-sender FIFO messaging. See docs/CLUSTER.md.
//
// Connections: each member sends only on the connection it opened to a peer (its "link"), and
// receives on the connections peers opened to it. So a pair uses at most one connection per
// direction, two members that dial each other at once never race over which connection to keep,
// and everything one member sends to another travels, in order, on a single TCP stream.
import { EventEmitter } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../observability/log.js";
import {
  CLUSTER_PROTOCOL_VERSION,
  type ClusterFrame,
  DATA_OVERHEAD,
  encodeData,
  encodeFrame,
  FrameType,
} from "./codec.js";
import { MeshConnection } from "./connection.js";
import type { DiscoveredAddress } from "./discovery.js";
import { ClusterError } from "./errors.js";
import {
  compareMembers,
  describeMember,
  type Member,
  makeView,
  memberKey,
  type View,
  viewHas,
} from "./member.js";
import { type LocalClusterOptions, type ResolvedClusterOptions, resolveClusterOptions } from "./options.js";
import { compareForMerge, mergeViews, supersedes, viewWithJoiner, viewWithout } from "./view-rules.js";

/** A message delivered to this member. */
export interface ClusterMessage {
  readonly from: Member;
  readonly payload: Uint8Array;
}

/** Emitted when the coordinator (members[0] of the view) is another member than before. */
export interface CoordinatorChange {
  readonly coordinator: Member;
  readonly previous: Member | null;
  /** True when this member is now the coordinator. */
  readonly isCoordinator: boolean;
}

export interface LocalClusterEvents {
  message: [ClusterMessage];
  view: [View];
  "coordinator-changed": [CoordinatorChange];
  /** Every peer buffer that made `send` return false is back under the high-water mark. */
  drain: [];
}

/** Snapshot of counters and gauges (one-to-one with metrics). */
export interface ClusterStats {
  readonly member: string;
  readonly joined: boolean;
  readonly isCoordinator: boolean;
  readonly viewSeq: number;
  readonly members: number;
  readonly suspects: number;
  readonly inboundConnections: number;
  readonly outboundConnections: number;
  readonly viewsInstalled: number;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly badFrames: number;
  /** Messages that could not reach a peer because it was suspected or its link failed. */
  readonly messagesLostToFailedPeers: number;
  /** Bytes still in a socket's write buffer when its connection to a member was lost. */
  readonly bytesLostWithConnections: number;
  /** Bytes waiting to be written to peers. */
  readonly bufferedBytes: number;
}

/** Where this member sends to one peer. */
interface Link {
  readonly key: string;
  readonly member: Member;
  conn: MeshConnection | null;
  dialing: boolean;
  /** Frames written before the connection was open (bounded by the BUFFER_FULL limit). */
  queue: Buffer[];
  queuedBytes: number;
  lastUsed: number;
}

interface ProbeResult {
  readonly member: Member;
  readonly view: View | null;
}

/**
 * Lifecycle of a member, forward only: `idle` (constructed) -> `joining` (start(): listening,
 * looking for a coordinator) -> `joined` (a view that includes it is installed) -> `leaving`
 * (leave(): telling the others) -> `closed`. close() goes to `closed` from any phase.
 */
type Phase = "idle" | "joining" | "joined" | "leaving" | "closed";

const HARD_LIMIT_FACTOR = 16;
/** Bounds what a misbehaving client can make a member hold (a site has tens of members). */
const MAX_INBOUND_CONNECTIONS = 4096;

export class LocalCluster extends EventEmitter<LocalClusterEvents> {
  readonly #o: ResolvedClusterOptions;
  readonly #log: Logger;
  #local: Member;
  #key: string;
  #phase: Phase = "idle";
  #view: View | null = null;
  #server: Server | null = null;
  readonly #conns = new Set<MeshConnection>();
  readonly #links = new Map<string, Link>();
  readonly #lastHeard = new Map<string, number>();
  readonly #suspects = new Set<string>();
  readonly #congested = new Set<string>();
  readonly #handshakes = new Map<MeshConnection, (ok: boolean) => void>();
  readonly #infoWaiters = new Map<MeshConnection, Array<(v: View | null) => void>>();
  readonly #sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  #joinWake: (() => void) | null = null;
  #tickTimer: NodeJS.Timeout | null = null;
  #discoveryTimer: NodeJS.Timeout | null = null;
  #discovering = false;
  #stats = {
    viewsInstalled: 0,
    messagesSent: 0,
    messagesReceived: 0,
    badFrames: 0,
    messagesLostToFailedPeers: 0,
    bytesLostWithConnections: 0,
    bytesIn: 0,
    bytesOut: 0,
  };

  constructor(options: LocalClusterOptions) {
    super();
    this.#o = resolveClusterOptions(options);
    this.#local = {
      name: this.#o.name,
      site: this.#o.site,
      uuid: this.#o.uuid,
      host: this.#o.advertiseAddr,
      port: this.#o.bindPort,
    };
    this.#key = memberKey(this.#local);
    this.#log = this.#o.logger.child({ member: this.#key });
  }

  // -------------------------------------------------------------------------------------------
  // Public surface

  /** This member (its port is the real one once `start()` resolved). */
  get localMember(): Member {
    return this.#local;
  }

  /** The installed view, or null before the first one. */
  get view(): View | null {
    return this.#view;
  }

  /** Members of the installed view, oldest first (empty before joining). */
  get members(): readonly Member[] {
    return this.#view?.members ?? [];
  }

  get isCoordinator(): boolean {
    return this.#view !== null && this.#view.id.coordinator === this.#key && this.#phase === "joined";
  }

  /**
   * Listens on the mesh port, then joins: finds the coordinator through discovery and asks to be
   * admitted, or starts a singleton view after `joinTimeoutMs`. Resolves once a view is installed.
   */
  async start(): Promise<View> {
    if (this.#phase !== "idle") throw new ClusterError("CLOSED", "start() can be called once");
    this.#setPhase("joining");
    const server = createServer((socket) => this.#accept(socket));
    server.maxConnections = MAX_INBOUND_CONNECTIONS;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#o.bindPort, this.#o.bindAddr, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => this.#log.error({ err: err.message }, "mesh server error"));
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : this.#o.bindPort;
    this.#local = { ...this.#local, port };
    this.#log.info(
      { bind: `${this.#o.bindAddr}:${port}`, advertise: this.#o.advertiseAddr },
      "mesh listening",
    );
    this.#tickTimer = setInterval(() => this.#tick(), this.#o.heartbeatIntervalMs);
    await this.#join();
    if (this.#isClosed() || !this.#view) throw new ClusterError("CLOSED", "closed while joining");
    this.#discoveryTimer = setInterval(() => void this.#discoveryRound(), this.#o.discoveryIntervalMs);
    return this.#view;
  }

  /**
   * Sends `payload` to one member (`to` = its memberKey) or to every member (`to` = null; to
   * this member too only with `multicastToSelf`). Per-sender FIFO. Returns false when a peer's
   * buffer is over `highWaterMark` (the message is still queued: wait for 'drain'). Throws a
   * ClusterError when the message cannot be accepted (not joined, unknown member, too large,
   * buffer far over the mark); never drops a message silently.
   */
  send(to: string | null, payload: Uint8Array): boolean {
    if (this.#phase === "closed" || this.#phase === "leaving")
      throw new ClusterError("CLOSED", "cluster is closed");
    const view = this.#view;
    if (!view) throw new ClusterError("NOT_JOINED", "no view installed yet: await start() first");
    if (payload.length + DATA_OVERHEAD - 4 > this.#o.maxFrame) {
      throw new ClusterError(
        "TOO_LARGE",
        `payload of ${payload.length} bytes exceeds maxFrame ${this.#o.maxFrame}`,
      );
    }
    let targets: Member[];
    let toSelf = false;
    if (to === null) {
      targets = view.members.filter((m) => memberKey(m) !== this.#key);
      toSelf = this.#o.multicastToSelf;
    } else if (to === this.#key) {
      targets = [];
      toSelf = true;
    } else {
      const m = view.members.find((x) => memberKey(x) === to);
      if (!m) throw new ClusterError("NOT_A_MEMBER", `${to} is not a member of view ${view.id.seq}`);
      targets = [m];
    }
    const links = targets.map((m) => this.#link(m));
    const hard = this.#o.highWaterMark * HARD_LIMIT_FACTOR;
    for (const l of links) {
      if (this.#buffered(l) > hard) {
        throw new ClusterError(
          "BUFFER_FULL",
          `buffer towards ${l.key} is over ${hard} bytes: wait for 'drain'`,
        );
      }
    }
    const frame = encodeData(payload);
    let ok = true;
    for (const l of links) {
      this.#write(l, frame);
      if (this.#buffered(l) > this.#o.highWaterMark) {
        this.#congested.add(l.key);
        ok = false;
      }
    }
    this.#stats.messagesSent++;
    if (toSelf) {
      const from = this.#local;
      queueMicrotask(() => this.#deliver(from, payload));
    }
    return ok;
  }

  /**
   * Leaves gracefully and closes: a coordinator hands over by sending every member the view
   * without itself (members[1] becomes coordinator); any other member tells everyone it leaves
   * and the coordinator installs the view without it. No timeout is involved on the others.
   */
  async leave(): Promise<void> {
    if (this.#phase === "closed" || this.#phase === "leaving") return;
    const view = this.#view;
    const wasJoined = this.#phase === "joined";
    this.#setPhase("leaving");
    if (view && wasJoined) {
      if (view.id.coordinator === this.#key) {
        const next = viewWithout(view, new Set([this.#key]));
        if (next) {
          this.#log.info(
            { next: next.id.coordinator, seq: next.id.seq },
            "coordinator leaving: handing over",
          );
          const frame = encodeFrame({ type: "view", view: next });
          for (const m of next.members) this.#write(this.#link(m), frame);
        }
      } else {
        const frame = encodeFrame({ type: "leave" });
        for (const m of view.members) if (memberKey(m) !== this.#key) this.#write(this.#link(m), frame);
      }
      // Links still dialing get a bounded moment to open and flush the frames above.
      await this.#waitFor(() => [...this.#links.values()].every((l) => !l.dialing), 1000);
    }
    await this.#shutdown(true);
  }

  /** Closes every socket and timer at once (peers detect the loss). Idempotent. */
  async close(): Promise<void> {
    if (this.#phase === "closed") return;
    await this.#shutdown(false);
  }

  stats(): ClusterStats {
    let inbound = 0;
    let outbound = 0;
    let bytesIn = this.#stats.bytesIn;
    let bytesOut = this.#stats.bytesOut;
    for (const c of this.#conns) {
      if (c.status === "closed") continue;
      if (c.outbound) outbound++;
      else inbound++;
      bytesIn += c.bytesIn;
      bytesOut += c.bytesOut;
    }
    let buffered = 0;
    for (const l of this.#links.values()) buffered += this.#buffered(l);
    return {
      member: this.#key,
      joined: this.#view !== null,
      isCoordinator: this.isCoordinator,
      viewSeq: this.#view?.id.seq ?? 0,
      members: this.#view?.members.length ?? 0,
      suspects: this.#suspects.size,
      inboundConnections: inbound,
      outboundConnections: outbound,
      viewsInstalled: this.#stats.viewsInstalled,
      messagesSent: this.#stats.messagesSent,
      messagesReceived: this.#stats.messagesReceived,
      bytesIn,
      bytesOut,
      badFrames: this.#stats.badFrames,
      messagesLostToFailedPeers: this.#stats.messagesLostToFailedPeers,
      bytesLostWithConnections: this.#stats.bytesLostWithConnections,
      bufferedBytes: buffered,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Join

  async #join(): Promise<void> {
    const deadline = Date.now() + this.#o.joinTimeoutMs;
    const pause = Math.max(20, Math.min(250, Math.floor(this.#o.joinTimeoutMs / 10)));
    while (this.#phase === "joining" && !this.#view) {
      const found = await this.#probeAll();
      if (this.#phase !== "joining" || this.#view) return;
      const coordinators = found.filter((p) => p.view !== null).map((p) => p.view!.members[0]!);
      if (coordinators.length > 0) {
        // Several views (a partition not merged yet): ask the one that would win a merge.
        const target = coordinators.sort(compareMembers)[0]!;
        await this.#askToJoin(
          target,
          Math.max(pause, Math.min(deadline - Date.now(), this.#o.suspectTimeoutMs)),
        );
        if (this.#view || this.#phase !== "joining") return;
      } else if (found.length > 0 && found.every((p) => compareMembers(this.#local, p.member) < 0)) {
        // Peers are up but nobody coordinates yet: the first in the order starts the view, the
        // others find it on their next round. This is what makes concurrent starts converge.
        this.#log.info({ peers: found.length }, "no coordinator yet and first in order: starting the view");
        this.#installSingleton(1);
        return;
      }
      if (Date.now() >= deadline) {
        this.#log.info(
          { joinTimeoutMs: this.#o.joinTimeoutMs },
          "no coordinator answered: starting a singleton view",
        );
        this.#installSingleton(1);
        return;
      }
      await this.#sleep(pause);
    }
  }

  async #askToJoin(coordinator: Member, timeoutMs: number): Promise<void> {
    this.#log.debug({ coordinator: memberKey(coordinator) }, "asking to join");
    const link = this.#link(coordinator);
    this.#write(link, encodeFrame({ type: "join-req" }));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        if (this.#joinWake === done) this.#joinWake = null;
        resolve();
      };
      this.#joinWake = done;
    });
  }

  #installSingleton(seq: number): void {
    if (this.#phase === "joining") this.#setPhase("joined");
    this.#install(makeView(seq, [this.#local]));
  }

  // -------------------------------------------------------------------------------------------
  // Discovery probes and merge

  /** Asks every discovered address (except this member) which member it is and its view. */
  async #probeAll(): Promise<ProbeResult[]> {
    let addrs: DiscoveredAddress[];
    try {
      addrs = await this.#bounded(this.#o.discovery.find(), Math.max(1000, this.#o.discoveryIntervalMs));
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, "discovery failed");
      return [];
    }
    const seen = new Set<string>();
    const unique = addrs.filter((a) => {
      const k = `${a.host}:${a.port}`;
      if (seen.has(k) || (a.host === this.#local.host && a.port === this.#local.port)) return false;
      seen.add(k);
      return true;
    });
    const results = await Promise.all(unique.map((a) => this.#probe(a)));
    const byKey = new Map<string, ProbeResult>();
    for (const r of results) if (r) byKey.set(memberKey(r.member), r);
    return [...byKey.values()];
  }

  async #probe(addr: DiscoveredAddress): Promise<ProbeResult | null> {
    if (this.#phase === "closed") return null;
    // Reuse an open link to whoever is known to be at this address.
    let conn: MeshConnection | null = null;
    let own = false;
    for (const l of this.#links.values()) {
      if (l.member.host === addr.host && l.member.port === addr.port && l.conn?.status === "open")
        conn = l.conn;
    }
    if (!conn) {
      conn = await this.#dial(addr.host, addr.port);
      if (!conn) return null;
      const peer = conn.peer!;
      const link = this.#links.get(memberKey(peer));
      if (!link) {
        this.#adopt(conn, peer);
      } else if (link.conn?.status === "open" || link.dialing) {
        own = true;
      } else {
        this.#attach(link, conn);
      }
    }
    const c = conn;
    const view = await new Promise<View | null | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), Math.min(1000, this.#o.suspectTimeoutMs));
      const waiters = this.#infoWaiters.get(c) ?? [];
      waiters.push((v) => {
        clearTimeout(timer);
        resolve(v);
      });
      this.#infoWaiters.set(c, waiters);
      c.write(encodeFrame({ type: "info-req" }));
    });
    if (own) c.close("probe done", true);
    if (view === undefined) return null;
    return { member: c.peer!, view };
  }

  async #discoveryRound(): Promise<void> {
    if (this.#discovering || this.#phase !== "joined") return;
    this.#discovering = true;
    try {
      const found = await this.#probeAll();
      const mine = this.#view;
      if (!mine || !this.isCoordinator) return;
      const asked = new Set<string>();
      for (const p of found) {
        const other = p.view;
        if (!other || other.id.coordinator === this.#key) continue;
        if (viewHas(mine, other.id.coordinator) || viewHas(mine, memberKey(p.member))) continue;
        if (asked.has(other.id.coordinator)) continue;
        asked.add(other.id.coordinator);
        this.#log.info(
          { other: other.id.coordinator, otherSeq: other.id.seq, otherSize: other.members.length },
          "found another view of this cluster: merging",
        );
        this.#write(this.#link(other.members[0]!), encodeFrame({ type: "merge-req", view: mine }));
      }
    } finally {
      this.#discovering = false;
    }
  }

  /**
   * A coordinator received another coordinator's view. The view whose coordinator sorts first
   * absorbs the other (mergeViews); a losing receiver answers with its own view so the winner
   * merges, whichever side discovered the other first.
   */
  #onMergeRequest(other: View): void {
    const mine = this.#view;
    if (!mine || !this.isCoordinator) return;
    if (other.id.coordinator === this.#key || viewHas(mine, other.id.coordinator)) return;
    if (compareForMerge(mine, other) < 0) {
      const merged = mergeViews(mine, other);
      this.#log.info(
        { seq: merged.id.seq, size: merged.members.length, absorbed: other.id.coordinator },
        "merging views",
      );
      this.#broadcast(merged);
    } else {
      this.#write(this.#link(other.members[0]!), encodeFrame({ type: "merge-req", view: mine }));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Views

  /** Sends a view to its members and installs it here. */
  #broadcast(view: View): void {
    const frame = encodeFrame({ type: "view", view });
    for (const m of view.members) if (memberKey(m) !== this.#key) this.#write(this.#link(m), frame);
    this.#install(view);
  }

  #onView(view: View, from: Member): void {
    if (this.#phase === "leaving" || this.#phase === "closed") return;
    if (!supersedes(view, this.#view)) {
      this.#log.debug({ seq: view.id.seq, from: memberKey(from) }, "ignoring an older view");
      return;
    }
    if (!viewHas(view, this.#key)) {
      if (this.#phase !== "joined") return;
      // Excluded (e.g. falsely suspected): carry on alone; discovery merges the views again.
      this.#log.warn(
        { seq: view.id.seq, from: memberKey(from) },
        "excluded from the view: starting a singleton",
      );
      this.#install(makeView(view.id.seq + 1, [this.#local]));
      return;
    }
    if (this.#phase === "joining") this.#setPhase("joined");
    this.#install(view);
  }

  #install(view: View): void {
    const previous = this.#view;
    this.#view = view;
    this.#stats.viewsInstalled++;
    const now = Date.now();
    for (const m of view.members) {
      const k = memberKey(m);
      if (!this.#lastHeard.has(k) || !(previous && viewHas(previous, k))) this.#lastHeard.set(k, now);
    }
    for (const k of [...this.#suspects]) if (!viewHas(view, k)) this.#suspects.delete(k);
    for (const k of [...this.#lastHeard.keys()]) if (!viewHas(view, k)) this.#lastHeard.delete(k);
    this.#log.info(
      { seq: view.id.seq, coordinator: view.id.coordinator, members: view.members.map((m) => m.name) },
      "view installed",
    );
    this.emit("view", view);
    if (!previous || previous.id.coordinator !== view.id.coordinator) {
      const prev = previous?.members[0] ?? null;
      this.emit("coordinator-changed", {
        coordinator: view.members[0]!,
        previous: prev,
        isCoordinator: view.id.coordinator === this.#key,
      });
    }
    this.#joinWake?.();
    // Suspicions that outlived the change (e.g. coordinator and next member both gone).
    this.#reconsider();
  }

  #onJoinRequest(joiner: Member, conn: MeshConnection): void {
    const view = this.#view;
    if (!view || !this.isCoordinator) {
      conn.write(encodeFrame({ type: "join-reject", reason: "not the coordinator" }));
      return;
    }
    const next = viewWithJoiner(view, joiner);
    if (next === view) {
      this.#write(this.#link(joiner), encodeFrame({ type: "view", view }));
      return;
    }
    this.#log.info({ joiner: describeMember(joiner), seq: next.id.seq }, "admitting a member");
    this.#suspects.delete(memberKey(joiner));
    this.#broadcast(next);
  }

  #onLeave(key: string): void {
    const view = this.#view;
    if (!view || !viewHas(view, key)) return;
    this.#log.info({ leaver: key }, "member leaves");
    this.#suspects.add(key);
    this.#reconsider();
  }

  // -------------------------------------------------------------------------------------------
  // Failure detection

  #suspect(key: string, reason: string): void {
    const view = this.#view;
    if (!view || key === this.#key || !viewHas(view, key) || this.#suspects.has(key)) return;
    if (this.#phase !== "joined") return;
    this.#log.warn({ suspect: key, reason }, "member suspected");
    this.#suspects.add(key);
    this.#reconsider();
  }

  /**
   * The oldest member that is not suspected installs the view without the suspects: the
   * coordinator itself, or the next member when the coordinator is among them.
   */
  #reconsider(): void {
    const view = this.#view;
    if (!view || this.#phase !== "joined" || this.#suspects.size === 0) return;
    const alive = view.members.filter((m) => !this.#suspects.has(memberKey(m)));
    if (alive.length === view.members.length || memberKey(alive[0]!) !== this.#key) return;
    const next = viewWithout(view, this.#suspects);
    if (next) this.#broadcast(next);
  }

  #heard(key: string): void {
    if (this.#lastHeard.has(key)) this.#lastHeard.set(key, Date.now());
  }

  /** Every heartbeat interval: one step each, on the view as it was when the tick began. */
  #tick(): void {
    if (this.#phase === "closed" || this.#phase === "leaving") return;
    this.#recheckAdmission();
    const now = Date.now();
    const view = this.#view;
    if (view && this.#phase === "joined") {
      this.#sendHeartbeats(view);
      this.#suspectSilent(view, now);
    }
    this.#dropIdleLinks(view, now);
  }

  /** The admission rule may have changed (e.g. a certificate revoked): close what it refuses now. */
  #recheckAdmission(): void {
    for (const c of this.#conns) {
      if (c.peer && c.status === "open" && !this.#o.admit(c.peer)) c.close("peer no longer admitted");
    }
  }

  /** A HEARTBEAT on every idle open link to a member (a busy link proves life by itself). */
  #sendHeartbeats(view: View): void {
    const hb = encodeFrame({ type: "heartbeat" });
    for (const m of view.members) {
      if (memberKey(m) === this.#key) continue;
      const link = this.#link(m);
      if (link.conn?.status === "open" && link.conn.bufferedBytes === 0) link.conn.write(hb);
    }
  }

  /** Suspects the members nothing was heard from for suspectTimeoutMs. */
  #suspectSilent(view: View, now: number): void {
    for (const m of view.members) {
      const k = memberKey(m);
      if (k === this.#key) continue;
      const last = this.#lastHeard.get(k) ?? now;
      if (now - last > this.#o.suspectTimeoutMs) this.#suspect(k, `nothing heard for ${now - last} ms`);
    }
  }

  /** Closes links to non-members that were not used for suspectTimeoutMs. */
  #dropIdleLinks(view: View | null, now: number): void {
    for (const l of [...this.#links.values()]) {
      const member = view !== null && viewHas(view, l.key);
      if (!member && !l.dialing && now - l.lastUsed > this.#o.suspectTimeoutMs) {
        this.#links.delete(l.key);
        l.conn?.close("idle link to a non-member", true);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Links (what this member sends on)

  #link(m: Member): Link {
    const key = memberKey(m);
    let l = this.#links.get(key);
    if (!l) {
      l = { key, member: m, conn: null, dialing: false, queue: [], queuedBytes: 0, lastUsed: Date.now() };
      this.#links.set(key, l);
    }
    if (!l.conn && !l.dialing && this.#phase !== "closed") void this.#dialLink(l);
    return l;
  }

  async #dialLink(l: Link): Promise<void> {
    l.dialing = true;
    const conn = await this.#dial(l.member.host, l.member.port);
    l.dialing = false;
    if (this.#links.get(l.key) !== l || this.#phase === "closed") {
      conn?.close("link no longer needed");
      return;
    }
    if (!conn || memberKey(conn.peer!) !== l.key) {
      conn?.close(`expected ${l.key} at ${l.member.host}:${l.member.port}`);
      this.#linkFailed(l, conn ? "another member answers at its address" : "cannot connect");
      return;
    }
    this.#attach(l, conn);
  }

  /** A probe connection to a member without a link becomes its link. */
  #adopt(conn: MeshConnection, peer: Member): void {
    const key = memberKey(peer);
    const l: Link = {
      key,
      member: peer,
      conn: null,
      dialing: false,
      queue: [],
      queuedBytes: 0,
      lastUsed: Date.now(),
    };
    this.#links.set(key, l);
    this.#attach(l, conn);
  }

  #attach(l: Link, conn: MeshConnection): void {
    l.conn = conn;
    const queued = l.queue;
    l.queue = [];
    l.queuedBytes = 0;
    for (const f of queued) conn.write(f);
    this.#checkDrain(l);
  }

  #write(l: Link, frame: Buffer): void {
    l.lastUsed = Date.now();
    if (l.conn?.status === "open") {
      l.conn.write(frame);
    } else {
      l.queue.push(frame);
      l.queuedBytes += frame.length;
      if (!l.conn && !l.dialing && this.#phase !== "closed") void this.#dialLink(l);
    }
  }

  #buffered(l: Link): number {
    return l.queuedBytes + (l.conn?.status === "open" ? l.conn.bufferedBytes : 0);
  }

  #linkFailed(l: Link, reason: string): void {
    if (this.#links.get(l.key) === l) this.#links.delete(l.key);
    const lost = l.queue.filter((f) => f[DATA_OVERHEAD - 1] === FrameType.Data).length;
    if (lost > 0) {
      this.#stats.messagesLostToFailedPeers += lost;
      this.#log.warn({ peer: l.key, lost, reason }, "messages to an unreachable member not sent");
    }
    l.queue = [];
    l.queuedBytes = 0;
    this.#congested.delete(l.key);
    this.#maybeEmitDrain();
    this.#suspect(l.key, reason);
  }

  #checkDrain(l: Link): void {
    if (this.#congested.has(l.key) && this.#buffered(l) <= this.#o.highWaterMark) {
      this.#congested.delete(l.key);
      this.#maybeEmitDrain();
    }
  }

  #drainPending = false;
  #maybeEmitDrain(): void {
    if (this.#congested.size > 0 || this.#drainPending) return;
    this.#drainPending = true;
    queueMicrotask(() => {
      this.#drainPending = false;
      if (this.#congested.size === 0 && this.#phase !== "closed") this.emit("drain");
    });
  }

  // -------------------------------------------------------------------------------------------
  // Connections

  #handlers = {
    frame: (c: MeshConnection, f: ClusterFrame) => this.#onFrame(c, f),
    closed: (c: MeshConnection, reason: string) => this.#onClosed(c, reason),
    drain: (c: MeshConnection) => {
      const l = c.peer ? this.#links.get(memberKey(c.peer)) : undefined;
      if (l && l.conn === c) this.#checkDrain(l);
    },
  };

  #accept(socket: Socket): void {
    if (this.#phase === "closed") {
      socket.destroy();
      return;
    }
    const conn = new MeshConnection(socket, false, this.#o.maxFrame, this.#handlers, this.#log);
    this.#conns.add(conn);
    // A peer that never completes its handshake does not keep the socket.
    const timer = setTimeout(() => conn.close("no HELLO in time"), this.#handshakeTimeout());
    this.#handshakes.set(conn, () => {
      clearTimeout(timer);
      this.#handshakes.delete(conn);
    });
  }

  #handshakeTimeout(): number {
    return Math.max(200, Math.min(2000, this.#o.suspectTimeoutMs));
  }

  /** Opens a connection and completes the handshake; null when refused, failed or timed out. */
  #dial(host: string, port: number): Promise<MeshConnection | null> {
    if (this.#phase === "closed") return Promise.resolve(null);
    return new Promise((resolve) => {
      const socket = connect({ host, port });
      const conn = new MeshConnection(socket, true, this.#o.maxFrame, this.#handlers, this.#log);
      this.#conns.add(conn);
      const timer = setTimeout(() => conn.close("handshake timed out"), this.#handshakeTimeout());
      this.#handshakes.set(conn, (ok) => {
        clearTimeout(timer);
        this.#handshakes.delete(conn);
        resolve(ok ? conn : null);
      });
      socket.once("connect", () => {
        conn.write(
          encodeFrame({
            type: "hello",
            version: CLUSTER_PROTOCOL_VERSION,
            cluster: this.#o.cluster,
            member: this.#local,
          }),
        );
      });
    });
  }

  #refuse(conn: MeshConnection, reason: string): void {
    // Probing its own address (listed by discovery) is routine; anything else deserves a warning.
    const level = reason === "connected to itself" ? "debug" : "warn";
    this.#log[level]({ remote: conn.remote, reason }, "refusing a mesh connection");
    conn.write(encodeFrame({ type: "reject", reason }));
    conn.close(`refused: ${reason}`, true);
  }

  #onFrame(conn: MeshConnection, f: ClusterFrame): void {
    if (conn.status === "handshaking") {
      this.#onHandshakeFrame(conn, f);
      return;
    }
    const peer = conn.peer!;
    const key = memberKey(peer);
    this.#heard(key);
    if (this.#suspects.has(key) && this.#phase === "joined" && !this.isCoordinator)
      this.#suspects.delete(key);
    switch (f.type) {
      case "heartbeat":
        return;
      case "data":
        this.#deliver(peer, f.payload);
        return;
      case "info-req":
        conn.write(encodeFrame({ type: "info", view: this.#phase === "joined" ? this.#view : null }));
        return;
      case "info": {
        const waiters = this.#infoWaiters.get(conn);
        const w = waiters?.shift();
        if (waiters && waiters.length === 0) this.#infoWaiters.delete(conn);
        w?.(f.view);
        return;
      }
      case "join-req":
        this.#onJoinRequest(peer, conn);
        return;
      case "join-reject":
        this.#log.debug({ from: key, reason: f.reason }, "join refused");
        this.#joinWake?.();
        return;
      case "view":
        this.#onView(f.view, peer);
        return;
      case "leave":
        this.#onLeave(key);
        return;
      case "merge-req":
        this.#onMergeRequest(f.view);
        return;
      default:
        this.#stats.badFrames++;
        conn.close(`unexpected ${f.type} after the handshake`);
    }
  }

  /** Why a HELLO is refused, or null when it is accepted. */
  #refusal(f: Extract<ClusterFrame, { type: "hello" }>): string | null {
    if (f.version !== CLUSTER_PROTOCOL_VERSION) return `protocol version ${f.version}`;
    if (f.cluster !== this.#o.cluster) return `cluster "${f.cluster}" is not "${this.#o.cluster}"`;
    if (memberKey(f.member) === this.#key) return "connected to itself";
    if (f.member.site !== this.#o.site) return `site "${f.member.site}" is not "${this.#o.site}"`;
    if (!this.#o.admit(f.member) || this.#phase === "closed") return "not admitted";
    return null;
  }

  #onHandshakeFrame(conn: MeshConnection, f: ClusterFrame): void {
    if (!conn.outbound) {
      if (f.type !== "hello") {
        this.#stats.badFrames++;
        conn.close(`expected HELLO, got ${f.type}`);
        return;
      }
      const refusal = this.#refusal(f);
      if (refusal) {
        this.#refuse(conn, refusal);
        return;
      }
      conn.write(encodeFrame({ type: "hello-ack", member: this.#local }));
      conn.open(f.member);
      this.#handshakes.get(conn)?.(true);
      this.#heard(memberKey(f.member));
      return;
    }
    const done = this.#handshakes.get(conn);
    if (f.type === "hello-ack") {
      const k = memberKey(f.member);
      if (k === this.#key || !this.#o.admit(f.member) || f.member.site !== this.#o.site) {
        conn.close(k === this.#key ? "connected to itself" : "peer not admitted", true);
        done?.(false);
        return;
      }
      conn.open(f.member);
      this.#heard(k);
      done?.(true);
      return;
    }
    if (f.type === "reject") {
      this.#log.debug({ remote: conn.remote, reason: f.reason }, "peer refused the connection");
    } else {
      this.#stats.badFrames++;
    }
    conn.close(f.type === "reject" ? `refused by peer: ${f.reason}` : `expected HELLO_ACK, got ${f.type}`);
    done?.(false);
  }

  #onClosed(conn: MeshConnection, reason: string): void {
    this.#conns.delete(conn);
    this.#stats.bytesIn += conn.bytesIn;
    this.#stats.bytesOut += conn.bytesOut;
    if (reason.startsWith("bad frame")) this.#stats.badFrames++;
    this.#handshakes.get(conn)?.(false);
    const waiters = this.#infoWaiters.get(conn);
    this.#infoWaiters.delete(conn);
    for (const w of waiters ?? []) w(null);
    if (this.#phase === "closed") return;
    this.#log.debug(
      { remote: conn.remote, peer: conn.peer ? memberKey(conn.peer) : null, reason },
      "connection closed",
    );
    if (!conn.outbound || !conn.peer) return;
    const l = this.#links.get(memberKey(conn.peer));
    if (!l || l.conn !== conn) return;
    l.conn = null;
    if (conn.unsentBytes > 0) {
      // Written to this member but never handed to the kernel: lost with the connection.
      this.#stats.bytesLostWithConnections += conn.unsentBytes;
      this.#log.warn({ peer: l.key, bytes: conn.unsentBytes, reason }, "connection lost with unsent data");
    }
    // One immediate re-dial: a dead member refuses it (suspected at once), a live one is back.
    if (this.#phase === "joined" && this.#view && viewHas(this.#view, l.key)) void this.#dialLink(l);
    else if (l.queue.length === 0) this.#links.delete(l.key);
  }

  #deliver(from: Member, payload: Uint8Array): void {
    if (this.#phase === "closed") return;
    this.#stats.messagesReceived++;
    this.emit("message", { from, payload });
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown and small helpers

  async #shutdown(graceful: boolean): Promise<void> {
    this.#setPhase("closed");
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    if (this.#discoveryTimer) clearInterval(this.#discoveryTimer);
    this.#tickTimer = null;
    this.#discoveryTimer = null;
    for (const s of this.#sleepers) {
      clearTimeout(s.timer);
      s.wake();
    }
    this.#sleepers.clear();
    this.#joinWake?.();
    for (const c of [...this.#conns]) c.close(graceful ? "leaving" : "closing", graceful);
    this.#conns.clear();
    this.#links.clear();
    this.#congested.clear();
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#log.info({ graceful }, "cluster member closed");
  }

  /** The one place the phase changes; every transition is logged. */
  #setPhase(next: Phase): void {
    if (next === this.#phase) return;
    this.#log.debug({ from: this.#phase, to: next }, `phase ${this.#phase} -> ${next}`);
    this.#phase = next;
  }

  /** Reads the phase through a call so TypeScript does not narrow it across awaits and callbacks. */
  #isClosed(): boolean {
    return this.#phase === "closed";
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = {
        timer: setTimeout(() => {
          this.#sleepers.delete(s);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.#sleepers.add(s);
    });
  }

  /** `p`, or a rejection after `ms` (a discovery that hangs must not stall joining). */
  #bounded<T>(p: Promise<T>, ms: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  /** Polls `cond` every 10 ms for at most `ms`. */
  async #waitFor(cond: () => boolean, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!cond() && Date.now() < until && this.#phase !== "closed") await this.#sleep(10);
  }
}
