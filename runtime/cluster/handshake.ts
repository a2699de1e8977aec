// The handshake of a mesh connection. The side that opens it sends HELLO (protocol version,
// cluster, its member); the accepting side checks it and answers HELLO_ACK (its member) or REJECT
// (the reason) and closes. Both sides check that the peer belongs to this site and is admitted.
// A connection that does not complete its handshake in time is closed.
import { connect, type Socket } from "node:net";
import type { Logger } from "../observability/log.js";
import { CLUSTER_PROTOCOL_VERSION, type ClusterFrame, encodeFrame } from "./codec.js";
import { type ConnectionHandlers, MeshConnection } from "./connection.js";
import { type Member, memberKey } from "./member.js";
import type { ResolvedClusterOptions } from "./options.js";

/** What the handshake needs from the member that runs it. */
export interface HandshakeOwner {
  /** This member, as HELLO and HELLO_ACK announce it. */
  local(): Member;
  isClosed(): boolean;
  /** A connection was made (accepted or dialed): the owner tracks it until it closes. */
  track(conn: MeshConnection): void;
  /** `key` completed a handshake (it counts as heard from). */
  heard(key: string): void;
  /** A frame that has no place in the handshake was received. */
  badFrame(): void;
}

type HandshakeOptions = Pick<
  ResolvedClusterOptions,
  "cluster" | "site" | "admit" | "maxFrame" | "suspectTimeoutMs"
>;

export class Handshake {
  readonly #owner: HandshakeOwner;
  readonly #o: HandshakeOptions;
  readonly #handlers: ConnectionHandlers;
  readonly #log: Logger;
  /** Connections still in their handshake -> how to settle it (true = open). */
  readonly #pending = new Map<MeshConnection, (ok: boolean) => void>();

  constructor(owner: HandshakeOwner, options: HandshakeOptions, handlers: ConnectionHandlers, log: Logger) {
    this.#owner = owner;
    this.#o = options;
    this.#handlers = handlers;
    this.#log = log;
  }

  /** A peer connected to us: it has to send HELLO in time. */
  accept(socket: Socket): void {
    if (this.#owner.isClosed()) {
      socket.destroy();
      return;
    }
    const conn = new MeshConnection(socket, false, this.#o.maxFrame, this.#handlers, this.#log);
    this.#owner.track(conn);
    // A peer that never completes its handshake does not keep the socket.
    const timer = setTimeout(() => conn.close("no HELLO in time"), this.#timeout());
    this.#pending.set(conn, () => {
      clearTimeout(timer);
      this.#pending.delete(conn);
    });
  }

  /** Opens a connection and completes the handshake; null when refused, failed or timed out. */
  dial(host: string, port: number): Promise<MeshConnection | null> {
    if (this.#owner.isClosed()) return Promise.resolve(null);
    return new Promise((resolve) => {
      const socket = connect({ host, port });
      const conn = new MeshConnection(socket, true, this.#o.maxFrame, this.#handlers, this.#log);
      this.#owner.track(conn);
      const timer = setTimeout(() => conn.close("handshake timed out"), this.#timeout());
      this.#pending.set(conn, (ok) => {
        clearTimeout(timer);
        this.#pending.delete(conn);
        resolve(ok ? conn : null);
      });
      socket.once("connect", () => {
        conn.write(
          encodeFrame({
            type: "hello",
            version: CLUSTER_PROTOCOL_VERSION,
            cluster: this.#o.cluster,
            member: this.#owner.local(),
          }),
        );
      });
    });
  }

  /** A frame on a connection that is still handshaking. */
  onFrame(conn: MeshConnection, f: ClusterFrame): void {
    if (conn.outbound) this.#onAnswer(conn, f);
    else this.#onHello(conn, f);
  }

  /** The connection closed: a handshake still pending failed. */
  closed(conn: MeshConnection): void {
    this.#pending.get(conn)?.(false);
  }

  #timeout(): number {
    return Math.max(200, Math.min(2000, this.#o.suspectTimeoutMs));
  }

  /** Accepting side: HELLO -> HELLO_ACK, or REJECT and close. */
  #onHello(conn: MeshConnection, f: ClusterFrame): void {
    if (f.type !== "hello") {
      this.#owner.badFrame();
      conn.close(`expected HELLO, got ${f.type}`);
      return;
    }
    const refusal = this.#refusal(f);
    if (refusal) {
      this.#refuse(conn, refusal);
      return;
    }
    conn.write(encodeFrame({ type: "hello-ack", member: this.#owner.local() }));
    conn.open(f.member);
    this.#pending.get(conn)?.(true);
    this.#owner.heard(memberKey(f.member));
  }

  /** Dialing side: HELLO_ACK opens the connection; REJECT or anything else closes it. */
  #onAnswer(conn: MeshConnection, f: ClusterFrame): void {
    const done = this.#pending.get(conn);
    if (f.type === "hello-ack") {
      const k = memberKey(f.member);
      const self = k === memberKey(this.#owner.local());
      if (self || !this.#o.admit(f.member) || f.member.site !== this.#o.site) {
        conn.close(self ? "connected to itself" : "peer not admitted", true);
        done?.(false);
        return;
      }
      conn.open(f.member);
      this.#owner.heard(k);
      done?.(true);
      return;
    }
    if (f.type === "reject") {
      this.#log.debug({ remote: conn.remote, reason: f.reason }, "peer refused the connection");
    } else {
      this.#owner.badFrame();
    }
    conn.close(f.type === "reject" ? `refused by peer: ${f.reason}` : `expected HELLO_ACK, got ${f.type}`);
    done?.(false);
  }

  /** Why a HELLO is refused, or null when it is accepted. */
  #refusal(f: Extract<ClusterFrame, { type: "hello" }>): string | null {
    if (f.version !== CLUSTER_PROTOCOL_VERSION) return `protocol version ${f.version}`;
    if (f.cluster !== this.#o.cluster) return `cluster "${f.cluster}" is not "${this.#o.cluster}"`;
    if (memberKey(f.member) === memberKey(this.#owner.local())) return "connected to itself";
    if (f.member.site !== this.#o.site) return `site "${f.member.site}" is not "${this.#o.site}"`;
    if (!this.#o.admit(f.member) || this.#owner.isClosed()) return "not admitted";
    return null;
  }

  #refuse(conn: MeshConnection, reason: string): void {
    // Probing its own address (listed by discovery) is routine; anything else deserves a warning.
    const level = reason === "connected to itself" ? "debug" : "warn";
    this.#log[level]({ remote: conn.remote, reason }, "refusing a mesh connection");
    conn.write(encodeFrame({ type: "reject", reason }));
    conn.close(`refused: ${reason}`, true);
  }
}
