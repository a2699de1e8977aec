// The router's output path: frames queued per destination while one read is routed, one write per
// destination when it is done (flush), and back-pressure: a receiver over --max-queue pauses the
// senders that fill it until it is back under half, and is disconnected if it stays over for
// --slow-timeout. A receiver congested for longer than --congestion-grace stops pausing senders:
// multicast copies for it are dropped (counted) until it drains, so one member that does not read
// cannot stall its group for --slow-timeout; unicast senders to it stay paused (a unicast is never
// dropped for congestion). Undelivered frames are counted (and logged at most once a second per
// reason).
import type { Logger } from "../observability/log.js";
import { GossipType } from "../protocol/types.js";
import type { ClientConnection } from "./connection.js";
import type { ResolvedRouterOptions } from "./options.js";
import type { RouterCounters, UndeliveredReason } from "./stats.js";

/** At most one debug line per reason per interval for undelivered frames (plus a suppressed count). */
const UNDELIVERED_LOG_INTERVAL_MS = 1_000;

/** What the output path needs from the router. */
export interface ForwardingOwner {
  readonly options: ResolvedRouterOptions;
  readonly counters: RouterCounters;
  /** A receiver stayed congested for slowTimeoutMs: close it as lost. */
  slowReceiver(dest: ClientConnection): void;
}

export class Forwarder {
  readonly #owner: ForwardingOwner;
  readonly #log: Logger;
  // Routing state of the read being processed (single-threaded: one at a time).
  #chunk: Buffer | null = null;
  readonly #touched: ClientConnection[] = [];
  #copyOf: Buffer | null = null;
  #copy: Buffer | null = null;
  readonly #undeliveredLog = new Map<string, { at: number; suppressed: number }>();

  constructor(owner: ForwardingOwner, log: Logger) {
    this.#owner = owner;
    this.#log = log;
  }

  /** The read whose frames are routed next (null once it is done): received frames are slices of it. */
  set chunk(chunk: Buffer | null) {
    this.#chunk = chunk;
    if (chunk === null) this.#copyOf = this.#copy = null;
  }

