// The handshake of a mesh connection. Nothing but handshake frames is read before it completes
// (local-cluster.ts hands frames of a connection still handshaking here only).
//
// Without a cluster secret (local runs, tests): the side that opens the connection sends HELLO
// (protocol version, cluster, its member); the accepting side checks it and answers HELLO_ACK
// (its member) or REJECT and closes.
//
// With a cluster secret (secret.ts), mutual challenge-response (auth.ts):
//   dialer   -> AUTH_HELLO     version, cluster, dialer member, dialer nonce
//   acceptor -> AUTH_CHALLENGE acceptor member, acceptor nonce
//   dialer   -> AUTH_PROOF     HMAC(secret, "dialer" transcript)
//   acceptor -> AUTH_ACK       HMAC(secret, "acceptor" transcript)   (or REJECT and close)
// The dialer proves first, so the acceptor never computes a proof for someone who has not shown
// the secret. A member with a secret never opens a connection without a valid proof, and refuses
// a plain HELLO; a member without one refuses AUTH_HELLO (they cannot form one view: see the doc).
//
// Both sides check that the peer belongs to this cluster and site and is admitted. A REJECT says
// only "refused": the reason (which names what was expected) is logged here, rate-limited.
// A connection that does not complete its handshake in time is closed.
import { connect, type Socket } from "node:net";
import type { Logger } from "../observability/log.js";
import { newNonce, prove, RateLimitedWarning, verifyProof } from "./auth.js";
import { authTranscript, CLUSTER_PROTOCOL_VERSION, type ClusterFrame, encodeFrame } from "./codec.js";
import { type ConnectionHandlers, MeshConnection } from "./connection.js";
import { type Member, memberKey } from "./member.js";
import type { ResolvedClusterOptions } from "./options.js";
import type { ClusterSecret } from "./secret.js";

/** What the handshake needs from the member that runs it. */
export interface HandshakeOwner {
  /** This member, as HELLO and HELLO_ACK announce it. */
  local(): Member;
  isClosed(): boolean;
  /** A connection was made (accepted or dialed): the owner tracks it until it closes. */
  track(conn: MeshConnection): void;
  /** A frame that has no place in the handshake was received. */
  badFrame(): void;
  /** A handshake failed authentication (bad or missing proof) or was refused. */
  failed(kind: "auth" | "refused"): void;
}

type HandshakeOptions = Pick<
  ResolvedClusterOptions,
  "cluster" | "site" | "admit" | "maxFrame" | "suspectTimeoutMs" | "secret"
>;

/** The text of every REJECT: nothing a stranger can use (the reason is logged locally). */
export const REJECT_REASON = "refused";
/** Inbound connections still handshaking at once; more are closed on arrival (counted). */
export const MAX_PENDING_HANDSHAKES = 512;

/** A connection in its handshake. */
interface Pending {
  /** Settles the handshake (true = open). */
  readonly settle: (ok: boolean) => void;
  /** The secret for the whole handshake (null = unauthenticated mode). */
  readonly secret: ClusterSecret | null;
  /** This member as announced in this handshake. */
  self: Member;
  /** What the next frame from the peer must be. */
  expect: "hello" | "proof" | "challenge" | "ack";
  nonce: Uint8Array | null;
  peerNonce: Uint8Array | null;
  peer: Member | null;
}

export class Handshake {
  readonly #owner: HandshakeOwner;
  readonly #o: HandshakeOptions;
  readonly #handlers: ConnectionHandlers;
  readonly #log: Logger;
  readonly #warn: RateLimitedWarning;
  readonly #pending = new Map<MeshConnection, Pending>();
  #pendingInbound = 0;

  constructor(owner: HandshakeOwner, options: HandshakeOptions, handlers: ConnectionHandlers, log: Logger) {
    this.#owner = owner;
    this.#o = options;
    this.#handlers = handlers;
    this.#log = log;
    this.#warn = new RateLimitedWarning(log);
  }

  /** True when connections are authenticated with a cluster secret. */
  get authenticated(): boolean {
    return this.#o.secret !== null;
  }

