// Anti-entropy between two replicas of one map: the puller asks for the other replica's digest,
// compares it bucket by bucket with its own, fetches only the buckets that differ (a few at a
// time, in chunks: bounded memory), applies what it gets, and pushes back its own entries of those
// buckets that the other side lacks or holds at another version. One session thus converges both
// replicas whatever the merge function. The responder side is stateless.
//
// Used for a joining member's state transfer (from its site's coordinator), for the periodic check
// inside a site, and between the coordinators of two sites (after a partition, a site offline, a
// writer that died with changes its backup site never got). No timers here: the owner drives
// timeouts through `expire(now)`.
import type { KvMessage } from "./codec.js";
import { BUCKETS, diffBuckets } from "./digest.js";
import { type Entry, entryBytes } from "./entry.js";
import { KvError } from "./errors.js";
import type { MapStore } from "./store.js";
import { versionsEqual } from "./version.js";

/** How many buckets one BUCKET_REQ names (bounds what is held while a group is compared). */
export const BUCKETS_PER_REQUEST = 64;

/** Where a session's requests go and its answers come from (one remote replica). */
export interface SyncPeer {
  /** Sends a message to that replica (resolves once the channel took it). */
  send(m: KvMessage): Promise<void>;
}

export interface SyncResult {
  /** Both digests were equal at the start: nothing was transferred. */
  readonly equal: boolean;
  readonly bucketsDiffering: number;
  /** Entries received from the other replica (whether or not they changed ours). */
  readonly entriesReceived: number;
  /** Entries of ours that changed this replica. */
  readonly entriesApplied: number;
  /** Entries of ours pushed to the other replica. */
  readonly entriesSent: number;
  /** Chunks requested again after a timeout (a lost or corrupt chunk). */
  readonly retries: number;
}

export interface SyncProgress {
  readonly bucketsDiffering: number;
  readonly bucketsDone: number;
  readonly entriesReceived: number;
  readonly entriesSent: number;
}

type Step =
  | { readonly kind: "digest" }
  | { readonly kind: "buckets"; readonly group: readonly number[]; readonly received: Map<string, Entry> };

/**
 * One pull (and push back) from one replica. `apply` installs a received entry (returns true when
 * it changed ours); `push` sends our entries to the other replica.
 */
export class SyncSession {
  readonly session: number;
  readonly #map: string;
  readonly #store: MapStore;
  readonly #peer: SyncPeer;
  readonly #apply: (e: Entry) => boolean;
  readonly #push: (entries: Entry[]) => Promise<void>;
  readonly #stepTimeoutMs: number;
  readonly #maxRetries: number;
  #step: Step = { kind: "digest" };
  #deadline = 0;
  #retriesLeft: number;
  #todo: number[] = [];
  #differing = 0;
  #done = 0;
  #received = 0;
  #applied = 0;
  #sent = 0;
  #retries = 0;
  #finished = false;
  readonly #result: Promise<SyncResult>;
  #resolve!: (r: SyncResult) => void;
  #reject!: (e: Error) => void;

  constructor(o: {
    session: number;
    map: string;
    store: MapStore;
    peer: SyncPeer;
    apply: (e: Entry) => boolean;
    push: (entries: Entry[]) => Promise<void>;
    stepTimeoutMs: number;
    maxRetries?: number;
    now: number;
  }) {
    this.session = o.session;
    this.#map = o.map;
    this.#store = o.store;
    this.#peer = o.peer;
    this.#apply = o.apply;
    this.#push = o.push;
    this.#stepTimeoutMs = o.stepTimeoutMs;
    this.#maxRetries = o.maxRetries ?? 3;
    this.#retriesLeft = this.#maxRetries;
    this.#deadline = o.now + o.stepTimeoutMs;
    this.#result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#result.catch(() => {}); // the owner may not await a session it abandons
  }

  /** Resolves when both replicas hold what the other had; rejects after repeated timeouts. */
  get result(): Promise<SyncResult> {
    return this.#result;
  }

  get finished(): boolean {
    return this.#finished;
  }

  progress(): SyncProgress {
    return {
      bucketsDiffering: this.#differing,
      bucketsDone: this.#done,
      entriesReceived: this.#received,
      entriesSent: this.#sent,
    };
  }

  /** Sends the first request. */
  start(): void {
    this.#send({ type: "digest-req", map: this.#map, session: this.session });
  }

