// One client connection of the router: the socket, its frame splitter, the output batch collected
// while one read is being routed, write accounting (frames still in flight) and the back-pressure
// links (which receivers paused this sender, which senders this receiver paused).
import type net from "node:net";
import { type FrameSink, FrameSplitter } from "../protocol/splitter.js";
import { ConnectionAuth } from "./policy.js";
import type { Registration, RegistrationOwner } from "./registry.js";
import type { CloseReason } from "./stats.js";

/**
 * Lifecycle of a client connection; it only moves forward:
 * - `open`: frames are read and routed;
 * - `closing`: our side is closed (GRACEFUL_CLOSE sent or socket destroyed), registrations removed;
 * - `closed`: the socket is gone and the router forgot the connection.
 */
export type ConnectionState = "open" | "closing" | "closed";

const STATE_ORDER: Readonly<Record<ConnectionState, number>> = { open: 0, closing: 1, closed: 2 };

/** Longest route header (group + dest bytes) the per-connection route cache remembers. */
export const ROUTE_CACHE_MAX = 256;
/** A batch of several pieces up to this size is concatenated; above it, written with writev. */
const CONCAT_MAX_BYTES = 16 * 1024;

/** FIFO of frame counts, one entry per socket.write still pending (ring buffer, no shift()). */
class CountQueue {
  #items = new Float64Array(16);
  #head = 0;
  #size = 0;

