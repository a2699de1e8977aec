// The GossipRouter: accepts TUNNEL/RouterStub connections (plain TCP or TLS), keeps the registry
// and routes frames with the JGroups 5.x router's semantics (see docs/ROUTER.md for the details
// and where we deliberately differ: replies for unknown groups, back-pressure instead of drops).
//
// Hot path (MESSAGE): the splitter hands frames as subarrays of the read chunk; the route header
// is looked up in a per-connection cache (raw header bytes -> destination), and the frame is added
// to the destination's batch as a slice of the chunk. After the whole chunk is routed, each
// destination gets one socket.write. Nothing is re-encoded: forwarded bytes are the received bytes.
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { ObservabilityServer } from "../observability/http.js";
import { createLogger, type Logger } from "../observability/log.js";
import { addressKey, decodeBody, decodeRouteHeader } from "../protocol/codec.js";
import {
  ALL_GROUPS_PREFIX,
  GRACEFUL_CLOSE_FRAME,
  getMbrsRspFrame,
  heartbeatFrame,
  suspectFrame,
} from "../protocol/frames.js";
import type { FrameSink } from "../protocol/splitter.js";
import { type GossipData, GossipType, type PingData, ProtocolError } from "../protocol/types.js";
import { ClientConnection, ROUTE_CACHE_MAX } from "./connection.js";
import { createRouterMetrics } from "./metrics.js";
import { type ResolvedRouterOptions, type RouterOptions, resolveRouterOptions } from "./options.js";
import { Group, type Registration, Registry } from "./registry.js";
import {
  type CloseReason,
  GRACEFUL_CLOSE_INDEX,
  RouterCounters,
  type RouterStats,
  type UndeliveredReason,
} from "./stats.js";

/** Registrations one connection may hold (TUNNEL holds one per group; RELAY site masters a few). */
export const MAX_REGISTRATIONS_PER_CONNECTION = 4096;
/** After we close our side, a peer gets this long to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 2_000;
const SHUTDOWN_GRACE_MS = 500;
/** At most one debug line per reason per interval for undelivered frames (plus a suppressed count). */
const UNDELIVERED_LOG_INTERVAL_MS = 1_000;

type RouteTarget = Registration<ClientConnection> | Group<ClientConnection> | UndeliveredReason;

/**
 * End of a MESSAGE route header inside `f` (a whole frame, length prefix included) when it has the
 * shapes worth caching (group string or null + null/UUID dest), else -1. Only used as a cache key:
 * a header seen for the first time is always validated by decodeRouteHeader.
 */
function cacheableHeaderEnd(f: Buffer): number {
  const n = f.length;
  if (n < 7) return -1;
  let p = 6;
  if (f[5] === 1) {
    if (n < 8) return -1;
    p = 8 + ((f[6]! << 8) | f[7]!);
  }
  if (p >= n) return -1;
  const flag = f[p];
  if (flag === 1) p += 1;
  else if (flag === 2) p += 17;
  else return -1;
  return p <= n && p - 5 <= ROUTE_CACHE_MAX ? p : -1;
}

export class GossipRouter {
  readonly options: ResolvedRouterOptions;
  readonly registry = new Registry<ClientConnection>();
  readonly counters = new RouterCounters();
  readonly #log: Logger;
  readonly #connections = new Set<ClientConnection>();
  #server: net.Server | null = null;
  #nextId = 1;
  #reaper: NodeJS.Timeout | null = null;
  #stopping: Promise<void> | null = null;
  #port: number | null = null;
  #httpPort: number | null = null;
  #http: ObservabilityServer | null = null;
  #heartbeat: Buffer | null = null;

  // Routing state of the read being processed (single-threaded: one at a time).
  #chunk: Buffer | null = null;
  readonly #touched: ClientConnection[] = [];
  #copyOf: Buffer | null = null;
  #copy: Buffer | null = null;
  readonly #undeliveredLog = new Map<string, { at: number; suppressed: number }>();

  constructor(options: RouterOptions = {}, logger?: Logger) {
    this.options = resolveRouterOptions(options);
    this.#log = logger ?? createLogger("router");
  }

  get port(): number | null {
    return this.#port;
  }

  get httpPort(): number | null {
    return this.#httpPort;
  }

  /** Counters plus registry sizes. */
  stats(): RouterStats {
    return this.counters.snapshot(this.registry.groups.size, this.registry.size);
  }