  /** An answer of the other replica for this session (others are ignored). */
  onMessage(m: KvMessage, now: number): void {
    if (this.#finished) return;
    if (m.type === "digest-res" && this.#step.kind === "digest") {
      const mine = this.#store.digest();
      if (m.root === mine.root()) {
        this.#finish({ equal: true });
        return;
      }
      this.#todo = diffBuckets(mine.hashes(), m.hashes);
      this.#differing = this.#todo.length;
      this.#nextGroup(now);
    } else if (m.type === "bucket-res" && this.#step.kind === "buckets") {
      const received = this.#step.received;
      for (const e of m.entries) {
        this.#received++;
        received.set(e.key, e);
        if (this.#apply(e)) this.#applied++;
      }
      this.#deadline = now + this.#stepTimeoutMs;
      if (m.last) void this.#pushBack(this.#step.group, received, now);
    } else if (m.type === "error") {
      this.#fail(new KvError(m.code, `the other replica refused the sync: ${m.message}`));
    }
  }

  /** Call periodically: a step without an answer in time is requested again, a few times. */
  expire(now: number): void {
    if (this.#finished || now <= this.#deadline) return;
    if (this.#retriesLeft-- <= 0) {
      this.#fail(
        new KvError("TIMEOUT", `no answer within ${this.#stepTimeoutMs} ms, ${this.#maxRetries + 1} times`),
      );
      return;
    }
    this.#retries++;
    this.#deadline = now + this.#stepTimeoutMs;
    const step = this.#step;
    if (step.kind === "digest") this.start();
    else {
      step.received.clear();
      this.#send({ type: "bucket-req", map: this.#map, session: this.session, buckets: step.group });
    }
  }

  /** Abandons the session (the other replica left, the map closed). */
  abort(reason: KvError): void {
    this.#fail(reason);
  }

  #nextGroup(now: number): void {
    if (this.#todo.length === 0) {
      this.#finish({ equal: false });
      return;
    }
    const group = this.#todo.splice(0, BUCKETS_PER_REQUEST);
    this.#step = { kind: "buckets", group, received: new Map() };
    this.#retriesLeft = this.#maxRetries;
    this.#deadline = now + this.#stepTimeoutMs;
    this.#send({ type: "bucket-req", map: this.#map, session: this.session, buckets: group });
  }

  /** Ours that the other replica lacks, or holds at another version, in the buckets just fetched. */
  async #pushBack(group: readonly number[], theirs: Map<string, Entry>, now: number): Promise<void> {
    const out: Entry[] = [];
    for (const b of group)
      for (const e of this.#store.bucket(b)) {
        const t = theirs.get(e.key);
        if (!t || !versionsEqual(t.version, e.version)) out.push(e);
      }
    try {
      if (out.length > 0) await this.#push(out);
    } catch (err) {
      this.#fail(err instanceof KvError ? err : new KvError("CLOSED", (err as Error).message));
      return;
    }
    this.#sent += out.length;
    this.#done += group.length;
    this.#nextGroup(now);
  }

  #send(m: KvMessage): void {
    this.#peer.send(m).catch((err: unknown) => {
      this.#fail(err instanceof KvError ? err : new KvError("CLOSED", (err as Error).message));
    });
  }

  #finish(o: { equal: boolean }): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#resolve({
      equal: o.equal,
      bucketsDiffering: this.#differing,
      entriesReceived: this.#received,
      entriesApplied: this.#applied,
      entriesSent: this.#sent,
      retries: this.#retries,
    });
  }

  #fail(err: KvError): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#reject(err);
  }
}

/**
 * The responder's side: answers a DIGEST_REQ or a BUCKET_REQ from `store`; bucket answers are cut
 * into chunks of at most `chunkBytes` (at least one entry each), the last one flagged.
 */
export function answerSync(
  store: MapStore,
  m: Extract<KvMessage, { type: "digest-req" | "bucket-req" }>,
  chunkBytes: number,
): KvMessage[] {
  if (m.type === "digest-req") {
    const d = store.digest();
    return [{ type: "digest-res", map: m.map, session: m.session, root: d.root(), hashes: d.hashes() }];
  }
  const out: KvMessage[] = [];
  let chunk: Entry[] = [];
  let size = 0;
  const flush = (last: boolean) => {
    out.push({ type: "bucket-res", map: m.map, session: m.session, chunk: out.length, last, entries: chunk });
    chunk = [];
    size = 0;
  };
  for (const b of new Set(m.buckets)) {
    if (!Number.isInteger(b) || b < 0 || b >= BUCKETS) continue; // the codec bounds them already
    for (const e of store.bucket(b)) {
      const n = entryBytes(e);
      if (chunk.length > 0 && size + n > chunkBytes) flush(false);
      chunk.push(e);
      size += n;
    }
  }
  flush(true);
  return out;
}
