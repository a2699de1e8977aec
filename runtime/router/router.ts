// The GossipRouter: accepts TUNNEL/RouterStub connections (plain TCP or TLS), keeps the registry
// and routes frames with the JGroups 5.x router's semantics (see docs/ROUTER.md for the details
// and where we deliberately differ: replies for unknown groups, back-pressure instead of drops).
// This file is the server's lifecycle and the connections' input and end; what each frame does is
// in dispatch.ts, the output path and back-pressure in forwarding.ts.
//
// Hot path (MESSAGE): the splitter hands frames as subarrays of the read chunk; the route header
// is looked up in a per-connection cache (raw header bytes -> destination), and the frame is added
// to the destination's batch as a slice of the chunk. After the whole chunk is routed, each
// destination gets one socket.write. Nothing is re-encoded: forwarded bytes are the received bytes.
import net from "node:net";
import tls from "node:tls";
import { everyAfterPoll } from "../after-poll.js";
import { ObservabilityServer } from "../observability/http.js";
import { createLogger, type Logger } from "../observability/log.js";
import { GRACEFUL_CLOSE_FRAME, heartbeatFrame, suspectFrame } from "../protocol/frames.js";
import type { FrameSink } from "../protocol/splitter.js";
import { GossipType, ProtocolError } from "../protocol/types.js";
import { chainTrustedBy, type TlsMaterial } from "../tls/material.js";
import {
  DEFAULT_TLS_RELOAD_INTERVAL_MS,
  serveReloads,
  TlsReloader,
  type TlsReloadStats,
} from "../tls/watch.js";
import { ConnectionAdmission, fdBoundedMaxConnections, openFileLimit, sourceKey } from "./admission.js";
import { ClientConnection } from "./connection.js";
import { Dispatcher } from "./dispatch.js";
import { Forwarder } from "./forwarding.js";
import { RegistrationGate } from "./limits.js";
import { clip, RateLimitedLog } from "./log-limit.js";
import { createRouterMetrics } from "./metrics.js";
import { type ResolvedRouterOptions, type RouterOptions, resolveRouterOptions } from "./options.js";
import { PartialFrameBudget } from "./partial-memory.js";
import { type AuthzRefusal, RouterPolicy } from "./policy.js";
import { type Registration, Registry } from "./registry.js";
import { type CloseReason, GRACEFUL_CLOSE_INDEX, RouterCounters, type RouterStats } from "./stats.js";
import { TokenStore } from "./tokens.js";

export { MAX_REGISTRATIONS_PER_CONNECTION } from "./dispatch.js";

/** After we close our side, a peer gets this long to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 2_000;
const SHUTDOWN_GRACE_MS = 500;

/** Ends that hostile peers can cause in bulk: destroyed at once, logged at most once a second. */
const HOSTILE_CLOSES: ReadonlySet<CloseReason> = new Set<CloseReason>([
  "first-frame-timeout",
  "frame-timeout",
  "partial-frame-memory",
]);
/** Registrations named in a "connection closed" line (a connection may hold thousands). */
const LOGGED_REGISTRATIONS = 16;

/** What the accept path remembers of a TCP socket (the raw one under TLS). */
interface SocketInfo {
  /** "ip:port", captured at the accept: a TLS socket that failed may no longer know it. */
  readonly remote: string;
  /** Closed by us before or during the TLS handshake: its TLS error is not the client's. */
  refused: boolean;
  handshakeTimer: NodeJS.Timeout | null;
}

/** A readable reason for a failed TLS handshake. */
function tlsFailureReason(err: Error & { code?: string; reason?: string }): string {
  if (err.code === "ECONNRESET" || err.code === "EPIPE") {
    return "the client closed the connection during the handshake";
  }
  if (err.code === "ERR_TLS_HANDSHAKE_TIMEOUT") return "handshake not finished in time";
  return err.reason ?? err.message.split("\n")[0]!.slice(0, 200);
}