  push(n: number): void {
    if (this.#size === this.#items.length) {
      const bigger = new Float64Array(this.#items.length * 2);
      for (let i = 0; i < this.#size; i++) bigger[i] = this.#items[(this.#head + i) % this.#items.length]!;
      this.#items = bigger;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#size) % this.#items.length] = n;
    this.#size++;
  }

  shift(): number {
    if (this.#size === 0) return 0;
    const n = this.#items[this.#head]!;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return n;
  }
}

export class ClientConnection implements RegistrationOwner {
  readonly registrations = new Set<Registration>();
  readonly splitter: FrameSplitter;
  /** "ip:port" of the peer, for logs. */
  readonly remote: string;
  #state: ConnectionState = "open";
  #closeReason: CloseReason | null = null;
  /** Date.now() of the last bytes received (expiry). */
  lastSeen = Date.now();
  /** Date.now() of the accept (first-frame timeout). */
  readonly acceptedAt = this.lastSeen;
  /** Complete frames received. */
  framesReceived = 0;
  /** Date.now() of the first byte of the frame being reassembled; 0 when none is (frame timeout). */
  partialSince = 0;
  /** Bytes of the splitter's buffer counted in the router's PartialFrameBudget. */
  heldBytes = 0;
  /** Set by the router once; the splitter calls it for every frame. */
  sink: FrameSink | null = null;
  /** Identity and authorization state (policy.ts). */
  readonly auth = new ConnectionAuth();

  // Route cache: the last MESSAGE route header seen on this connection (raw bytes after the type
  // byte up to the end of the dest address) and where it led, valid while the registry generation
  // is unchanged. Senders usually talk to the same destination frame after frame.
  readonly cacheBytes = Buffer.allocUnsafeSlow(ROUTE_CACHE_MAX);
  cacheLen = -1;
  cacheGeneration = -1;
  cacheTarget: unknown = null;

  // Output batch of the current read: a contiguous run [runStart, runEnd) of `runChunk`, plus
  // earlier runs / copied frames in `pending`, all written with one socket.write at flush time.
  touched = false;
  readonly pending: Buffer[] = [];
  runChunk: Buffer | null = null;
  runStart = 0;
  runEnd = 0;
  batchFrames = 0;

  /** Frames handed to socket.write whose write has not completed yet. */
  inFlightFrames = 0;
  readonly #writes = new CountQueue();

  // Back-pressure. A receiver over the queue limit is "congested"; the senders that wrote to it
  // meanwhile are paused until its queue is back under half the limit.
  congested = false;
  /** Congested past --congestion-grace: multicast copies for it are dropped, its senders not paused. */
  shedding = false;
  slowTimer: NodeJS.Timeout | null = null;
  /** Senders paused because of this receiver. */
  readonly pausedSenders = new Set<ClientConnection>();
  /** Receivers because of which this connection is paused. */
  readonly blockedBy = new Set<ClientConnection>();

  /** Called after each completed write (the router re-checks congestion there). */
  onWritten: ((conn: ClientConnection) => void) | null = null;
  readonly #writeDone = (err?: Error | null): void => {
    // Node reports success for writes cancelled by destroy(): only count completions before it.
    if (err || this.socket.destroyed) return;
    this.inFlightFrames -= this.#writes.shift();
    this.onWritten?.(this);
  };

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    maxFrame: number,
    /** "ip:port" captured at the TCP accept (a TLS socket may have lost it by the time it errs). */
    remote?: string,
  ) {
    // Exact buffers: the router's PartialFrameBudget bounds what they hold together.
    this.splitter = new FrameSplitter({ maxFrame, exactReserve: true });
    this.remote = remote ?? `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Why the connection is closing (set by the move to `closing`), or null while open. */
  get closeReason(): CloseReason | null {
    return this.#closeReason;
  }

  /**
   * The one place the state changes: moves forward to `next` (with `reason` when it is
   * `closing`). False, and nothing changes, when the connection is already there or past it.
   */
  setState(next: "closing", reason: CloseReason): boolean;
  setState(next: "closed"): boolean;
  setState(next: Exclude<ConnectionState, "open">, reason?: CloseReason): boolean {
    if (STATE_ORDER[next] <= STATE_ORDER[this.#state]) return false;
    this.#state = next;
    if (reason !== undefined) this.#closeReason = reason;
    return true;
  }

  /** Bytes queued in Node and libuv for this socket. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  get writable(): boolean {
    return this.#state === "open" && this.socket.writable && !this.socket.destroyed;
  }

  /** Adds a frame that lies inside `chunk` at [start, end) to the batch, extending the current run if adjacent. */
  addSlice(chunk: Buffer, start: number, end: number): void {
    if (this.runChunk === chunk && this.runEnd === start) {
      this.runEnd = end;
    } else {
      this.closeRun();
      this.runChunk = chunk;
      this.runStart = start;
      this.runEnd = end;
    }
    this.batchFrames++;
  }

  /** Adds a frame that the batch must own (a copy, or a freshly encoded reply). */
  addBuffer(buf: Buffer): void {
    this.closeRun();
    this.pending.push(buf);
    this.batchFrames++;
  }

  closeRun(): void {
    if (this.runChunk) {
      this.pending.push(this.runChunk.subarray(this.runStart, this.runEnd));
      this.runChunk = null;
    }
  }

  /** Writes the batch with one socket.write (the caller checked `writable`). Returns its frame count. */
  flushBatch(): number {
    this.closeRun();
    const frames = this.batchFrames;
    this.batchFrames = 0;
    this.touched = false;
    if (frames === 0) return 0;
    const pending = this.pending;
    this.inFlightFrames += frames;
    this.#writes.push(frames);
    if (pending.length === 1) {
      this.socket.write(pending[0]!, this.#writeDone);
    } else {
      let bytes = 0;
      for (const b of pending) bytes += b.length;
      if (bytes <= CONCAT_MAX_BYTES) {
        // Small pieces: one copy is cheaper than a writev of many tiny buffers.
        this.socket.write(Buffer.concat(pending, bytes), this.#writeDone);
      } else {
        // Large pieces (typically a long run of the read chunk plus a frame reassembled by the
        // splitter): one writev, no copy. Only the last write carries the completion callback.
        this.socket.cork();
        const last = pending.length - 1;
        for (let i = 0; i < last; i++) this.socket.write(pending[i]!);
        this.socket.write(pending[last]!, this.#writeDone);
        this.socket.uncork();
      }
    }
    pending.length = 0;
    return frames;
  }

  /** Discards the batch (connection closing). Returns how many frames it held. */
  dropBatch(): number {
    const frames = this.batchFrames;
    this.batchFrames = 0;
    this.touched = false;
    this.pending.length = 0;
    this.runChunk = null;
    return frames;
  }
}
