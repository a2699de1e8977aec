// One TCP connection of the mesh: cuts the stream into frames, decodes them, writes frames and
// closes with a logged reason. Knows nothing about membership.
import type { Socket } from "node:net";
import type { Logger } from "../observability/log.js";
import type { FrameSink, FrameSplitter } from "../protocol/splitter.js";
import { ClusterCodecError, type ClusterFrame, decodeFrame, meshSplitter } from "./codec.js";
import type { Member } from "./member.js";

export type ConnectionStatus = "handshaking" | "open" | "closed";

/**
 * Most bytes read from a peer before its handshake completes: the handshake frames (well under
 * 2 KiB) and nothing else, since no side sends more before the handshake completes. A stranger
 * cannot park a partial 4 MiB frame on an unauthenticated connection.
 */
export const HANDSHAKE_MAX_BYTES = 4096;

/**
 * Frames written during one turn of the event loop are sent together (one socket write, so one
 * syscall for a whole batch instead of one per frame, as JGroups' bundler does). A bundle is
 * written early once it holds this many bytes; a frame this large is written on its own.
 */
export const BUNDLE_MAX_BYTES = 64 * 1024;

export interface ConnectionHandlers {
  frame(conn: MeshConnection, frame: ClusterFrame): void;
  closed(conn: MeshConnection, reason: string): void;
  /** The socket's write buffer emptied. */
  drain(conn: MeshConnection): void;
  /** A handler threw (a bug): the connection is closed; the owner logs and counts it. */
  internalError(where: string, err: unknown): void;
}