export class GossipRouter {
  readonly options: ResolvedRouterOptions;
  readonly registry = new Registry<ClientConnection>();
  readonly counters = new RouterCounters();
  /** Identity and authorization rules (policy.ts). */
  readonly policy: RouterPolicy;
  /** The limits of REGISTER (the dispatcher asks it before storing one). */
  readonly registrationGate: RegistrationGate;
  readonly #log: Logger;
  /** For what hostile peers can trigger in bulk. */
  readonly #limitedLog: RateLimitedLog;
  readonly #connections = new Set<ClientConnection>();
  /** Raw sockets by the accept path (the TLS socket maps to its parent). */
  readonly #sockets = new WeakMap<net.Socket, SocketInfo>();
  /** Raw sockets whose TLS handshake is under way (destroyed at stop). */
  readonly #handshaking = new Set<net.Socket>();
  #admission: ConnectionAdmission | null = null;
  readonly #partial: PartialFrameBudget;
  #server: net.Server | null = null;
  #nextId = 1;
  #reaper: NodeJS.Timeout | null = null;
  #stopping: Promise<void> | null = null;
  #port: number | null = null;
  #httpPort: number | null = null;
  #http: ObservabilityServer | null = null;
  /** Re-reads the TLS files (TLS only). */
  #tlsReloader: TlsReloader | null = null;
  /** The output path: batches, writes, back-pressure. */
  readonly #out: Forwarder;
  /** What each received frame does. */
  readonly #dispatch: Dispatcher;

  constructor(options: RouterOptions = {}, logger?: Logger) {
    this.options = resolveRouterOptions(options);
    this.#log = logger ?? createLogger("router");
    this.policy = new RouterPolicy({
      mode: this.options.authMode,
      allowGroups: this.options.allowGroups,
      tokens: this.options.authTokens === null ? null : new TokenStore(this.options.authTokens),
      maxRegistrationsPerIdentity: this.options.maxRegistrationsPerIdentity,
    });
    this.#limitedLog = new RateLimitedLog(this.#log);
    this.#partial = new PartialFrameBudget(this.options.maxPartialBytes);
    this.registrationGate = new RegistrationGate(
      this.options,
      this.registry,
      this.counters,
      this.#limitedLog,
    );
    this.#out = new Forwarder(
      {
        options: this.options,
        counters: this.counters,
        slowReceiver: (c) => this.#lost(c, "slow-receiver", null),
      },
      this.#log,
    );
    this.#dispatch = new Dispatcher(this, this.#out, heartbeatFrame(), this.#log);
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

  /** The connection limits in force and what they count now. */
  limitStats(): {
    maxConnections: number;
    openSockets: number;
    sources: number;
    handshaking: number;
    partialFrameBytes: number;
  } {
    const a = this.#admission;
    return {
      maxConnections: a?.maxConnections ?? this.options.maxConnections,
      openSockets: a?.open ?? 0,
      sources: a?.sources ?? 0,
      handshaking: this.#handshaking.size,
      partialFrameBytes: this.#partial.total,
    };
  }

