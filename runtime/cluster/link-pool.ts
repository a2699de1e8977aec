// The links of one member: where it sends to each peer. A link is the connection this member
// opened to that peer (see local-cluster.ts: a member sends only on connections it opened), plus
// the frames written before that connection was open. The pool dials, queues, tracks the buffers
// against the high-water mark ('drain'), and reports a link that cannot be made to its owner.
import type { Logger } from "../observability/log.js";
import { DATA_OVERHEAD, FrameType } from "./codec.js";
import type { MeshConnection } from "./connection.js";
import { type Member, memberKey } from "./member.js";

/** Where this member sends to one peer. */
export interface Link {
  readonly key: string;
  readonly member: Member;
  conn: MeshConnection | null;
  dialing: boolean;
  /** Frames written before the connection was open (bounded by the BUFFER_FULL limit). */
  queue: Buffer[];
  queuedBytes: number;
  lastUsed: number;
}

/** What the pool needs from the member that owns it. */
export interface LinkPoolOwner {
  /** Opens a connection and completes the handshake; null when refused, failed or timed out. */
  dial(host: string, port: number): Promise<MeshConnection | null>;
  /** True once the member is closed: no more dials, no 'drain'. */
  isClosed(): boolean;
  /** No link could be made to `key` (its queued frames are dropped): suspect that member. */
  failed(key: string, reason: string): void;
  /** Every link that was over the high-water mark is back under it. */
  drained(): void;
}

export class LinkPool {
  readonly #owner: LinkPoolOwner;
  readonly #highWaterMark: number;
  readonly #log: Logger;
  readonly #links = new Map<string, Link>();
  /** Keys of the links over the high-water mark since a send said so. */
  readonly #congested = new Set<string>();
  #drainPending = false;
  /** DATA frames dropped because their link could not be made. */
  messagesLost = 0;

  constructor(owner: LinkPoolOwner, highWaterMark: number, log: Logger) {
    this.#owner = owner;
    this.#highWaterMark = highWaterMark;
    this.#log = log;
  }

  get(key: string): Link | undefined {
    return this.#links.get(key);
  }

  values(): IterableIterator<Link> {
    return this.#links.values();
  }

  delete(key: string): void {
    this.#links.delete(key);
  }

  /** Forgets every link (the member is closing; their connections are closed by the owner). */
  clear(): void {
    this.#links.clear();
    this.#congested.clear();
  }