  /** Senders currently paused by back-pressure, and bytes queued towards all clients. */
  flowStats(): { pausedSenders: number; queuedBytes: number; congestedReceivers: number } {
    let paused = 0;
    let queued = 0;
    let congested = 0;
    for (const c of this.#connections) {
      if (c.blockedBy.size > 0) paused++;
      if (c.congested) congested++;
      queued += c.queuedBytes;
    }
    return { pausedSenders: paused, queuedBytes: queued, congestedReceivers: congested };
  }

  /** Starts listening (and the HTTP server unless httpPort is null). */
  async start(): Promise<{ port: number; httpPort: number | null }> {
    if (this.#server) throw new Error("router already started");
    const o = this.options;
    this.#heartbeat = heartbeatFrame();
    const server = o.tls ? this.#tlsServer() : net.createServer({ allowHalfOpen: true, noDelay: true });
    this.#server = server;
    server.on(o.tls ? "secureConnection" : "connection", (socket: net.Socket) => this.#accept(socket));
    server.on("error", (err) => this.#log.error({ err: err.message }, "server error"));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(o.port, o.bind, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#port = (server.address() as net.AddressInfo).port;
    if (o.httpPort !== null) {
      try {
        const http = new ObservabilityServer({
          metrics: createRouterMetrics(this),
          health: () => ({
            ok: !this.#stopping,
            port: this.#port,
            connections: this.counters.connections,
            groups: this.registry.groups.size,
            registrations: this.registry.size,
          }),
        });
        this.#httpPort = await http.listen(o.httpPort, o.bind);
        this.#http = http;
      } catch (err) {
        server.close();
        this.#server = null;
        throw err;
      }
    }
    if (o.expiryMs > 0) {
      const interval = Math.max(10, Math.min(1_000, Math.floor(o.expiryMs / 4)));
      this.#reaper = setInterval(() => this.#reap(), interval);
      this.#reaper.unref();
    }
    this.#log.info(
      {
        port: this.#port,
        httpPort: this.#httpPort,
        bind: o.bind,
        tls: o.tls ? { clientAuth: !!o.tls.clientAuth } : false,
        suspect: o.suspect,
        expiryMs: o.expiryMs,
        maxFrame: o.maxFrame,
        maxQueueBytes: o.maxQueueBytes,
        slowTimeoutMs: o.slowTimeoutMs,
      },
      "router listening",
    );
    return { port: this.#port, httpPort: this.#httpPort };
  }

  /** Stops accepting, closes every connection (GRACEFUL_CLOSE first, no SUSPECT) and the HTTP server. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#reaper) clearInterval(this.#reaper);
    const server = this.#server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const conns = [...this.#connections];
    const gone = conns.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.state === "closed") return resolve();
          c.socket.once("close", () => resolve());
        }),
    );
    for (const c of conns) this.#close(c, "shutdown", null, SHUTDOWN_GRACE_MS);
    await Promise.all([closed, ...gone, this.#http?.close()]);
    this.#log.info({ port: this.#port }, "router stopped");
  }

  #tlsServer(): tls.Server {
    const t = this.options.tls!;
    const server = tls.createServer({
      cert: readFileSync(t.certFile),
      key: readFileSync(t.keyFile),
      ...(t.caFile ? { ca: readFileSync(t.caFile) } : {}),
      requestCert: !!t.clientAuth,
      rejectUnauthorized: !!t.clientAuth,
      allowHalfOpen: true,
    });
    server.on("tlsClientError", (err: Error & { code?: string }, socket: tls.TLSSocket) => {
      this.counters.tlsRejected++;
      this.#log.warn(
        { remote: `${socket.remoteAddress}:${socket.remotePort}`, code: err.code, err: err.message },
        "TLS handshake refused",
      );
    });
    return server;
  }

  #accept(socket: net.Socket): void {
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn = new ClientConnection(this.#nextId++, socket, this.options.maxFrame);
    conn.sink = this.#sinkFor(conn);
    conn.onWritten = (c) => this.#checkDrained(c);
    this.#connections.add(conn);
    this.counters.connections++;
    this.counters.connectionsTotal++;
    this.#log.debug({ conn: conn.id, remote: conn.remote }, "connection accepted");
    socket.on("data", (chunk: Buffer) => this.#onData(conn, chunk));
    socket.on("end", () => {
      if (conn.state === "open" && conn.splitter.buffered > 0) {
        // The peer stopped in the middle of a frame: a truncated frame, then a lost connection.
        this.counters.decodeError("truncated");
        this.#log.warn(
          { conn: conn.id, remote: conn.remote, code: "truncated", buffered: conn.splitter.buffered },
          "decode error: connection ended inside a frame",
        );
      }
      this.#lost(conn, "eof", null);
    });
    socket.on("error", (err: Error & { code?: string }) =>
      this.#lost(conn, "error", err.code ?? err.message),
    );
    socket.on("close", () => this.#finalize(conn));
  }

  #sinkFor(conn: ClientConnection): FrameSink {
    return {
      frame: (frame) => this.#onFrame(conn, frame),
      gracefulClose: () => this.#onGracefulClose(conn),
    };
  }

  // ---- input ------------------------------------------------------------------------------

  #onData(conn: ClientConnection, chunk: Buffer): void {
    if (conn.state !== "open") return;
    conn.lastSeen = Date.now();
    this.#chunk = chunk;
    try {
      conn.splitter.push(chunk, conn.sink!);
    } catch (err) {
      this.#chunk = null;
      this.#copyOf = this.#copy = null;
      this.#flush(conn);
      this.#inputFailure(conn, err);
      return;
    }
    this.#chunk = null;
    this.#copyOf = this.#copy = null;
    this.#flush(conn);
  }

  #inputFailure(conn: ClientConnection, err: unknown): void {
    if (err instanceof ProtocolError) {
      this.counters.decodeError(err.code);
      this.#log.warn(
        { conn: conn.id, remote: conn.remote, code: err.code, err: err.message },
        "decode error",
      );
      this.#lost(conn, "decode-error", err.code);
    } else {
      // A bug of ours must cost one connection, never the process.
      this.#log.error(
        { conn: conn.id, remote: conn.remote, err: err instanceof Error ? err.stack : String(err) },
        "internal error while handling input",
      );
      this.#lost(conn, "error", "internal");
    }
  }

  #onFrame(conn: ClientConnection, frame: Buffer): void {
    if (conn.state !== "open") return;
    const type = frame.length > 4 ? frame[4]! : 255;
    if (type <= GossipType.GetMbrsRspLast) {
      this.counters.framesIn[type]!++;
      this.counters.bytesIn[type]! += frame.length;
    }
    if (type === GossipType.Message) this.#routeMessage(conn, frame);
    else this.#control(conn, frame);
  }

  #onGracefulClose(conn: ClientConnection): void {
    if (conn.state !== "open") return;
    this.counters.framesIn[GRACEFUL_CLOSE_INDEX]!++;
    this.counters.bytesIn[GRACEFUL_CLOSE_INDEX]! += 4;
    this.#close(conn, "graceful", null, CLOSE_GRACE_MS);
  }

  #routeMessage(conn: ClientConnection, frame: Buffer): void {
    const end = cacheableHeaderEnd(frame);
    let target: RouteTarget;
    if (end > 0 && conn.cacheGeneration === this.registry.generation && conn.cacheLen === end - 5) {
      const cache = conn.cacheBytes;
      let i = 5;
      while (i < end && frame[i] === cache[i - 5]) i++;
      target = i === end ? (conn.cacheTarget as RouteTarget) : this.#resolve(conn, frame, end);
    } else {
      target = this.#resolve(conn, frame, end);
    }
    if (typeof target === "string") {
      this.#undelivered(target, 1, conn);
    } else if (target instanceof Group) {
      // One copy per registration, as JGroups does (a connection holding two registrations in the
      // group gets the frame twice), the sender included.
      for (const reg of target.members.values()) this.#enqueueSlice(reg.conn, frame, GossipType.Message);
    } else {
      this.#enqueueSlice(target.conn, frame, GossipType.Message);
    }
  }

  /** Decodes and looks up a route header (validating it), and caches the decision when possible. */
  #resolve(conn: ClientConnection, frame: Buffer, end: number): RouteTarget {
    const hdr = decodeRouteHeader(frame.subarray(4));
    let target: RouteTarget;
    const group = hdr.group === null ? undefined : this.registry.group(hdr.group);
    if (!group) target = "unknown-group";
    else if (hdr.addr === null) target = group;
    else target = group.members.get(addressKey(hdr.addr)) ?? "unknown-dest";
    if (end > 0) {
      frame.copy(conn.cacheBytes, 0, 5, end);
      conn.cacheLen = end - 5;
      conn.cacheGeneration = this.registry.generation;
      conn.cacheTarget = target;
    }
    return target;
  }

  #control(conn: ClientConnection, frame: Buffer): void {
    // A REGISTER is kept in the registry: decode a private copy so that nothing it holds can alias
    // a read chunk or the splitter's reassembly buffer.
    const body = frame[4] === GossipType.Register ? Buffer.from(frame.subarray(4)) : frame.subarray(4);
    const data = decodeBody(body, { maxFrame: this.options.maxFrame });
    switch (data.type) {
      case GossipType.Register:
        this.#register(conn, data);
        break;
      case GossipType.Unregister:
        if (data.group === null) this.counters.ignoredFrame("missing-group");
        else if (data.addr === null) this.counters.ignoredFrame("missing-address");
        else {
          const reg = this.registry.unregister(data.group, data.addr);
          if (reg)
            this.#log.debug({ conn: conn.id, group: data.group, member: reg.logicalName }, "unregistered");
        }
        break;
      case GossipType.GetMbrs:
        this.#getMembers(conn, data.group);
        break;
      case GossipType.Heartbeat:
        this.#enqueueBuffer(conn, this.#heartbeat!, GossipType.Heartbeat);
        break;
      default:
        // GET_MBRS_RSP, GET_MBRS_RSP_LAST and SUSPECT are router -> client only.
        this.counters.ignoredFrame("response-type");
        break;
    }
  }

  #register(conn: ClientConnection, data: GossipData): void {
    if (data.group === null) {
      this.counters.ignoredFrame("missing-group");
      return;
    }
    if (data.addr === null) {
      this.counters.ignoredFrame("missing-address");
      return;
    }
    if (conn.registrations.size >= MAX_REGISTRATIONS_PER_CONNECTION) {
      const existing = this.registry.group(data.group)?.members.get(addressKey(data.addr));
      if (existing?.conn !== conn) {
        // Bounded memory: a client cannot grow the registry without limit.
        this.counters.ignoredFrame("too-many-registrations");
        if (conn.warnedRegistrationLimit) return;
        conn.warnedRegistrationLimit = true; // once per connection: a flood must not flood the log
        this.#log.warn(
          { conn: conn.id, remote: conn.remote, limit: MAX_REGISTRATIONS_PER_CONNECTION },
          "REGISTER ignored: too many registrations on one connection",
        );
        return;
      }
    }
    this.registry.register(data.group, data.addr, conn, data.logicalName, data.physicalAddr);
    this.#log.debug({ conn: conn.id, group: data.group, member: data.logicalName }, "registered");
  }

  #getMembers(conn: ClientConnection, group: string | null): void {
    const pings = (g: Group<ClientConnection> | undefined): PingData[] =>
      g
        ? [...g.members.values()].map((r) => ({
            member: r.addr,
            flags: 0x01,
            logicalName: r.logicalName,
            physicalAddr: r.physicalAddr,
            mbrs: null,
          }))
        : [];
    const out = (buf: Buffer, type: GossipType) => this.#enqueueBuffer(conn, buf, type);
    if (group !== null) {
      // Unknown group: JGroups answers nothing (the client hangs); we answer an empty LAST.
      out(getMbrsRspFrame(group, pings(this.registry.group(group)), true), GossipType.GetMbrsRspLast);
      return;
    }
    const groups = [...this.registry.groups.values()];
    if (groups.length === 0) {
      out(getMbrsRspFrame(null, [], true), GossipType.GetMbrsRspLast);
      return;
    }
    groups.forEach((g, i) => {
      const last = i === groups.length - 1;
      out(
        getMbrsRspFrame(ALL_GROUPS_PREFIX + g.name, pings(g), last),
        last ? GossipType.GetMbrsRspLast : GossipType.GetMbrsRsp,
      );
    });
  }

  // ---- output -----------------------------------------------------------------------------

  /** Queues a received MESSAGE frame for `dest`: a slice of the current chunk when it lies in it. */
  #enqueueSlice(dest: ClientConnection, frame: Buffer, type: GossipType): void {
    const chunk = this.#chunk;
    const start = chunk ? frame.byteOffset - chunk.byteOffset : -1;
    if (!chunk || frame.buffer !== chunk.buffer || start < 0 || start + frame.length > chunk.length) {
      // The splitter assembled this frame from several reads in its own (reused) buffer.
      this.#enqueueBuffer(dest, this.#ownedCopy(frame), type);
      return;
    }
    if (dest.state !== "open") {
      this.#undelivered("receiver-closed", 1, dest);
      return;
    }
    dest.addSlice(chunk, start, start + frame.length);
    this.counters.framesOut[type]!++;
    this.counters.bytesOut[type]! += frame.length;
    if (!dest.touched) {
      dest.touched = true;
      this.#touched.push(dest);
    }
  }

  /** One copy of a reassembled frame, shared by all the destinations of a multicast. */
  #ownedCopy(frame: Buffer): Buffer {
    if (this.#copyOf !== frame) {
      this.#copyOf = frame;
      this.#copy = Buffer.from(frame);
    }
    return this.#copy!;
  }

  /** Queues a frame the router owns (an encoded reply) for `dest`. */
  #enqueueBuffer(dest: ClientConnection, buf: Buffer, type: GossipType): void {
    if (dest.state !== "open") {
      this.#undelivered("receiver-closed", 1, dest);
      return;
    }
    dest.addBuffer(buf);
    this.counters.framesOut[type]!++;
    this.counters.bytesOut[type]! += buf.length;
    if (!dest.touched) {
      dest.touched = true;
      this.#touched.push(dest);
    }
  }

  /** Writes every batch collected since the last flush; pauses `sender` for congested receivers. */
  #flush(sender: ClientConnection | null): void {
    const touched = this.#touched;
    const limit = this.options.maxQueueBytes;
    for (let i = 0; i < touched.length; i++) {
      const dest = touched[i]!;
      if (!dest.writable) {
        this.#undelivered("receiver-closed", dest.dropBatch(), dest);
        continue;
      }
      dest.flushBatch();
      if (dest.queuedBytes > limit) this.#congested(dest, sender);
    }
    touched.length = 0;
  }

  // ---- back-pressure ----------------------------------------------------------------------

  #congested(dest: ClientConnection, sender: ClientConnection | null): void {
    if (!dest.congested) {
      dest.congested = true;
      dest.slowTimer = setTimeout(() => this.#slowReceiver(dest), this.options.slowTimeoutMs);
      dest.slowTimer.unref();
      this.#log.debug({ conn: dest.id, remote: dest.remote, queued: dest.queuedBytes }, "receiver congested");
    }
    if (sender && sender !== dest && sender.state === "open" && !dest.pausedSenders.has(sender)) {
      dest.pausedSenders.add(sender);
      if (sender.blockedBy.size === 0) {
        sender.socket.pause();
        this.counters.backpressurePauses++;
      }
      sender.blockedBy.add(dest);
    } else if (sender === dest && !dest.blockedBy.has(dest)) {
      // A client that multicasts to itself and does not read: stop reading it as well.
      dest.pausedSenders.add(dest);
      if (dest.blockedBy.size === 0) {
        dest.socket.pause();
        this.counters.backpressurePauses++;
      }
      dest.blockedBy.add(dest);
    }
  }

  /** After each completed write: a congested receiver back under half the limit releases its senders. */
  #checkDrained(dest: ClientConnection): void {
    if (dest.congested && dest.queuedBytes <= this.options.maxQueueBytes / 2) this.#release(dest);
  }

  #release(dest: ClientConnection): void {
    dest.congested = false;
    if (dest.slowTimer) clearTimeout(dest.slowTimer);
    dest.slowTimer = null;
    for (const s of dest.pausedSenders) {
      s.blockedBy.delete(dest);
      if (s.blockedBy.size === 0 && s.state === "open") {
        s.lastSeen = Date.now(); // the expiry clock restarts when we listen again
        s.socket.resume();
      }
    }
    dest.pausedSenders.clear();
  }

  #slowReceiver(dest: ClientConnection): void {
    dest.slowTimer = null;
    if (!dest.congested || dest.state !== "open") return;
    this.counters.slowReceiverDisconnects++;
    this.#log.warn(
      {
        conn: dest.id,
        remote: dest.remote,
        queued: dest.queuedBytes,
        slowTimeoutMs: this.options.slowTimeoutMs,
      },
      "slow receiver disconnected: output queue stayed over --max-queue",
    );
    this.#lost(dest, "slow-receiver", null);
  }

  // ---- connection end ---------------------------------------------------------------------

  /** Connection lost without GRACEFUL_CLOSE: GRACEFUL_CLOSE towards it, deregistration, SUSPECTs. */
  #lost(conn: ClientConnection, reason: CloseReason, detail: string | null): void {
    if (conn.state !== "open") return;
    const removed = this.#close(conn, reason, detail, CLOSE_GRACE_MS);
    if (!this.options.suspect || this.#stopping) return;
    for (const reg of removed) {
      const group = this.registry.group(reg.group.name);
      if (!group) continue;
      const frame = suspectFrame(group.name, reg.addr);
      for (const member of group.members.values())
        this.#enqueueBuffer(member.conn, frame, GossipType.Suspect);
    }
    this.#flush(null);
  }

  /**
   * Closes our side: GRACEFUL_CLOSE marker when it is not the client's own close and the socket can
   * still be written, registrations removed, socket destroyed after `graceMs` if the peer lingers.
   */
  #close(
    conn: ClientConnection,
    reason: CloseReason,
    detail: string | null,
    graceMs: number,
  ): Registration<ClientConnection>[] {
    if (!conn.setState("closing", reason)) return [];
    this.counters.closed(reason);
    if (reason === "expired") this.counters.expiries++;
    const removed = this.registry.removeConnection(conn);
    const level = reason === "graceful" || reason === "shutdown" || reason === "eof" ? "debug" : "info";
    this.#log[level](
      {
        conn: conn.id,
        remote: conn.remote,
        reason,
        ...(detail ? { detail } : {}),
        registrations: removed.map((r) => `${r.group.name}/${r.logicalName ?? r.key}`),
      },
      "connection closed",
    );
    this.#unlink(conn);
    const socket = conn.socket;
    if (reason === "slow-receiver" || reason === "error" || socket.destroyed) {
      socket.destroy();
    } else {
      // Writing after the peer's EOF is fine (allowHalfOpen); a dead peer makes it fail quietly.
      if (reason === "graceful") socket.end();
      else {
        socket.end(GRACEFUL_CLOSE_FRAME);
        this.counters.framesOut[GRACEFUL_CLOSE_INDEX]!++;
        this.counters.bytesOut[GRACEFUL_CLOSE_INDEX]! += 4;
      }
      socket.resume(); // keep reading (and discarding) so the peer's FIN is seen
      setTimeout(() => socket.destroy(), graceMs).unref();
    }
    return removed;
  }

  /** Drops every back-pressure link of a closing connection (its paused senders resume). */
  #unlink(conn: ClientConnection): void {
    this.#release(conn);
    for (const r of conn.blockedBy) r.pausedSenders.delete(conn);
    conn.blockedBy.clear();
  }

  #finalize(conn: ClientConnection): void {
    if (conn.state === "open") this.#lost(conn, "error", "closed");
    if (!conn.setState("closed")) return;
    if (conn.inFlightFrames > 0) {
      this.#undelivered(
        conn.closeReason === "slow-receiver" ? "slow-receiver" : "receiver-lost",
        conn.inFlightFrames,
        conn,
      );
      conn.inFlightFrames = 0;
    }
    this.#connections.delete(conn);
    this.counters.connections--;
  }

  #reap(): void {
    const deadline = Date.now() - this.options.expiryMs;
    for (const conn of this.#connections) {
      // A sender paused by back-pressure is not silent: we are not reading it.
      if (conn.state === "open" && conn.blockedBy.size === 0 && conn.lastSeen < deadline) {
        this.#log.info(
          { conn: conn.id, remote: conn.remote, expiryMs: this.options.expiryMs },
          "connection expired",
        );
        this.#lost(conn, "expired", null);
      }
    }
  }

  #undelivered(reason: UndeliveredReason, n: number, conn: ClientConnection): void {
    if (n <= 0) return;
    this.counters.undeliveredFrames(reason, n);
    if (!this.#log.isLevelEnabled("debug")) return;
    const now = Date.now();
    const entry = this.#undeliveredLog.get(reason);
    if (entry && now - entry.at < UNDELIVERED_LOG_INTERVAL_MS) {
      entry.suppressed += n;
      return;
    }
    this.#log.debug(
      { reason, frames: n, conn: conn.id, suppressed: entry?.suppressed ?? 0 },
      "frame not delivered",
    );
    this.#undeliveredLog.set(reason, { at: now, suppressed: 0 });
  }
}