export class MeshConnection {
  readonly #socket: Socket;
  readonly #splitter: FrameSplitter;
  /** Bodies cut from the chunk being read; handled once the whole chunk split without error. */
  readonly #bodies: Buffer[] = [];
  readonly #sink: FrameSink = { frame: (f) => this.#bodies.push(f.subarray(4)) };
  readonly #handlers: ConnectionHandlers;
  readonly #log: Logger;
  #status: ConnectionStatus = "handshaking";
  #destroyTimer: NodeJS.Timeout | null = null;
  /** The member at the other end, known once the handshake is done. */
  peer: Member | null = null;
  bytesIn = 0;
  bytesOut = 0;
  /** Bytes still in the write buffer when the connection closed (lost, unless closed gracefully). */
  unsentBytes = 0;
  /** Frames written in this turn of the event loop, not yet handed to the socket. */
  #bundle: Buffer[] = [];
  #bundleBytes = 0;
  #flushScheduled = false;
  readonly #flushSoon = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  constructor(
    socket: Socket,
    /** True when this side opened the connection. */
    readonly outbound: boolean,
    maxFrame: number,
    handlers: ConnectionHandlers,
    log: Logger,
  ) {
    this.#socket = socket;
    this.#splitter = meshSplitter(maxFrame);
    this.#handlers = handlers;
    this.#log = log;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("drain", () => this.#guard("drain", () => this.#handlers.drain(this)));
    socket.on("error", (err) =>
      this.#finish(`socket error: ${(err as NodeJS.ErrnoException).code ?? err.message}`),
    );
    socket.on("close", () => {
      if (this.#destroyTimer) clearTimeout(this.#destroyTimer);
      this.#finish("closed by peer");
    });
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  /** `ip:port` of the other end, for logs. */
  get remote(): string {
    return `${this.#socket.remoteAddress}:${this.#socket.remotePort}`;
  }

  /** Bytes written but not yet handed to the kernel (the bundle of this tick included). */
  get bufferedBytes(): number {
    return this.#socket.writableLength + this.#bundleBytes;
  }

  /** Marks the handshake done. */
  open(peer: Member): void {
    if (this.#status === "closed") return;
    this.peer = peer;
    this.#status = "open";
  }

  /**
   * Writes an encoded frame: it joins this turn's bundle, sent once the event loop has handled
   * the I/O of this turn (setImmediate: every chunk read in this turn adds to the same bundle; no
   * timer, so batching adds no latency). The frame must not be modified afterwards.
   * False when the socket's buffer is over its high-water mark.
   */
  write(frame: Buffer): boolean {
    if (this.#status === "closed") return false;
    this.bytesOut += frame.length;
    if (frame.length >= BUNDLE_MAX_BYTES) {
      this.#flush();
      return this.#socket.write(frame);
    }
    if (this.#bundleBytes + frame.length > BUNDLE_MAX_BYTES) this.#flush();
    this.#bundle.push(frame);
    this.#bundleBytes += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flushSoon);
    }
    return this.#socket.writableLength + this.#bundleBytes < this.#socket.writableHighWaterMark;
  }

  /** Hands this tick's bundle to the socket as one write. */
  #flush(): void {
    const n = this.#bundle.length;
    if (n === 0 || this.#status === "closed") return;
    const bytes = n === 1 ? this.#bundle[0]! : Buffer.concat(this.#bundle, this.#bundleBytes);
    this.#bundle = [];
    this.#bundleBytes = 0;
    // A bundle the socket takes without going over its mark emits no 'drain': tell the owner the
    // bytes left our hands, so a link that was over its own mark can be released.
    if (this.#socket.write(bytes)) this.#guard("drain", () => this.#handlers.drain(this));
  }

  /**
   * Closes the connection. `graceful` flushes what was written first (leave, reject); otherwise
   * the socket is destroyed at once. The reason is logged and passed to the `closed` handler.
   */
  close(reason: string, graceful = false): void {
    if (this.#status === "closed") return;
    if (graceful) {
      this.#flush();
      this.#socket.end();
      // A peer that never closes its side must not hold the socket open forever.
      this.#destroyTimer = setTimeout(() => this.#socket.destroy(), 1000);
      this.#destroyTimer.unref();
      this.#finish(reason);
    } else {
      this.#finish(reason);
      this.#socket.destroy();
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#status === "closed") return;
    this.bytesIn += chunk.length;
    if (this.#status === "handshaking" && this.bytesIn > HANDSHAKE_MAX_BYTES) {
      this.#badInput(
        new ClusterCodecError(
          "BAD_LENGTH",
          `more than ${HANDSHAKE_MAX_BYTES} bytes before the handshake completed`,
        ),
      );
      return;
    }
    const bodies = this.#bodies;
    bodies.length = 0;
    try {
      this.#splitter.push(chunk, this.#sink);
    } catch (err) {
      bodies.length = 0;
      this.#badInput(err);
      return;
    }
    for (const body of bodies) {
      let frame: ClusterFrame;
      try {
        frame = decodeFrame(body);
      } catch (err) {
        this.#badInput(err);
        return;
      }
      this.#guard("frame handler", () => this.#handlers.frame(this, frame));
      if (this.status === "closed") return;
    }
  }

  #badInput(err: unknown): void {
    const code = err instanceof ClusterCodecError ? err.code : "UNKNOWN";
    this.#log.warn(
      { remote: this.remote, code, err: (err as Error).message },
      "bad frame on mesh connection: closing it",
    );
    this.close(`bad frame (${code}): ${(err as Error).message}`);
  }

  #finish(reason: string): void {
    if (this.#status === "closed") return;
    this.unsentBytes = this.bufferedBytes;
    this.#status = "closed";
    this.#bundle = [];
    this.#bundleBytes = 0;
    this.#guard("close handler", () => this.#handlers.closed(this, reason));
  }

  /**
   * Runs a handler so that nothing it throws leaves the socket's event handler (that would be an
   * uncaught exception: the process dies). A throw is a bug: reported, and the connection closed.
   */
  #guard(where: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      try {
        this.#handlers.internalError(where, err);
      } catch {
        // The report itself failed: nothing more can be done safely here.
      }
      if (this.#status !== "closed") this.close(`internal error in the ${where}`);
    }
  }
}