  /** Bytes waiting to be written on all links. */
  bufferedBytes(): number {
    let buffered = 0;
    for (const l of this.#links.values()) buffered += this.buffered(l);
    return buffered;
  }

  /** The link to `m`, created (and dialed) when there is none. */
  link(m: Member): Link {
    const key = memberKey(m);
    let l = this.#links.get(key);
    if (!l) {
      l = newLink(m);
      this.#links.set(key, l);
    }
    if (!l.conn && !l.dialing && !this.#owner.isClosed()) void this.dial(l);
    return l;
  }

  async dial(l: Link): Promise<void> {
    l.dialing = true;
    const conn = await this.#owner.dial(l.member.host, l.member.port);
    l.dialing = false;
    if (this.#links.get(l.key) !== l || this.#owner.isClosed()) {
      conn?.close("link no longer needed");
      return;
    }
    if (!conn || memberKey(conn.peer!) !== l.key) {
      conn?.close(`expected ${l.key} at ${l.member.host}:${l.member.port}`);
      this.#failed(l, conn ? "another member answers at its address" : "cannot connect");
      return;
    }
    this.attach(l, conn);
  }

  /** A probe connection to a member without a link becomes its link. */
  adopt(conn: MeshConnection, peer: Member): void {
    const l = newLink(peer);
    this.#links.set(l.key, l);
    this.attach(l, conn);
  }

  attach(l: Link, conn: MeshConnection): void {
    l.conn = conn;
    const queued = l.queue;
    l.queue = [];
    l.queuedBytes = 0;
    for (const f of queued) conn.write(f);
    this.checkDrain(l);
  }

  write(l: Link, frame: Buffer): void {
    l.lastUsed = Date.now();
    if (l.conn?.status === "open") {
      l.conn.write(frame);
    } else {
      l.queue.push(frame);
      l.queuedBytes += frame.length;
      if (!l.conn && !l.dialing && !this.#owner.isClosed()) void this.dial(l);
    }
  }

  /** write() of one frame to each of `members` (links made when needed) but the one keyed `except`. */
  writeEach(members: readonly Member[], frame: Buffer, except?: string): void {
    for (const m of members) if (memberKey(m) !== except) this.write(this.link(m), frame);
  }

  /** `frame` on every idle open link to `members` but `except` (a busy link proves life by itself). */
  heartbeat(members: readonly Member[], frame: Buffer, except: string): void {
    for (const m of members) {
      if (memberKey(m) === except) continue;
      const link = this.link(m);
      if (link.conn?.status === "open" && link.conn.bufferedBytes === 0) link.conn.write(frame);
    }
  }

  /** Closes the links to peers `isMember` refuses that were not used for `idleMs`. */
  dropIdle(isMember: (key: string) => boolean, idleMs: number, now: number): void {
    for (const l of [...this.#links.values()]) {
      if (!isMember(l.key) && !l.dialing && now - l.lastUsed > idleMs) {
        this.#links.delete(l.key);
        l.conn?.close("idle link to a non-member", true);
      }
    }
  }

  /** write(), then false when the link is over the high-water mark ('drain' follows). */
  /**
   * An outbound connection of a link closed: the link forgets it and re-dials once when
   * `redial(key)` (a member of our view: a dead one refuses and is suspected at once, a live one is
   * back), else is dropped when nothing waits on it. Returns the bytes written to it that never
   * reached the kernel (lost with it).
   */
  closed(conn: MeshConnection, reason: string, redial: (key: string) => boolean): number {
    if (!conn.outbound || !conn.peer) return 0;
    const l = this.#links.get(memberKey(conn.peer));
    if (!l || l.conn !== conn) return 0;
    l.conn = null;
    const lost = conn.unsentBytes;
    if (lost > 0) this.#log.warn({ peer: l.key, bytes: lost, reason }, "connection lost with unsent data");
    if (redial(l.key)) void this.dial(l);
    else if (l.queue.length === 0) this.delete(l.key);
    return lost;
  }

  send(l: Link, frame: Buffer): boolean {
    this.write(l, frame);
    if (this.buffered(l) <= this.#highWaterMark) return true;
    this.#congested.add(l.key);
    return false;
  }

  buffered(l: Link): number {
    return l.queuedBytes + (l.conn?.status === "open" ? l.conn.bufferedBytes : 0);
  }

  /** After a write completed on `l`: 'drain' once no link is over the high-water mark. */
  checkDrain(l: Link): void {
    if (this.#congested.has(l.key) && this.buffered(l) <= this.#highWaterMark) {
      this.#congested.delete(l.key);
      this.#maybeEmitDrain();
    }
  }

  #failed(l: Link, reason: string): void {
    if (this.#links.get(l.key) === l) this.#links.delete(l.key);
    const lost = l.queue.filter((f) => f[DATA_OVERHEAD - 1] === FrameType.Data).length;
    if (lost > 0) {
      this.messagesLost += lost;
      this.#log.warn({ peer: l.key, lost, reason }, "messages to an unreachable member not sent");
    }
    l.queue = [];
    l.queuedBytes = 0;
    this.#congested.delete(l.key);
    this.#maybeEmitDrain();
    this.#owner.failed(l.key, reason);
  }

  #maybeEmitDrain(): void {
    if (this.#congested.size > 0 || this.#drainPending) return;
    this.#drainPending = true;
    queueMicrotask(() => {
      this.#drainPending = false;
      if (this.#congested.size === 0 && !this.#owner.isClosed()) this.#owner.drained();
    });
  }
}

function newLink(m: Member): Link {
  return {
    key: memberKey(m),
    member: m,
    conn: null,
    dialing: false,
    queue: [],
    queuedBytes: 0,
    lastUsed: Date.now(),
  };
}
