// TunnelClient: a member's link to a set of GossipRouters, like JGroups TUNNEL. One connection per
// router, registered on all of them (so it receives whatever router a sender picks); each outgoing
// frame goes through exactly one registered router.
import { EventEmitter } from "node:events";
import type { RouterEndpoint } from "../../contract/initial-hosts.js";
import { createLogger, type Logger } from "../observability/log.js";
import { addressKey } from "../protocol/codec.js";
import { messageFrame } from "../protocol/frames.js";
import type { Address, GossipData, PingData } from "../protocol/types.js";
import { TlsReloader } from "../tls/watch.js";
import { type ConnectionOwner, RouterConnection } from "./connection.js";
import { TunnelError } from "./errors.js";
import { type ResolvedTunnelOptions, resolveTunnelOptions, type TunnelOptions } from "./options.js";
import { PendingQueue } from "./pending-queue.js";
import type { TunnelSnapshot, TunnelStatusEvent } from "./status.js";

/** A MESSAGE received from a router. */
export interface TunnelMessage {
  /** Our address for a unicast, null for a multicast to the group. */
  readonly dest: Address | null;
  readonly sender: Address | null;
  /** A copy owned by the listener. */
  readonly payload: Uint8Array;
  /** The router it came through. */
  readonly router: RouterEndpoint;
}

/** A router reported that a member's connection broke (its registrations are gone from that router). */
export interface TunnelSuspect {
  readonly addr: Address;
  readonly group: string | null;
  readonly router: RouterEndpoint;
}

export interface TunnelEvents {
  message: [TunnelMessage];
  /** Once per router that saw the member go: with two routers, expect two events for one crash. */
  suspect: [TunnelSuspect];
  status: [TunnelStatusEvent];
  /** send() returned false earlier and sending may resume. */
  drain: [];
}

const DEFAULT_GET_MEMBERS_TIMEOUT_MS = 5000;

export class TunnelClient extends EventEmitter<TunnelEvents> {
  readonly options: ResolvedTunnelOptions;
  readonly #log: Logger;
  readonly #conns: readonly RouterConnection[];
  readonly #pending: PendingQueue;
  readonly #localKey: string;
  /** The router sends go through; kept while it stays registered (see #route). */
  #current: RouterConnection | null = null;
  #needDrain = false;
  #started = false;
  #closing: Promise<void> | null = null;