  /** Starts listening (and the HTTP server unless httpPort is null). */
  async start(): Promise<{ port: number; httpPort: number | null }> {
    if (this.#server) throw new Error("router already started");
    const o = this.options;
    const server = o.tls ? this.#tlsServer() : net.createServer({ allowHalfOpen: true, noDelay: true });
    this.#server = server;
    const maxConnections = fdBoundedMaxConnections(o.maxConnections);
    if (maxConnections < o.maxConnections) {
      this.#log.warn(
        { maxConnections: o.maxConnections, effective: maxConnections, openFileLimit: openFileLimit() },
        "--max-connections lowered to fit the open-file limit (descriptors kept free for /metrics)",
      );
    }
    this.#admission = new ConnectionAdmission(maxConnections, o.maxConnectionsPerAddress);
    // Before TLS wraps it (and for plain TCP before #accept): count, refuse, remember the peer.
    server.prependListener("connection", (socket: net.Socket) => this.#admit(socket));
    server.on(o.tls ? "secureConnection" : "connection", (socket: net.Socket) => this.#accept(socket));
    server.on("error", (err: Error & { code?: string }) => this.#serverError(err));
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
    const timeouts = [o.expiryMs, o.firstFrameTimeoutMs, o.frameTimeoutMs].filter((t) => t > 0);
    if (timeouts.length > 0) {
      const interval = Math.max(10, Math.min(1_000, Math.floor(Math.min(...timeouts) / 4)));
      // The reaper judges after the loop has polled the sockets: after a stall of this process a
      // reaper that judged at once would expire clients whose heartbeats wait unread.
      this.#reaper = everyAfterPoll(() => this.#reap(), interval);
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
        auth: o.authMode,
        allowGroups: o.allowGroups ? Object.keys(o.allowGroups).length : "all",
        congestionGraceMs: o.congestionGraceMs,
        maxConnections,
        maxConnectionsPerAddress: o.maxConnectionsPerAddress,
        firstFrameTimeoutMs: o.firstFrameTimeoutMs,
        frameTimeoutMs: o.frameTimeoutMs,
        ...(o.tls ? { tlsHandshakeTimeoutMs: o.tlsHandshakeTimeoutMs } : {}),
        maxPartialBytes: o.maxPartialBytes,
        maxGroups: o.maxGroups,
        maxRegistrations: o.maxRegistrations,
      },
      "router listening",
    );
    if (o.authMode === "open") {
      this.#log.warn(
        "open mode: clients are not authenticated (no --tls-client-auth, no --auth-tokens); anyone who can connect may register any address",
      );
    }
    return { port: this.#port, httpPort: this.#httpPort };
  }

  /** Stops accepting, closes every connection (GRACEFUL_CLOSE first, no SUSPECT) and the HTTP server. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#reaper) clearInterval(this.#reaper);
    this.#tlsReloader?.stop();
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
    for (const raw of this.#handshaking) raw.destroy();
    await Promise.all([closed, ...gone, this.#http?.close()]);
    this.#log.info({ port: this.#port }, "router stopped");
  }

  /**
   * The TLS listener. Certificate, key and CA are re-read every `tls.reloadIntervalMs` and a
   * changed set that passes its checks becomes the context of new handshakes
   * (setSecureContext); established connections keep their session, unless (with client auth)
   * the new CA bundle no longer trusts their certificate. Bad files never replace the material in
   * use (runtime/tls/watch.ts; docs/security/rotation.md).
   */
  #tlsServer(): tls.Server {
    const t = this.options.tls!;
    const reloader = new TlsReloader({
      sources: { cert: t.certFile, key: t.keyFile, ...(t.caFile ? { ca: t.caFile } : {}) },
      intervalMs: t.reloadIntervalMs ?? DEFAULT_TLS_RELOAD_INTERVAL_MS,
      log: this.#log,
    });
    const material = reloader.material(); // throws (naming the file) when the first load fails
    const server = tls.createServer({
      ...material.contextOptions,
      requestCert: !!t.clientAuth,
      rejectUnauthorized: !!t.clientAuth,
      // Not half-open (unlike plain TCP): a TLS 1.3 client that closes right after its side of the
      // handshake left a server socket that never closed (no 'secureConnection', no 'end'), holding
      // an admission slot until the handshake timeout; 8 clients reconnecting in a loop filled
      // --max-connections-per-address in a second (bench/router-auth.mjs).
      allowHalfOpen: false,
    });
    serveReloads(reloader, server, this.#log, (m) => {
      if (t.clientAuth && t.closeUntrustedOnReload !== false) closeUntrusted(m);
    });
    // A CA removed from the bundle is no longer trusted: links authenticated through it are
    // closed (GRACEFUL_CLOSE, like any lost connection) and must reconnect with a certificate the
    // new bundle accepts. Links still anchored in the bundle keep running untouched.
    const closeUntrusted = (m: TlsMaterial) => {
      let closed = 0;
      for (const conn of [...this.#connections]) {
        if (conn.state !== "open") continue;
        const peer = (conn.socket as tls.TLSSocket).getPeerX509Certificate();
        if (chainTrustedBy(peer, m) !== false) continue;
        this.#lost(conn, "tls-untrusted", peer?.subject.replace(/\n/g, ", ") ?? null);
        closed++;
      }
      if (closed > 0) {
        this.#log.warn(
          { closed },
          "TLS reload: closed connections whose certificate the new CA bundle does not trust",
        );
      }
    };
    this.#tlsReloader = reloader.start();
    server.on("tlsClientError", (err: Error & { code?: string }, socket: tls.TLSSocket) =>
      this.#tlsFailure(err, socket),
    );
    return server;
  }

  // ---- accept -----------------------------------------------------------------------------

