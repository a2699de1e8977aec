// One client connection to one GossipRouter: connect, register, heartbeat, receive, and reconnect
// with backoff whenever anything goes wrong. The TunnelClient owns one of these per router and
// decides which one carries each outgoing frame.
import net from "node:net";
import tls from "node:tls";
import type { RouterEndpoint } from "../../contract/initial-hosts.js";
import type { Logger } from "../observability/log.js";
import { authFrame } from "../protocol/auth.js";
import { decodeBody } from "../protocol/codec.js";
import {
  ALL_GROUPS_PREFIX,
  GRACEFUL_CLOSE_FRAME,
  getMbrsFrame,
  heartbeatFrame,
  registerFrame,
  unregisterFrame,
} from "../protocol/frames.js";
import { type FrameSink, FrameSplitter } from "../protocol/splitter.js";
import { type GossipData, GossipType, type PingData, ProtocolError } from "../protocol/types.js";
import { TlsReloader } from "../tls/watch.js";
import { backoffDelay } from "./backoff.js";
import { TunnelError } from "./errors.js";
import { Heartbeat } from "./heartbeat.js";
import type { ResolvedTunnelOptions } from "./options.js";
import type { DownReason, RouterSnapshot, RouterState, TunnelStatusEvent } from "./status.js";

/** How long close() waits for the router to close its side before destroying the socket. */
const CLOSE_GRACE_MS = 1000;

/** One member entry of a GET_MBRS answer, with the group it belongs to. */
export interface GroupMember {
  readonly group: string;
  readonly ping: PingData;
}

/** What a connection reports to its owner (the TunnelClient). */
export interface ConnectionOwner {
  /** The router confirmed our registration. */
  up(conn: RouterConnection): void;
  /** A registered connection was lost (called before the router-down status event). */
  down(conn: RouterConnection): void;
  /** The socket's write buffer drained. */
  drain(conn: RouterConnection): void;
  message(conn: RouterConnection, data: GossipData): void;
  suspect(conn: RouterConnection, data: GossipData): void;
  status(event: TunnelStatusEvent): void;
}

