// The members of one site form a cluster over a TCP mesh: discovery, join, views ordered by age
// (members[0] = coordinator), failure detection (connection loss + heartbeats), graceful leave,
// merge after a partition, and per-sender FIFO messaging. See docs/CLUSTER.md.
//
// Connections: each member sends only on the connection it opened to a peer (its "link"), and
// receives on the connections peers opened to it. So a pair uses at most one connection per
// direction, two members that dial each other at once never race over which connection to keep,
// and everything one member sends to another travels, in order, on a single TCP stream.
import { EventEmitter } from "node:events";
import { createServer, type Server } from "node:net";
import { everyAfterPoll } from "../after-poll.js";
import type { Logger } from "../observability/log.js";
import { RateLimitedWarning } from "./auth.js";
import { type ClusterFrame, DATA_OVERHEAD, encodeData, encodeFrame } from "./codec.js";
import type { MeshConnection } from "./connection.js";
import { ClusterCounters } from "./counters.js";
import { ClusterError } from "./errors.js";
import type { ClusterStats, LocalClusterEvents } from "./events.js";
import { Handshake } from "./handshake.js";
import { Joiner, type JoinOwner } from "./join.js";
import { LinkPool } from "./link-pool.js";
import { Liveness, TakeoverWatch } from "./liveness.js";
import { type Member, makeView, memberKey, type View, viewHas } from "./member.js";
import { type MergeOwner, Merger } from "./merge.js";
import { type LocalClusterOptions, type ResolvedClusterOptions, resolveClusterOptions } from "./options.js";
import { Prober } from "./probe.js";
import { Sleepers } from "./sleepers.js";
import { decideView, nextSeq, sendTargets, viewWithout } from "./view-rules.js";

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
  readonly #links: LinkPool;
  readonly #liveness: Liveness;
  readonly #takeover: TakeoverWatch;
  readonly #handshake: Handshake;
  readonly #probes: Prober;
  readonly #sleepers = new Sleepers();
  readonly #join: Joiner;
  readonly #merge: Merger;
  #tickTimer: NodeJS.Timeout | null = null;
  #discoveryTimer: NodeJS.Timeout | null = null;
  readonly #stats = new ClusterCounters();
  /** Warnings a peer can trigger at will (refused views). */
  readonly #viewWarning: RateLimitedWarning;

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
    this.#viewWarning = new RateLimitedWarning(this.#log);
    this.#liveness = new Liveness(this.#o.suspectTimeoutMs);
    this.#takeover = new TakeoverWatch(this.#o.suspectTimeoutMs);
    this.#handshake = new Handshake(
      {
        local: () => this.#local,
        isClosed: () => this.#phase === "closed",
        track: (conn) => this.#stats.conns.add(conn),
        badFrame: () => this.#stats.badFrames++,
        failed: (kind) => {
          if (kind === "auth") this.#stats.authFailures++;
          else this.#stats.refusedHandshakes++;
        },
      },
      this.#o,
      this.#handlers,
      this.#log,
    );
    this.#links = new LinkPool(
      {
        dial: (host, port) => this.#handshake.dial(host, port),
        isClosed: () => this.#phase === "closed",
        failed: (key, reason) => this.#suspect(key, reason),
        drained: () => this.emit("drain"),
      },
      this.#o.highWaterMark,
      this.#log,
    );
    this.#probes = new Prober(
      {
        local: () => this.#local,
        isClosed: () => this.#phase === "closed",
        dial: (host, port) => this.#handshake.dial(host, port),
      },
      this.#links,
      this.#o,
      this.#log,
    );
    const views: JoinOwner & MergeOwner = {
      key: this.#key,
      local: () => this.#local,
      coordinated: () => (this.isCoordinator ? this.#view : null),
      broadcast: (view) => this.#broadcast(view),
      stillJoining: () => this.#phase === "joining" && !this.#view,
      startAlone: () => this.#installSingleton(1),
      admitted: (key) => this.#liveness.clear(key),
      joined: () => this.#phase === "joined",
      stray: (key) => this.#suspect(key, "it follows another coordinator"),
    };
    const deps = { links: this.#links, probes: this.#probes, sleepers: this.#sleepers };
    this.#join = new Joiner(views, deps, this.#o, this.#log);
    this.#merge = new Merger(views, this.#links, this.#probes, this.#log);
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
    const server = createServer((socket) => this.#handshake.accept(socket));
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
    const auth = this.#handshake.authenticated;
    this.#log.info(
      { bind: `${this.#o.bindAddr}:${port}`, advertise: this.#o.advertiseAddr, authenticated: auth },
      "mesh listening",
    );
    if (!auth) {
      // A warning when the port is reachable from the network; on loopback (relay local, tests)
      // it is the expected setup, and `relay chat` prints warnings on the user's terminal.
      const loopback = this.#o.bindAddr.startsWith("127.") || this.#o.bindAddr === "::1";
      this.#log[loopback ? "info" : "warn"](
        { bind: this.#o.bindAddr },
        "mesh port unauthenticated (no cluster secret): anyone who can connect to it can join the site",
      );
    }
    // The tick judges silence after the loop has polled the sockets: after a stall of this process
    // it would suspect members whose frames wait unread (test/cluster/stall.test.ts).
    this.#tickTimer = everyAfterPoll(() => this.#tick(), this.#o.heartbeatIntervalMs);
    await this.#join.run();
    if (this.#isClosed() || !this.#view) throw new ClusterError("CLOSED", "closed while joining");
    this.#discoveryTimer = setInterval(() => {
      this.#merge.discoveryRound().catch((err: unknown) => this.#internalError("discovery round", err));
    }, this.#o.discoveryIntervalMs);
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
    const { targets, toSelf } = sendTargets(view, to, this.#key, this.#o.multicastToSelf);
    const links = targets.map((m) => this.#links.link(m));
    const hard = this.#o.highWaterMark * HARD_LIMIT_FACTOR;
    for (const l of links) {
      if (this.#links.buffered(l) > hard) {
        throw new ClusterError(
          "BUFFER_FULL",
          `buffer towards ${l.key} is over ${hard} bytes: wait for 'drain'`,
        );
      }
    }
    const frame = encodeData(payload);
    let ok = true;
    for (const l of links) if (!this.#links.send(l, frame)) ok = false;
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
          this.#links.writeEach(next.members, frame);
        }
      } else {
        const frame = encodeFrame({ type: "leave" });
        this.#links.writeEach(view.members, frame, this.#key);
      }
      // Links still dialing get a bounded moment to open and flush the frames above.
      await this.#sleepers.waitFor(
        () => [...this.#links.values()].every((l) => !l.dialing),
        1000,
        () => this.#isClosed(),
      );
    }
    await this.#shutdown(true);
  }

  /** Closes every socket and timer at once (peers detect the loss). Idempotent. */
  async close(): Promise<void> {
    if (this.#phase === "closed") return;
    await this.#shutdown(false);
  }

  stats(): ClusterStats {
    const { inbound, outbound, bytesIn, bytesOut } = this.#stats.traffic();
    return {
      member: this.#key,
      joined: this.#view !== null,
      isCoordinator: this.isCoordinator,
      viewSeq: this.#view?.id.seq ?? 0,
      members: this.#view?.members.length ?? 0,
      suspects: this.#liveness.suspects.size,
      inboundConnections: inbound,
      outboundConnections: outbound,
      viewsInstalled: this.#stats.viewsInstalled,
      messagesSent: this.#stats.messagesSent,
      messagesReceived: this.#stats.messagesReceived,
      bytesIn,
      bytesOut,
      badFrames: this.#stats.badFrames,
      authFailures: this.#stats.authFailures,
      refusedHandshakes: this.#stats.refusedHandshakes,
      viewsRefused: this.#stats.viewsRefused,
      internalErrors: this.#stats.internalErrors,
      messagesLostToFailedPeers: this.#links.messagesLost,
      bytesLostWithConnections: this.#stats.bytesLostWithConnections,
      bufferedBytes: this.#links.bufferedBytes(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Join (join.ts runs it; merge.ts the merge after a partition)

  #installSingleton(seq: number): void {
    if (this.#phase === "joining") this.#setPhase("joined");
    this.#install(makeView(seq, [this.#local]));
  }

  // -------------------------------------------------------------------------------------------
  // Views

  /** Sends a view to its members and installs it here. */
  #broadcast(view: View): void {
    const frame = encodeFrame({ type: "view", view });
    this.#links.writeEach(view.members, frame, this.#key);
    this.#install(view);
  }

  #onView(view: View, from: Member): void {
    if (this.#phase === "leaving" || this.#phase === "closed") return;
    const sender = memberKey(from);
    const fields = { seq: view.id.seq, from: sender, coordinator: view.id.coordinator };
    const joined = this.#phase === "joined";
    switch (decideView(this.#view, view, this.#key, joined, sender, this.#o.site)) {
      case "invalid":
        this.#stats.viewsRefused++;
        this.#viewWarning.warn(fields, "ignoring an invalid view (sequence, size or members)");
        return;
      case "not-from-coordinator":
        this.#stats.viewsRefused++;
        this.#viewWarning.warn(fields, "ignoring a view not sent by its coordinator");
        return;
      case "older":
        this.#log.debug(fields, "ignoring an older view");
        return;
      case "stale-coordinator":
        this.#log.warn(
          fields,
          "ignoring a view from a coordinator that is not ours (stale after a freeze or a split)",
        );
        return;
      case "not-for-us":
        return;
      case "excluded": {
        // Excluded (e.g. falsely suspected): carry on alone; discovery merges the views again.
        const seq = nextSeq(view.id.seq, this.#view?.id.seq ?? 0);
        if (seq === null) {
          this.#log.error(fields, "excluded from a view no view can follow (sequence exhausted): ignored");
          return;
        }
        this.#log.warn(fields, "excluded from the view: starting a singleton");
        this.#install(makeView(seq, [this.#local]));
        return;
      }
      case "install":
        if (this.#phase === "joining") this.#setPhase("joined");
        this.#install(view);
    }
  }

  #install(view: View): void {
    const previous = this.#view;
    this.#view = view;
    this.#stats.viewsInstalled++;
    this.#liveness.installed(view, previous);
    this.#takeover.reset();
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
    this.#join.wake();
    // Suspicions that outlived the change (e.g. coordinator and next member both gone).
    this.#reconsider();
  }

  #onLeave(key: string): void {
    const view = this.#view;
    if (!view || !viewHas(view, key)) return;
    this.#log.info({ leaver: key }, "member leaves");
    this.#liveness.suspect(key);
    this.#reconsider();
  }

  // -------------------------------------------------------------------------------------------
  // Failure detection

  #suspect(key: string, reason: string): void {
    const view = this.#view;
    if (!view || key === this.#key || !viewHas(view, key) || this.#liveness.isSuspected(key)) return;
    if (this.#phase !== "joined") return;
    this.#log.warn({ suspect: key, reason }, "member suspected");
    this.#liveness.suspect(key);
    this.#reconsider();
  }

  /**
   * The oldest member that is not suspected installs the view without the suspects: the
   * coordinator itself, or the next member when the coordinator is among them.
   */
  #reconsider(): void {
    const view = this.#view;
    const suspects = this.#liveness.suspects;
    if (!view || this.#phase !== "joined" || suspects.size === 0) return;
    const alive = view.members.filter((m) => !suspects.has(memberKey(m)));
    if (alive.length === view.members.length || memberKey(alive[0]!) !== this.#key) return;
    const next = viewWithout(view, suspects);
    if (next) this.#broadcast(next);
  }

  /** Every heartbeat interval: one step each, on the view as it was when the tick began. */
  #tick(): void {
    try {
      this.#tickOnce();
    } catch (err) {
      this.#internalError("heartbeat tick", err);
    }
  }

  #tickOnce(): void {
    if (this.#phase === "closed" || this.#phase === "leaving") return;
    this.#recheckAdmission();
    const now = Date.now();
    const view = this.#view;
    if (view && this.#phase === "joined") {
      this.#links.heartbeat(view.members, encodeFrame({ type: "heartbeat" }), this.#key);
      this.#suspectSilent(view);
      this.#awaitTakeover();
    }
    // Links to non-members that were not used for suspectTimeoutMs are closed.
    this.#links.dropIdle((key) => view !== null && viewHas(view, key), this.#o.suspectTimeoutMs, now);
  }

  /** The admission rule may have changed (e.g. a certificate revoked): close what it refuses now. */
  #recheckAdmission(): void {
    for (const c of this.#stats.conns) {
      if (c.peer && c.status === "open" && !this.#o.admit(c.peer)) c.close("peer no longer admitted");
    }
  }

  /** Suspects the members nothing was heard from for suspectTimeoutMs. */
  #suspectSilent(view: View): void {
    for (const m of view.members) {
      const k = memberKey(m);
      if (k === this.#key) continue;
      const silent = this.#liveness.overdue(k);
      if (silent !== null) this.#suspect(k, `nothing heard for ${silent} ms`);
    }
  }

  /**
   * While our coordinator is suspected, the oldest member not suspected should take over; one
   * that does not within suspectTimeoutMs is suspected too (TakeoverWatch), so a site whose
   * members disagree on the coordinator (a forged view in open mode) cannot wait forever.
   */
  #awaitTakeover(): void {
    const view = this.#view;
    const suspects = this.#liveness.suspects;
    let successor: string | null = null;
    if (view && suspects.has(view.id.coordinator)) {
      const first = view.members.find((m) => !suspects.has(memberKey(m)));
      const key = first ? memberKey(first) : null;
      if (key !== this.#key) successor = key;
    }
    const late = this.#takeover.overdue(successor);
    if (late === null) return;
    const ms = this.#o.suspectTimeoutMs;
    this.#suspect(late, `did not take over from the suspected coordinator within ${ms} ms`);
  }

  // -------------------------------------------------------------------------------------------
  // Connections

  #handlers = {
    frame: (c: MeshConnection, f: ClusterFrame) => this.#onFrame(c, f),
    closed: (c: MeshConnection, reason: string) => this.#onClosed(c, reason),
    drain: (c: MeshConnection) => {
      const l = c.peer ? this.#links.get(memberKey(c.peer)) : undefined;
      if (l && l.conn === c) this.#links.checkDrain(l);
    },
    internalError: (where: string, err: unknown) => this.#internalError(where, err),
  };

  #onFrame(conn: MeshConnection, f: ClusterFrame): void {
    if (conn.status === "handshaking") {
      this.#handshake.onFrame(conn, f);
      return;
    }
    const peer = conn.peer!;
    const key = memberKey(peer);
    // Signs of life are the frames a member sends to the members of its own view (heartbeats,
    // data, views...). Probe traffic is not: a coordinator of another view probes us every round,
    // and counting that kept a peer that left our view "alive" in it forever (its successor then
    // never took over: a split that never healed, found by test/cluster/fuzz.test.ts).
    if (f.type !== "info-req" && f.type !== "info") {
      this.#liveness.heard(key);
      if (this.#liveness.isSuspected(key) && this.#phase === "joined" && !this.isCoordinator)
        this.#liveness.clear(key);
    }
    switch (f.type) {
      case "heartbeat":
        return;
      case "data":
        this.#deliver(peer, f.payload);
        return;
      case "info-req":
        conn.write(encodeFrame({ type: "info", view: this.#phase === "joined" ? this.#view : null }));
        return;
      case "info":
        this.#probes.answered(conn, f.view);
        return;
      case "join-req":
        this.#join.onRequest(peer, conn);
        return;
      case "join-reject":
        this.#log.debug({ from: key, reason: f.reason }, "join refused");
        this.#join.wake();
        return;
      case "view":
        this.#onView(f.view, peer);
        return;
      case "leave":
        this.#onLeave(key);
        return;
      case "merge-req":
        this.#merge.onRequest(f.view);
        return;
      default:
        this.#stats.badFrames++;
        conn.close(`unexpected ${f.type} after the handshake`);
    }
  }

  #onClosed(conn: MeshConnection, reason: string): void {
    this.#stats.closed(conn, reason);
    this.#handshake.closed(conn);
    this.#probes.closed(conn);
    if (this.#phase === "closed") return;
    this.#log.debug(
      { remote: conn.remote, peer: conn.peer ? memberKey(conn.peer) : null, reason },
      "connection closed",
    );
    const view = this.#phase === "joined" ? this.#view : null;
    this.#stats.bytesLostWithConnections += this.#links.closed(
      conn,
      reason,
      (key) => view !== null && viewHas(view, key),
    );
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
    this.#sleepers.wakeAll();
    this.#join.wake();
    for (const c of [...this.#stats.conns]) c.close(graceful ? "leaving" : "closing", graceful);
    this.#stats.conns.clear();
    this.#links.clear();
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

  /** A bug, not an input: logged with its stack, never thrown out of a timer or socket handler. */
  #internalError(where: string, err: unknown): void {
    this.#stats.internalErrors++;
    this.#log.error(
      { where, err: (err as Error)?.stack ?? String(err) },
      "internal error in the cluster member",
    );
  }

  /** Reads the phase through a call so TypeScript does not narrow it across awaits and callbacks. */
  #isClosed(): boolean {
    return this.#phase === "closed";
  }
}