  /** Every TCP connection, first: the connection limits, the peer's address, the TLS deadline. */
  #admit(raw: net.Socket): void {
    const address = raw.remoteAddress;
    const info: SocketInfo = {
      remote: `${address ?? "?"}:${raw.remotePort ?? "?"}`,
      refused: true,
      handshakeTimer: null,
    };
    this.#sockets.set(raw, info);
    if (this.#stopping || address === undefined || !this.#admission) {
      raw.destroy();
      return;
    }
    const source = sourceKey(address);
    const refusal = this.#admission.admit(source);
    if (refusal !== null) {
      this.counters.refused(refusal);
      this.#limitedLog.warn(
        `accept:${refusal}`,
        {
          remote: info.remote,
          reason: refusal,
          open: this.#admission.open,
          limit:
            refusal === "max-connections" ? this.#admission.maxConnections : this.#admission.maxPerSource,
        },
        "connection refused",
      );
      raw.destroy();
      return;
    }
    info.refused = false;
    raw.once("close", () => {
      this.#admission?.release(source);
      this.#handshaking.delete(raw);
      if (info.handshakeTimer) clearTimeout(info.handshakeTimer);
    });
    if (this.options.tls) {
      this.#handshaking.add(raw);
      info.handshakeTimer = setTimeout(
        () => this.#handshakeTimeout(raw, info),
        this.options.tlsHandshakeTimeoutMs,
      );
      info.handshakeTimer.unref();
    }
  }

  /** The accept-path record of `socket`, or of the raw socket under it (TLS). */
  #socketInfo(socket: net.Socket): SocketInfo | undefined {
    return this.#sockets.get(socket) ?? this.#sockets.get((socket as { _parent?: net.Socket })._parent!);
  }

  #handshakeTimeout(raw: net.Socket, info: SocketInfo): void {
    info.handshakeTimer = null;
    if (raw.destroyed || !this.#handshaking.has(raw)) return;
    info.refused = true;
    this.counters.tlsHandshakeTimeouts++;
    this.#limitedLog.warn(
      "tls:handshake-timeout",
      { remote: info.remote, tlsHandshakeTimeoutMs: this.options.tlsHandshakeTimeoutMs },
      "TLS handshake not finished in time: connection closed",
    );
    raw.destroy();
  }

  /** A TLS handshake failed: logged with the peer's address and a reason, counted, destroyed. */
  #tlsFailure(err: Error & { code?: string; reason?: string }, socket: tls.TLSSocket): void {
    const info = this.#socketInfo(socket);
    socket.destroy();
    if (info?.refused) return; // closed by us (limit or timeout), counted there
    this.counters.tlsRejected++;
    this.#limitedLog.warn(
      `tls:${err.code ?? "error"}`,
      {
        remote: info?.remote ?? `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
        code: err.code,
        reason: tlsFailureReason(err),
      },
      "TLS handshake refused",
    );
  }

  #serverError(err: Error & { code?: string }): void {
    if (err.code === "EMFILE" || err.code === "ENFILE") {
      // libuv closes the pending connection itself; nothing else to shed but the log volume.
      this.#limitedLog.warn(
        `server:${err.code}`,
        { code: err.code, connections: this.counters.connections },
        "accept failed: out of file descriptors (lower --max-connections or raise the open-file limit)",
      );
      return;
    }
    this.#log.error({ err: err.message, code: err.code }, "server error");
  }

  /** Reload counters and notAfter of the TLS material in use; null without TLS (metrics). */
  get tlsReload(): TlsReloadStats | null {
    return this.#tlsReloader?.stats ?? null;
  }

  #accept(socket: net.Socket): void {
    if (this.#stopping || socket.destroyed) {
      socket.destroy();
      return;
    }
    const info = this.#socketInfo(socket);
    if (info?.refused) {
      socket.destroy();
      return;
    }
    if (info?.handshakeTimer) {
      clearTimeout(info.handshakeTimer);
      info.handshakeTimer = null;
    }
    const parent = (socket as { _parent?: net.Socket })._parent;
    if (parent) this.#handshaking.delete(parent);
    socket.setNoDelay(true);
    const conn = new ClientConnection(this.#nextId++, socket, this.options.maxFrame, info?.remote);
    conn.sink = this.#sinkFor(conn);
    conn.onWritten = (c) => this.#out.checkDrained(c);
    // Also when the socket's buffer is empty: a congested receiver must release its senders even
    // if the check after the last write completion ran while bytes were still counted as queued
    // (the suite on Node 24 once saw a sender that never resumed after its receiver read again).
    socket.on("drain", () => this.#out.checkDrained(conn));
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
    // Identity (mutual TLS: the client certificate's site URI SAN; token mode: AUTH comes first).
    if (!this.#dispatch.admit(conn)) this.refuseConnection(conn, "no-identity");
  }

  /** Closes a connection refused by authentication or authorization (counted by the caller). */
  refuseConnection(conn: ClientConnection, _reason: AuthzRefusal): void {
    this.#lost(conn, "refused", null);
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
    const now = Date.now();
    conn.lastSeen = now;
    const framesBefore = conn.framesReceived;
    this.#out.chunk = chunk;
    try {
      conn.splitter.push(chunk, conn.sink!);
    } catch (err) {
      this.#out.chunk = null;
      this.#out.flush(conn);
      this.#inputFailure(conn, err);
      return;
    }
    this.#out.chunk = null;
    this.#out.flush(conn);
    this.#afterRead(conn, framesBefore, now);
  }

  /** The frame clock (slowloris) and the partial-frame memory after one read. */
  #afterRead(conn: ClientConnection, framesBefore: number, now: number): void {
    const splitter = conn.splitter;
    if (conn.state !== "open") {
      splitter.discard();
      if (conn.heldBytes !== 0) this.#partial.update(conn, 0);
      return;
    }
    if (splitter.buffered === 0) conn.partialSince = 0;
    else if (conn.partialSince === 0 || conn.framesReceived !== framesBefore) conn.partialSince = now;
    const held = splitter.capacity;
    if (held !== conn.heldBytes && this.#partial.update(conn, held)) {
      for (const victim of this.#partial.relieve(this.#connections)) {
        this.#limitedLog.warn(
          "close:partial-frame-memory",
          {
            conn: victim.id,
            remote: victim.remote,
            held: victim.heldBytes,
            total: this.#partial.total,
            maxPartialBytes: this.options.maxPartialBytes,
          },
          "partial frames over --max-partial-bytes: closing the connection holding the most",
        );
        this.#lost(victim, "partial-frame-memory", null);
      }
    }
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
    conn.framesReceived++;
    this.#dispatch.onFrame(conn, frame);
  }

  #onGracefulClose(conn: ClientConnection): void {
    if (conn.state !== "open") return;
    this.counters.framesIn[GRACEFUL_CLOSE_INDEX]!++;
    this.counters.bytesIn[GRACEFUL_CLOSE_INDEX]! += 4;
    this.#close(conn, "graceful", null, CLOSE_GRACE_MS);
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
        this.#out.enqueueBuffer(member.conn, frame, GossipType.Suspect);
    }
    this.#out.flush(null);
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
    conn.splitter.discard();
    if (conn.heldBytes !== 0) this.#partial.update(conn, 0);
    const fields = {
      conn: conn.id,
      remote: conn.remote,
      reason,
      ...(detail ? { detail } : {}),
      registrations: removed
        .slice(0, LOGGED_REGISTRATIONS)
        .map((r) => `${clip(r.group.name)}/${clip(r.logicalName) ?? r.key}`),
      ...(removed.length > LOGGED_REGISTRATIONS
        ? { moreRegistrations: removed.length - LOGGED_REGISTRATIONS }
        : {}),
    };
    const hostile = HOSTILE_CLOSES.has(reason) || reason === "expired";
    if (hostile) this.#limitedLog.info(`close:${reason}`, fields, "connection closed");
    else {
      const level = reason === "graceful" || reason === "shutdown" || reason === "eof" ? "debug" : "info";
      this.#log[level](fields, "connection closed");
    }
    this.#out.unlink(conn);
    const socket = conn.socket;
    if (reason === "slow-receiver" || reason === "error" || HOSTILE_CLOSES.has(reason) || socket.destroyed) {
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

  #finalize(conn: ClientConnection): void {
    if (conn.state === "open") this.#lost(conn, "error", "closed");
    if (!conn.setState("closed")) return;
    if (conn.inFlightFrames > 0) {
      this.#out.undelivered(
        conn.closeReason === "slow-receiver" ? "slow-receiver" : "receiver-lost",
        conn.inFlightFrames,
        conn,
      );
      conn.inFlightFrames = 0;
    }
    this.#connections.delete(conn);
    this.counters.connections--;
    conn.splitter.discard();
    if (conn.heldBytes !== 0) this.#partial.update(conn, 0);
  }

  /** The timeouts: first frame, frame completion (slowloris), silence (expiry). */
  #reap(): void {
    const o = this.options;
    const now = Date.now();
    for (const conn of this.#connections) {
      // A sender paused by back-pressure is neither silent nor slow: we are not reading it.
      if (conn.state !== "open" || conn.blockedBy.size > 0) continue;
      if (
        o.firstFrameTimeoutMs > 0 &&
        conn.framesReceived === 0 &&
        now - conn.acceptedAt > o.firstFrameTimeoutMs
      ) {
        this.#lost(conn, "first-frame-timeout", `no complete frame within ${o.firstFrameTimeoutMs} ms`);
      } else if (
        o.frameTimeoutMs > 0 &&
        conn.partialSince > 0 &&
        now - conn.partialSince > o.frameTimeoutMs
      ) {
        this.#lost(
          conn,
          "frame-timeout",
          `frame incomplete after ${o.frameTimeoutMs} ms (${conn.splitter.buffered} bytes)`,
        );
      } else if (o.expiryMs > 0 && now - conn.lastSeen > o.expiryMs) {
        this.#lost(conn, "expired", `silent for ${o.expiryMs} ms`);
      }
    }
  }
}