interface MembersWaiter {
  /** null = all groups. */
  readonly group: string | null;
  readonly members: GroupMember[];
  readonly resolve: (members: GroupMember[]) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class RouterConnection {
  readonly endpoint: RouterEndpoint;
  readonly #opts: ResolvedTunnelOptions;
  /** The decoder's limits: one object for every frame (decodeBody resolves it once). */
  readonly #decodeLimits: { readonly maxFrame: number };
  /** TLS material, checked again at every connect; null = plain TCP. */
  readonly #tls: TlsReloader | null;
  readonly #owner: ConnectionOwner;
  readonly #log: Logger;
  readonly #heartbeat: Heartbeat;
  readonly #sink: FrameSink;
  /** `host:port`, for logs and messages. */
  readonly #name: string;

  #state: RouterState = "idle";
  #since = Date.now();
  #socket: net.Socket | null = null;
  #splitter: FrameSplitter;
  #socketError: Error | null = null;
  #connectTimer: NodeJS.Timeout | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** Failures since the last router-up, the loss of that registration included (drives the backoff). */
  #attempt = 0;
  #reconnects = 0;
  #upSince = 0;
  #framesIn = 0;
  #framesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #lastError: RouterSnapshot["lastError"] = null;
  #waiters: MembersWaiter[] = [];
  #closing: Promise<void> | null = null;
  /** The socket corked until the end of the current tick, if any. */
  #corkedSocket: net.Socket | null = null;

  constructor(
    endpoint: RouterEndpoint,
    opts: ResolvedTunnelOptions,
    owner: ConnectionOwner,
    log: Logger,
    tlsMaterial: TlsReloader | null = null,
  ) {
    this.endpoint = endpoint;
    this.#opts = opts;
    this.#decodeLimits = { maxFrame: opts.maxFrame };
    // Never plain TCP when TLS is configured, even without a shared reloader.
    this.#tls = opts.tls ? (tlsMaterial ?? new TlsReloader({ sources: opts.tls, intervalMs: 0, log })) : null;
    this.#owner = owner;
    this.#name = `${endpoint.host}:${endpoint.port}`;
    this.#log = log.child({ router: this.#name });
    this.#splitter = new FrameSplitter(opts.maxFrame);
    this.#heartbeat = new Heartbeat(
      {
        sendHeartbeat: () => this.#write(heartbeatFrame()),
        timedOut: (silentMs) =>
          this.#fail(
            this.#socket,
            "heartbeat-timeout",
            `nothing received from the router for ${silentMs} ms`,
          ),
      },
      opts.heartbeatIntervalMs,
      opts.heartbeatTimeoutMs,
    );
    this.#sink = {
      frame: (frame) => this.#onFrame(frame),
      gracefulClose: () => this.#fail(this.#socket, "router-closed", "the router sent GRACEFUL_CLOSE"),
    };
  }

  get state(): RouterState {
    return this.#state;
  }

  /** When the current registration was confirmed (ms since the epoch); 0 when not registered. */
  get upSince(): number {
    return this.#state === "registered" ? this.#upSince : 0;
  }

  /** Bytes written to the socket and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#socket?.writableLength ?? 0;
  }

  /** True while the socket holds more than its high-water mark: wait for the owner's drain(). */
  get needsDrain(): boolean {
    return this.#socket?.writableNeedDrain ?? false;
  }

  snapshot(): RouterSnapshot {
    return {
      endpoint: this.endpoint,
      state: this.#state,
      since: this.#since,
      reconnects: this.#reconnects,
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      bufferedBytes: this.#socket?.writableLength ?? 0,
      lastError: this.#lastError,
    };
  }

  /** Opens the first connection. */
  start(): void {
    if (this.#state === "idle") this.#connect();
  }

  /**
   * Writes a whole frame; returns false when the socket is over its high-water mark (the frame is
   * still buffered). Only valid while registered: the owner routes nothing here otherwise.
   */
  write(frame: Buffer): boolean {
    return this.#write(frame);
  }

  /** GET_MBRS on this connection. group null = all groups. Rejects TUNNEL_TIMEOUT / TUNNEL_ROUTER_DOWN. */
  getMembers(group: string | null, timeoutMs: number): Promise<GroupMember[]> {
    if (this.#state !== "registered") {
      return Promise.reject(new TunnelError("TUNNEL_ROUTER_DOWN", `router ${this.#name} is not registered`));
    }
    return new Promise((resolve, reject) => {
      const waiter: MembersWaiter = {
        group,
        members: [],
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#removeWaiter(waiter);
          // A JGroups router answers nothing at all for an unknown group; ours sends an empty answer.
          reject(
            new TunnelError(
              "TUNNEL_TIMEOUT",
              `router ${this.#name} did not answer GET_MBRS ${group ?? "(all groups)"} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
      this.#write(getMbrsFrame(group));
    });
  }

  /** UNREGISTER + GRACEFUL_CLOSE if registered, then end the socket. Idempotent; leaves no timers. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const wasConnected = this.#state === "registered" || this.#state === "registering";
    this.#setState("closing");
    this.#clearTimers();
    this.#heartbeat.stop();
    this.#rejectWaiters(new TunnelError("TUNNEL_CLOSED", "the tunnel client was closed"));
    const socket = this.#socket;
    this.#closing = new Promise<void>((resolve) => {
      const finish = () => {
        this.#socket = null;
        this.#setState("closed");
        resolve();
      };
      if (socket === null || socket.closed) {
        finish();
        return;
      }
      const grace = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      socket.once("close", () => {
        clearTimeout(grace);
        finish();
      });
      if (wasConnected) {
        this.#write(unregisterFrame(this.#opts.group, this.#opts.localAddr));
        this.#write(GRACEFUL_CLOSE_FRAME);
        socket.end();
      } else {
        socket.destroy();
      }
    });
    return this.#closing;
  }

  #write(frame: Buffer): boolean {
    const socket = this.#socket;
    if (socket === null || socket.destroyed) return false;
    this.#framesOut++;
    this.#bytesOut += frame.length;
    // Frames written in the same tick leave in one writev instead of one syscall each (the
    // per-write syscall was ~40 % of the CPU in bench/tunnel.mjs); nothing waits beyond this tick.
    if (this.#corkedSocket !== socket) {
      this.#corkedSocket = socket;
      socket.cork();
      process.nextTick(() => {
        this.#corkedSocket = null;
        socket.uncork();
      });
    }
    return socket.write(frame);
  }

  #setState(next: RouterState): void {
    const prev = this.#state;
    if (prev === next) return;
    this.#state = next;
    this.#since = Date.now();
    this.#log.info({ from: prev, to: next }, `${prev} -> ${next}`);
  }

  #connect(): void {
    this.#reconnectTimer = null;
    this.#setState("connecting");
    this.#socketError = null;
    this.#splitter = new FrameSplitter(this.#opts.maxFrame);
    let socket: net.Socket;
    try {
      socket = this.#openSocket();
    } catch (err) {
      // e.g. a certificate file that vanished: counts as a failed attempt, retried with backoff.
      this.#socket = null;
      this.#afterFailure(false, "socket-error", `cannot open the connection: ${(err as Error).message}`);
      return;
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    this.#connectTimer = setTimeout(
      () =>
        this.#fail(
          socket,
          "connect-timeout",
          `connect + register not confirmed within ${this.#opts.connectTimeoutMs} ms (state ${this.#state})`,
        ),
      this.#opts.connectTimeoutMs,
    );
    socket.once(this.#opts.tls ? "secureConnect" : "connect", () => this.#onConnected(socket));
    socket.on("data", (chunk: Buffer) => this.#onData(socket, chunk));
    socket.on("drain", () => {
      if (socket === this.#socket) this.#owner.drain(this);
    });
    socket.on("error", (err) => {
      this.#socketError ??= err;
    });
    socket.on("close", () => {
      const err = this.#socketError;
      if (err) this.#fail(socket, "socket-error", describeError(err));
      else if (this.#state === "registered")
        this.#fail(socket, "router-closed", "the router closed the connection");
      else {
        const hint = this.#opts.tls ? " (with TLS: did it refuse our client certificate?)" : "";
        this.#fail(
          socket,
          "router-closed",
          `the router closed the connection before confirming the registration${hint}`,
        );
      }
    });
  }

  #openSocket(): net.Socket {
    const { host, port } = this.endpoint;
    const t = this.#opts.tls;
    if (t === null || this.#tls === null) return net.connect({ host, port }); // both null together
    // Each connect takes the current material: files changed since the last one are checked and,
    // if good, used; bad new files leave the last good material in use (runtime/tls/watch.ts).
    // An established connection keeps the certificate it was authenticated with.
    const material = this.#tls.material();
    // Host names are passed as given, so every reconnect resolves them again.
    return tls.connect({
      host,
      port,
      secureContext: material.secureContext,
      ...(t.servername !== undefined ? { servername: t.servername } : {}),
      rejectUnauthorized: true,
    });
  }

  /**
   * TCP (and TLS) is up: REGISTER, then a HEARTBEAT as a probe. The router handles frames in order
   * and answers every HEARTBEAT, so its first frame back proves the REGISTER was processed (and,
   * with TLS 1.3, that the router accepted our client certificate, which the handshake alone
   * does not tell the client).
   */
  #onConnected(socket: net.Socket): void {
    if (socket !== this.#socket) return;
    this.#setState("registering");
    const o = this.#opts;
    socket.cork();
    // Token mode: the router reads nothing else before our AUTH frame.
    if (o.authToken) this.#write(authFrame(o.authToken.site, o.authToken.token));
    this.#write(registerFrame(o.group, o.localAddr, o.logicalName, o.physicalAddr));
    this.#write(heartbeatFrame());
    socket.uncork();
  }

  #onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.#socket) return;
    this.#bytesIn += chunk.length;
    this.#heartbeat.received();
    try {
      this.#splitter.push(chunk, this.#sink);
    } catch (err) {
      // Listener exceptions are the application's; only protocol errors are the router's fault.
      if (!(err instanceof ProtocolError)) throw err;
      this.#fail(socket, "decode-error", err.message);
    }
  }

  #onFrame(frame: Buffer): void {
    // Failed or closed earlier in this same chunk (possibly by a listener).
    if (this.#socket === null || this.#state === "closing") return;
    this.#framesIn++;
    const data = decodeBody(frame.subarray(4), this.#decodeLimits);
    if (this.#state === "registering") this.#onRegistered();
    switch (data.type) {
      case GossipType.Message:
        this.#owner.message(this, data);
        break;
      case GossipType.Suspect:
        this.#owner.suspect(this, data);
        break;
      case GossipType.GetMbrsRsp:
      case GossipType.GetMbrsRspLast:
        this.#onMembers(data);
        break;
      case GossipType.Heartbeat:
        break;
      default:
        this.#log.debug({ type: data.type }, "ignored a frame type a router does not send");
    }
  }

  #onRegistered(): void {
    if (this.#connectTimer !== null) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
    }
    if (this.#upSince > 0) this.#reconnects++; // registered before: this is a reconnect
    this.#attempt = 0;
    this.#upSince = Date.now();
    this.#setState("registered");
    this.#heartbeat.start();
    this.#owner.up(this);
    this.#owner.status({ type: "router-up", router: this.endpoint, reconnects: this.#reconnects });
  }

  #onMembers(data: GossipData): void {
    // An all-groups answer names each group "<<all-groups>>:<name>"; an empty one may carry no group.
    const name = data.group;
    const all = name === null || name.startsWith(ALL_GROUPS_PREFIX);
    const waiter = this.#waiters.find((w) => (all ? w.group === null : w.group === name));
    if (waiter === undefined) {
      this.#log.debug({ group: name }, "GET_MBRS answer nobody is waiting for (late, after a timeout?)");
      return;
    }
    const group = name === null ? "" : all ? name.slice(ALL_GROUPS_PREFIX.length) : name;
    for (const ping of data.pingData) waiter.members.push({ group, ping });
    if (data.type === GossipType.GetMbrsRspLast) {
      this.#removeWaiter(waiter);
      waiter.resolve(waiter.members);
    }
  }

  #removeWaiter(waiter: MembersWaiter): void {
    clearTimeout(waiter.timer);
    const i = this.#waiters.indexOf(waiter);
    if (i >= 0) this.#waiters.splice(i, 1);
  }

  #rejectWaiters(err: Error): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  #clearTimers(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#connectTimer = null;
    this.#reconnectTimer = null;
  }

  /** Ends the current socket for `reason` and schedules a reconnect. Stale sockets are ignored. */
  #fail(socket: net.Socket | null, reason: DownReason, message: string): void {
    if (socket === null || socket !== this.#socket) return;
    this.#socket = null;
    socket.destroy();
    if (this.#state === "closing" || this.#state === "closed") return;
    const wasUp = this.#state === "registered";
    this.#rejectWaiters(new TunnelError("TUNNEL_ROUTER_DOWN", `router ${this.#name} went down: ${message}`));
    this.#afterFailure(wasUp, reason, message);
  }

  #afterFailure(wasUp: boolean, reason: DownReason, message: string): void {
    this.#clearTimers();
    this.#heartbeat.stop();
    this.#lastError = { reason, message, at: Date.now() };
    this.#attempt++;
    // Leave `registered` before anyone hears of the loss, so no frame is routed here any more.
    this.#setState("reconnecting");
    if (wasUp) {
      this.#log.warn({ reason, err: message }, "router down");
      this.#owner.down(this);
      this.#owner.status({ type: "router-down", router: this.endpoint, reason, message });
    } else {
      this.#log.warn({ reason, err: message, attempt: this.#attempt }, "connect failed");
      this.#owner.status({
        type: "connect-failed",
        router: this.endpoint,
        reason,
        message,
        attempt: this.#attempt,
      });
    }
    // A listener may have closed the client in reaction to the event.
    if (this.#state !== "reconnecting") return;
    const delayMs = backoffDelay(this.#attempt, this.#opts.backoff);
    this.#owner.status({ type: "reconnecting", router: this.endpoint, attempt: this.#attempt, delayMs });
    if (this.#state !== "reconnecting") return;
    this.#reconnectTimer = setTimeout(() => this.#connect(), delayMs);
  }
}

function describeError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