  /** A peer connected to us: it has to complete the handshake in time. */
  accept(socket: Socket): void {
    if (this.#owner.isClosed()) {
      socket.destroy();
      return;
    }
    if (this.#pendingInbound >= MAX_PENDING_HANDSHAKES) {
      this.#owner.failed("refused");
      this.#warn.warn(
        { remote: `${socket.remoteAddress}:${socket.remotePort}`, pending: this.#pendingInbound },
        "too many mesh connections still handshaking: closing a new one",
      );
      socket.destroy();
      return;
    }
    const conn = new MeshConnection(socket, false, this.#o.maxFrame, this.#handlers, this.#log);
    this.#owner.track(conn);
    this.#pendingInbound++;
    // A peer that never completes its handshake does not keep the socket.
    const timer = setTimeout(() => conn.close("handshake not completed in time"), this.#timeout());
    let settled = false;
    this.#pending.set(conn, {
      settle: () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(conn);
        this.#pendingInbound--;
      },
      secret: this.#secret(),
      self: this.#owner.local(),
      expect: "hello",
      nonce: null,
      peerNonce: null,
      peer: null,
    });
  }

  /** Opens a connection and completes the handshake; null when refused, failed or timed out. */
  dial(host: string, port: number): Promise<MeshConnection | null> {
    if (this.#owner.isClosed()) return Promise.resolve(null);
    return new Promise((resolve) => {
      let socket: Socket;
      try {
        socket = connect({ host, port });
      } catch (err) {
        this.#log.debug({ host, port, err: (err as Error).message }, "cannot dial");
        resolve(null);
        return;
      }
      const conn = new MeshConnection(socket, true, this.#o.maxFrame, this.#handlers, this.#log);
      this.#owner.track(conn);
      const timer = setTimeout(() => conn.close("handshake timed out"), this.#timeout());
      const state: Pending = {
        settle: (ok) => {
          clearTimeout(timer);
          this.#pending.delete(conn);
          resolve(ok ? conn : null);
        },
        secret: this.#secret(),
        self: this.#owner.local(),
        expect: "challenge",
        nonce: null,
        peerNonce: null,
        peer: null,
      };
      this.#pending.set(conn, state);
      socket.once("connect", () => {
        const version = CLUSTER_PROTOCOL_VERSION;
        const { cluster } = this.#o;
        state.self = this.#owner.local();
        if (state.secret) {
          state.nonce = newNonce();
          conn.write(
            encodeFrame({ type: "auth-hello", version, cluster, member: state.self, nonce: state.nonce }),
          );
        } else {
          state.expect = "ack";
          conn.write(encodeFrame({ type: "hello", version, cluster, member: state.self }));
        }
      });
    });
  }

  /** A frame on a connection that is still handshaking. */
  onFrame(conn: MeshConnection, f: ClusterFrame): void {
    const state = this.#pending.get(conn);
    if (!state) {
      conn.close("handshake already settled");
      return;
    }
    if (conn.outbound) this.#onAnswer(conn, state, f);
    else this.#onHello(conn, state, f);
  }

  /** The connection closed: a handshake still pending failed. */
  closed(conn: MeshConnection): void {
    this.#pending.get(conn)?.settle(false);
  }

  #secret(): ClusterSecret | null {
    return this.#o.secret ? this.#o.secret() : null;
  }

  #timeout(): number {
    return Math.max(200, Math.min(2000, this.#o.suspectTimeoutMs));
  }

  // -------------------------------------------------------------------------------------------
  // Accepting side

  #onHello(conn: MeshConnection, state: Pending, f: ClusterFrame): void {
    if (state.expect === "proof" && f.type === "auth-proof") {
      this.#onProof(conn, state, f.proof);
      return;
    }
    if (state.expect !== "hello" || (f.type !== "hello" && f.type !== "auth-hello")) {
      this.#owner.badFrame();
      conn.close(`unexpected ${f.type} in the handshake`);
      return;
    }
    if (state.secret && f.type === "hello") {
      this.#authFailed(conn, "peer did not authenticate (no cluster secret on its side?)", f.member);
      return;
    }
    if (!state.secret && f.type === "auth-hello") {
      this.#authFailed(
        conn,
        "peer authenticates with a cluster secret but none is configured here",
        f.member,
      );
      return;
    }
    const refusal = this.#refusal(f.version, f.cluster, f.member);
    if (refusal) {
      this.#refuse(conn, refusal, f.member);
      return;
    }
    if (f.type === "auth-hello") {
      state.peer = f.member;
      state.peerNonce = f.nonce;
      state.nonce = newNonce();
      state.self = this.#owner.local();
      state.expect = "proof";
      conn.write(encodeFrame({ type: "auth-challenge", member: state.self, nonce: state.nonce }));
      return;
    }
    conn.write(encodeFrame({ type: "hello-ack", member: this.#owner.local() }));
    this.#opened(conn, state, f.member);
  }

  /** AUTH_PROOF: the dialer showed the secret (or the connection is refused). */
  #onProof(conn: MeshConnection, state: Pending, proof: Uint8Array): void {
    const secret = state.secret!;
    const peer = state.peer!;
    const t = (dir: "dialer" | "acceptor") =>
      authTranscript(dir, this.#o.cluster, peer, state.self, state.peerNonce!, state.nonce!);
    if (!verifyProof(secret, t("dialer"), proof)) {
      this.#authFailed(conn, "bad proof: the peer does not know the cluster secret", peer);
      return;
    }
    if (this.#owner.isClosed() || !this.#o.admit(peer)) {
      this.#refuse(conn, "not admitted", peer);
      return;
    }
    conn.write(encodeFrame({ type: "auth-ack", proof: prove(secret.current, t("acceptor")) }));
    this.#opened(conn, state, peer);
  }

  /** Why a HELLO is refused, or null when it is accepted. */
  #refusal(version: number, cluster: string, m: Member): string | null {
    if (version !== CLUSTER_PROTOCOL_VERSION) return `protocol version ${version}`;
    if (cluster !== this.#o.cluster) return `cluster "${cluster}" is not "${this.#o.cluster}"`;
    if (memberKey(m) === memberKey(this.#owner.local())) return "connected to itself";
    if (m.site !== this.#o.site) return `site "${m.site}" is not "${this.#o.site}"`;
    if (!this.#o.admit(m) || this.#owner.isClosed()) return "not admitted";
    return null;
  }

  // -------------------------------------------------------------------------------------------
  // Dialing side

  #onAnswer(conn: MeshConnection, state: Pending, f: ClusterFrame): void {
    if (f.type === "reject") {
      this.#log.debug({ remote: conn.remote, reason: f.reason }, "peer refused the connection");
      this.#fail(conn, state, `refused by peer: ${f.reason}`);
      return;
    }
    if (state.expect === "ack" && !state.secret && f.type === "hello-ack") {
      if (!this.#acceptable(conn, state, f.member)) return;
      this.#opened(conn, state, f.member);
      return;
    }
    if (state.expect === "challenge" && f.type === "auth-challenge") {
      if (!this.#acceptable(conn, state, f.member)) return;
      state.peer = f.member;
      state.peerNonce = f.nonce;
      state.expect = "ack";
      const t = authTranscript("dialer", this.#o.cluster, state.self, f.member, state.nonce!, f.nonce);
      conn.write(encodeFrame({ type: "auth-proof", proof: prove(state.secret!.current, t) }));
      return;
    }
    if (state.expect === "ack" && state.secret && state.peer && f.type === "auth-ack") {
      const t = authTranscript(
        "acceptor",
        this.#o.cluster,
        state.self,
        state.peer,
        state.nonce!,
        state.peerNonce!,
      );
      if (!verifyProof(state.secret, t, f.proof)) {
        this.#authFailed(conn, "bad proof: the peer does not know the cluster secret", state.peer, state);
        return;
      }
      this.#opened(conn, state, state.peer);
      return;
    }
    if (state.secret && (f.type === "hello-ack" || f.type === "auth-ack")) {
      // A peer that answers without a challenge has no secret (or is no member of ours).
      this.#authFailed(
        conn,
        "peer answered without authenticating (no cluster secret on its side?)",
        null,
        state,
      );
      return;
    }
    if (!state.secret && f.type === "auth-challenge") {
      this.#authFailed(conn, "peer requires a cluster secret but none is configured here", f.member, state);
      return;
    }
    this.#owner.badFrame();
    this.#fail(conn, state, `unexpected ${f.type} in the handshake`);
  }

  /** The dialer's checks of the member that answered; closes the connection when it fails them. */
  #acceptable(conn: MeshConnection, state: Pending, m: Member): boolean {
    const self = memberKey(m) === memberKey(state.self);
    if (self || !this.#o.admit(m) || m.site !== this.#o.site) {
      conn.close(self ? "connected to itself" : "peer not admitted", true);
      state.settle(false);
      return false;
    }
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Outcomes

  #opened(conn: MeshConnection, state: Pending, peer: Member): void {
    // Not a sign of life for liveness (a probe completes a handshake too): see local-cluster.ts.
    conn.open(peer);
    state.settle(true);
  }

  #fail(conn: MeshConnection, state: Pending, reason: string): void {
    conn.close(reason);
    state.settle(false);
  }

  /** Counted, logged (rate-limited, with the remote address) and closed; REJECT when accepting. */
  #authFailed(conn: MeshConnection, reason: string, claimed: Member | null, state?: Pending): void {
    this.#owner.failed("auth");
    this.#warn.warn(
      { remote: conn.remote, reason, claimed: claimed ? memberKey(claimed) : null },
      "mesh connection failed authentication: closing it",
    );
    if (!conn.outbound) conn.write(encodeFrame({ type: "reject", reason: REJECT_REASON }));
    conn.close(`authentication failed: ${reason}`, !conn.outbound);
    state?.settle(false);
  }

  #refuse(conn: MeshConnection, reason: string, claimed: Member): void {
    // Probing its own address (listed by discovery) is routine; anything else deserves a warning.
    const fields = { remote: conn.remote, reason, claimed: memberKey(claimed) };
    if (reason === "connected to itself") this.#log.debug(fields, "refusing a mesh connection");
    else {
      this.#owner.failed("refused");
      this.#warn.warn(fields, "refusing a mesh connection");
    }
    conn.write(encodeFrame({ type: "reject", reason: REJECT_REASON }));
    conn.close(`refused: ${reason}`, true);
  }
}