  /** Queues a received MESSAGE frame for `dest`: a slice of the current chunk when it lies in it. */
  enqueueSlice(dest: ClientConnection, frame: Buffer, type: GossipType): void {
    const chunk = this.#chunk;
    const start = chunk ? frame.byteOffset - chunk.byteOffset : -1;
    if (!chunk || frame.buffer !== chunk.buffer || start < 0 || start + frame.length > chunk.length) {
      // The splitter assembled this frame from several reads in its own (reused) buffer.
      this.enqueueBuffer(dest, this.#ownedCopy(frame), type);
      return;
    }
    if (dest.state !== "open") {
      this.undelivered("receiver-closed", 1, dest);
      return;
    }
    dest.addSlice(chunk, start, start + frame.length);
    this.#counted(dest, type, frame.length);
  }

  /** Queues one copy of a received multicast for `dest`, unless `dest` is shedding them. */
  enqueueMulticast(dest: ClientConnection, frame: Buffer): void {
    if (dest.shedding) {
      this.undelivered("receiver-congested", 1, dest);
      return;
    }
    this.enqueueSlice(dest, frame, GossipType.Message);
  }

  /** Queues a frame the router owns (an encoded reply) for `dest`. */
  enqueueBuffer(dest: ClientConnection, buf: Buffer, type: GossipType): void {
    if (dest.state !== "open") {
      this.undelivered("receiver-closed", 1, dest);
      return;
    }
    dest.addBuffer(buf);
    this.#counted(dest, type, buf.length);
  }

  /** Writes every batch collected since the last flush; pauses `sender` for congested receivers. */
  flush(sender: ClientConnection | null): void {
    const touched = this.#touched;
    const limit = this.#owner.options.maxQueueBytes;
    for (let i = 0; i < touched.length; i++) {
      const dest = touched[i]!;
      if (!dest.writable) {
        this.undelivered("receiver-closed", dest.dropBatch(), dest);
        continue;
      }
      const frames = dest.flushBatch();
      if (frames > 0) this.#owner.counters.flushed(frames);
      if (dest.queuedBytes > limit) this.#congested(dest, sender);
    }
    touched.length = 0;
  }

  /** After each completed write: a congested receiver back under half the limit releases its senders. */
  checkDrained(dest: ClientConnection): void {
    if (dest.congested && dest.queuedBytes <= this.#owner.options.maxQueueBytes / 2) this.#release(dest);
  }

  /** Drops every back-pressure link of a closing connection (its paused senders resume). */
  unlink(conn: ClientConnection): void {
    this.#release(conn);
    for (const r of conn.blockedBy) r.pausedSenders.delete(conn);
    conn.blockedBy.clear();
  }

  undelivered(reason: UndeliveredReason, n: number, conn: ClientConnection): void {
    if (n <= 0) return;
    this.#owner.counters.undeliveredFrames(reason, n);
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

  /** Counts a queued frame and marks `dest` for the next flush. */
  #counted(dest: ClientConnection, type: GossipType, bytes: number): void {
    const counters = this.#owner.counters;
    counters.framesOut[type]!++;
    counters.bytesOut[type]! += bytes;
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

  #congested(dest: ClientConnection, sender: ClientConnection | null): void {
    if (!dest.congested) {
      dest.congested = true;
      dest.slowTimer = setTimeout(() => this.#graceOver(dest), this.#owner.options.congestionGraceMs);
      dest.slowTimer.unref();
      this.#log.debug({ conn: dest.id, remote: dest.remote, queued: dest.queuedBytes }, "receiver congested");
    }
    if (sender && sender !== dest && sender.state === "open" && !dest.pausedSenders.has(sender)) {
      dest.pausedSenders.add(sender);
      if (sender.blockedBy.size === 0) {
        sender.socket.pause();
        this.#owner.counters.backpressurePauses++;
      }
      sender.blockedBy.add(dest);
    } else if (sender === dest && !dest.blockedBy.has(dest)) {
      // A client that multicasts to itself and does not read: stop reading it as well.
      dest.pausedSenders.add(dest);
      if (dest.blockedBy.size === 0) {
        dest.socket.pause();
        this.#owner.counters.backpressurePauses++;
      }
      dest.blockedBy.add(dest);
    }
  }

  #release(dest: ClientConnection): void {
    dest.congested = false;
    dest.shedding = false;
    if (dest.slowTimer) clearTimeout(dest.slowTimer);
    dest.slowTimer = null;
    this.#resumeSenders(dest);
  }

  /**
   * Still congested after --congestion-grace: its senders resume and multicast copies for it are
   * dropped from now on; unicasts to it pause their senders again. It is disconnected if it is
   * still congested at --slow-timeout.
   */
  #graceOver(dest: ClientConnection): void {
    dest.slowTimer = null;
    if (!dest.congested || dest.state !== "open") return;
    const o = this.#owner.options;
    dest.shedding = true;
    this.#owner.counters.congestionSheds++;
    this.#log.debug(
      {
        conn: dest.id,
        remote: dest.remote,
        queued: dest.queuedBytes,
        congestionGraceMs: o.congestionGraceMs,
      },
      "receiver still congested: multicast copies for it are dropped until it drains",
    );
    this.#resumeSenders(dest);
    dest.slowTimer = setTimeout(() => this.#slowReceiver(dest), o.slowTimeoutMs - o.congestionGraceMs);
    dest.slowTimer.unref();
  }

  #resumeSenders(dest: ClientConnection): void {
    for (const s of dest.pausedSenders) {
      s.blockedBy.delete(dest);
      if (s.blockedBy.size === 0 && s.state === "open") {
        // The expiry and frame clocks restart when we listen again.
        s.lastSeen = Date.now();
        if (s.partialSince > 0) s.partialSince = s.lastSeen;
        s.socket.resume();
      }
    }
    dest.pausedSenders.clear();
  }

  #slowReceiver(dest: ClientConnection): void {
    dest.slowTimer = null;
    if (!dest.congested || dest.state !== "open") return;
    this.#owner.counters.slowReceiverDisconnects++;
    this.#log.warn(
      {
        conn: dest.id,
        remote: dest.remote,
        queued: dest.queuedBytes,
        slowTimeoutMs: this.#owner.options.slowTimeoutMs,
      },
      "slow receiver disconnected: output queue stayed over --max-queue",
    );
    this.#owner.slowReceiver(dest);
  }
}