  constructor(options: TunnelOptions) {
    super();
    this.options = resolveTunnelOptions(options);
    this.#localKey = addressKey(this.options.localAddr);
    this.#log =
      options.logger ??
      createLogger("tunnel", { group: this.options.group, member: this.options.logicalName ?? undefined });
    this.#pending = new PendingQueue(this.options.maxPendingBytes);
    const owner: ConnectionOwner = {
      up: (conn) => this.#onUp(conn),
      down: (conn) => this.#onDown(conn),
      drain: (conn) => {
        if (conn === this.#current) this.#maybeDrain();
      },
      message: (conn, data) => this.#onMessage(conn, data),
      suspect: (conn, data) => {
        if (data.addr !== null)
          this.emit("suspect", { addr: data.addr, group: data.group, router: conn.endpoint });
      },
      status: (event) => this.emit("status", event),
    };
    const t = this.options.tls;
    // One reloader for all the client's connections: the material is read and checked once per change.
    const material = t
      ? (t.reloader ?? new TlsReloader({ sources: t, intervalMs: 0, log: this.#log }))
      : null;
    this.#conns = this.options.routers.map(
      (r) => new RouterConnection(r, this.options, owner, this.#log, material),
    );
  }

  /** Opens a connection to every router (registration follows on each). Idempotent; returns this. */
  start(): this {
    if (this.#closing) throw new TunnelError("TUNNEL_CLOSED", "start() after close()");
    if (!this.#started) {
      this.#started = true;
      for (const c of this.#conns) c.start();
    }
    return this;
  }

  /**
   * Sends `payload` to `dest` (null = every member of the group) through one registered router.
   * Returns false when the caller should wait for 'drain' before sending more: the chosen socket is
   * over its high-water mark, or no router is registered and the frame was queued. The frame is
   * accepted in both cases. Throws TUNNEL_QUEUE_FULL when it cannot be accepted (no router and the
   * pending queue is full, or the caller kept sending past `false` until the socket holds
   * maxPendingBytes), TUNNEL_PAYLOAD_TOO_LARGE, or TUNNEL_CLOSED — never drops it silently.
   */
  send(dest: Address | null, payload: Uint8Array): boolean {
    if (this.#closing) throw new TunnelError("TUNNEL_CLOSED", "send() after close()");
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError("TunnelClient.send: payload must be a Uint8Array");
    }
    const frame = messageFrame(this.options.group, dest, this.options.localAddr, payload);
    if (frame.length - 4 > this.options.maxFrame) {
      throw new TunnelError(
        "TUNNEL_PAYLOAD_TOO_LARGE",
        `a ${payload.length}-byte payload makes a ${frame.length - 4}-byte frame, over maxFrame ${this.options.maxFrame}`,
      );
    }
    const conn = this.#route();
    if (conn !== null) {
      // A caller that ignores `false` must not grow the socket buffer without limit either.
      const buffered = conn.bufferedBytes;
      if (buffered > 0 && buffered + frame.length > this.options.maxPendingBytes) {
        throw new TunnelError(
          "TUNNEL_QUEUE_FULL",
          `router ${conn.endpoint.host}:${conn.endpoint.port} has ${buffered} bytes unsent; wait for 'drain' (maxPendingBytes ${this.options.maxPendingBytes})`,
        );
      }
      const ok = conn.write(frame);
      if (!ok) this.#needDrain = true;
      return ok;
    }
    this.#pending.push(frame);
    this.#needDrain = true;
    return false;
  }

  /**
   * Sends `payload` to `dest` through every registered router (the receiver gets one copy per
   * router: for callers that de-duplicate, e.g. retransmissions that must not depend on one router
   * path that may be silently broken). A router whose socket already holds maxPendingBytes is
   * skipped. With no router registered it is `send()`. Returns the number of routers written to.
   */
  sendAll(dest: Address | null, payload: Uint8Array): number {
    const conns = this.#conns.filter((c) => c.state === "registered");
    if (conns.length === 0 || this.#closing) {
      this.send(dest, payload);
      return 0;
    }
    const frame = messageFrame(this.options.group, dest, this.options.localAddr, payload);
    if (frame.length - 4 > this.options.maxFrame) {
      this.send(dest, payload); // throws TUNNEL_PAYLOAD_TOO_LARGE
      return 0;
    }
    let n = 0;
    for (const conn of conns) {
      if (conn.bufferedBytes > 0 && conn.bufferedBytes + frame.length > this.options.maxPendingBytes)
        continue;
      if (!conn.write(frame)) this.#needDrain = true;
      n++;
    }
    return n;
  }

  /**
   * Members of `group` (default: our group; null = all groups) from every registered router, merged
   * (one entry per group and member, first router's entry wins). Routers that fail or time out are
   * skipped; rejects only when none answered (TUNNEL_NO_ROUTER, TUNNEL_TIMEOUT…). A JGroups router
   * sends nothing for an unknown group, so there it ends in TUNNEL_TIMEOUT after timeoutMs.
   */
  async getMembers(
    group: string | null = this.options.group,
    timeoutMs = DEFAULT_GET_MEMBERS_TIMEOUT_MS,
  ): Promise<PingData[]> {
    if (this.#closing) throw new TunnelError("TUNNEL_CLOSED", "getMembers() after close()");
    const conns = this.#conns.filter((c) => c.state === "registered");
    if (conns.length === 0) throw new TunnelError("TUNNEL_NO_ROUTER", "no router is registered");
    const results = await Promise.allSettled(conns.map((c) => c.getMembers(group, timeoutMs)));
    const seen = new Set<string>();
    const out: PingData[] = [];
    let answered = 0;
    for (const r of results) {
      if (r.status === "rejected") continue;
      answered++;
      for (const m of r.value) {
        const key = `${m.group}\u0000${m.ping.member ? addressKey(m.ping.member) : ""}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(m.ping);
      }
    }
    if (answered === 0) {
      const first = results[0] as PromiseRejectedResult;
      throw first.reason;
    }
    return out;
  }

  /** Resolves once `count` routers (capped at the number configured) are registered; TUNNEL_TIMEOUT otherwise. */
  waitForRouters(count = 1, timeoutMs = 10_000): Promise<void> {
    if (this.#closing)
      return Promise.reject(new TunnelError("TUNNEL_CLOSED", "waitForRouters() after close()"));
    const want = Math.min(Math.max(1, count), this.#conns.length);
    const enough = () => this.#conns.filter((c) => c.state === "registered").length >= want;
    if (enough()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onStatus = (e: TunnelStatusEvent) => {
        if (e.type === "closed") done(new TunnelError("TUNNEL_CLOSED", "closed while waiting for routers"));
        else if (enough()) done(null);
      };
      const timer = setTimeout(
        () =>
          done(new TunnelError("TUNNEL_TIMEOUT", `${want} router(s) not registered within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const done = (err: Error | null) => {
        clearTimeout(timer);
        this.off("status", onStatus);
        if (err) reject(err);
        else resolve();
      };
      this.on("status", onStatus);
    });
  }

  status(): TunnelSnapshot {
    return {
      routers: this.#conns.map((c) => c.snapshot()),
      pendingFrames: this.#pending.length,
      pendingBytes: this.#pending.bytes,
      current: this.#current?.state === "registered" ? this.#current.endpoint : null,
    };
  }

  /**
   * Leaves: UNREGISTER + GRACEFUL_CLOSE on every registered connection, then ends them. Frames still
   * in the pending queue are discarded. Idempotent; no timers remain once it resolves.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const dropped = this.#pending.length;
    this.#pending.clear();
    if (dropped > 0) this.#log.warn({ frames: dropped }, "closed with frames still pending (discarded)");
    this.#current = null;
    this.#closing = Promise.all(this.#conns.map((c) => c.close())).then(() => {
      this.emit("status", { type: "closed" });
    });
    return this.#closing;
  }

  /**
   * The router for the next frame. Sticky: the current router as long as it stays registered; when
   * it is not, the one registered the longest (most likely to have every member re-registered after
   * a restart), ties broken by list order. Staying on one router keeps per-sender FIFO order.
   */
  #route(): RouterConnection | null {
    if (this.#current?.state === "registered") return this.#current;
    let best: RouterConnection | null = null;
    for (const c of this.#conns) {
      if (c.state === "registered" && (best === null || c.upSince < best.upSince)) best = c;
    }
    if (best !== this.#current && best !== null) {
      this.#log.info(
        { router: `${best.endpoint.host}:${best.endpoint.port}` },
        "sending through this router",
      );
    }
    this.#current = best;
    return best;
  }

  #onUp(conn: RouterConnection): void {
    const current = this.#route();
    // Frames queue only while no router is registered, so this is the first one back: flush in order.
    if (current === conn && this.#pending.length > 0) {
      const frames = this.#pending.drain();
      this.#log.info({ frames: frames.length }, "flushing frames queued while no router was registered");
      for (const f of frames) conn.write(f);
    }
    this.#maybeDrain();
  }

  #onDown(conn: RouterConnection): void {
    if (conn !== this.#current) return;
    this.#current = null;
    // The old socket's 'drain' will never come: a waiting sender may go on through the next router.
    this.#route();
    this.#maybeDrain();
  }

  #maybeDrain(): void {
    if (!this.#needDrain || this.#pending.length > 0) return;
    if (this.#current?.needsDrain) return;
    this.#needDrain = false;
    this.emit("drain");
  }

  #onMessage(conn: RouterConnection, data: GossipData): void {
    // The router echoes a multicast to its sender too; that copy is ours to drop.
    if (data.addr === null && data.sender !== null && addressKey(data.sender) === this.#localKey) return;
    this.emit("message", {
      dest: data.addr,
      sender: data.sender,
      // decodeBody already copies the payload out of the read buffer: wrap it, do not copy again.
      payload: Buffer.from(data.payload.buffer, data.payload.byteOffset, data.payload.byteLength),
      router: conn.endpoint,
    });
  }
}
