// Anti-entropy between two replicas of one map: the puller asks for the other replica's digest,
// compares it bucket by bucket with its own, then, a group of differing buckets at a time, their
// leaf hashes, and fetches only the leaves that differ (in chunks: bounded memory). It applies
// what it gets and pushes back its own entries of those leaves that the other side lacks or holds
// at another version. One session thus converges both replicas whatever the merge function, and
// moves about what differs (1 % of 100k keys: ~1,000 leaves of ~1.5 keys). The responder side is
// stateless.
//
// Used for a joining member's state transfer (from its site's coordinator), for the periodic check
// inside a site, and between the coordinators of two sites (after a partition, a site offline, a
// writer that died with changes its backup site never got). No timers here: the owner drives
// timeouts through `expire(now)`.
import type { KvMessage } from "./codec.js";
import { BUCKETS, diffBuckets, LEAVES, leafNumber, SUB_BUCKETS } from "./digest.js";
import { type Entry, entryBytes } from "./entry.js";
import { KvError } from "./errors.js";
import type { MapStore } from "./store.js";
import { versionsEqual } from "./version.js";

/** How many buckets one SUB_DIGEST_REQ names (bounds what is held while a group is compared). */
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
  | { readonly kind: "leaf-hashes"; readonly group: readonly number[] }
  | {
      readonly kind: "leaves";
      readonly group: readonly number[];
      readonly leaves: readonly number[];
      readonly received: Map<string, Entry>;
    };

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
    const step = this.#step;
    if (m.type === "digest-res" && step.kind === "digest") {
      const mine = this.#store.digest();
      if (m.root === mine.root()) {
        this.#finish({ equal: true });
        return;
      }
      this.#todo = diffBuckets(mine.hashes(), m.hashes);
      this.#differing = this.#todo.length;
      this.#nextGroup(now);
    } else if (m.type === "sub-digest-res" && step.kind === "leaf-hashes") {
      const mine = this.#store.digest();
      const leaves: number[] = [];
      m.buckets.forEach((b, i) => {
        if (!step.group.includes(b)) return;
        const ours = mine.subHashes(b);
        for (let sub = 0; sub < SUB_BUCKETS; sub++)
          if (ours[sub] !== m.hashes[i * SUB_BUCKETS + sub]) leaves.push(leafNumber(b, sub));
      });
      if (leaves.length === 0) {
        this.#done += step.group.length; // equal by now (changed meanwhile)
        this.#nextGroup(now);
        return;
      }
      this.#step = { kind: "leaves", group: step.group, leaves, received: new Map() };
      this.#deadline = now + this.#stepTimeoutMs;
      this.#send({ type: "leaf-req", map: this.#map, session: this.session, leaves });
    } else if (m.type === "bucket-res" && step.kind === "leaves") {
      for (const e of m.entries) {
        this.#received++;
        step.received.set(e.key, e);
        if (this.#apply(e)) this.#applied++;
      }
      this.#deadline = now + this.#stepTimeoutMs;
      if (m.last) void this.#pushBack(step, now);
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
    else if (step.kind === "leaf-hashes")
      this.#send({ type: "sub-digest-req", map: this.#map, session: this.session, buckets: step.group });
    else {
      step.received.clear();
      this.#send({ type: "leaf-req", map: this.#map, session: this.session, leaves: step.leaves });
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
    this.#step = { kind: "leaf-hashes", group };
    this.#retriesLeft = this.#maxRetries;
    this.#deadline = now + this.#stepTimeoutMs;
    this.#send({ type: "sub-digest-req", map: this.#map, session: this.session, buckets: group });
  }

  /** Ours that the other replica lacks, or holds at another version, in the leaves just fetched. */
  async #pushBack(step: Extract<Step, { kind: "leaves" }>, now: number): Promise<void> {
    const out: Entry[] = [];
    for (const leaf of step.leaves)
      for (const e of this.#store.leaf(leaf)) {
        const t = step.received.get(e.key);
        if (!t || !versionsEqual(t.version, e.version)) out.push(e);
      }
    const group = step.group;
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
 * The responder's side: answers a DIGEST_REQ, a SUB_DIGEST_REQ or a LEAF_REQ from `store`; leaf
 * answers are cut into BUCKET_RES chunks of at most `chunkBytes` (at least one entry each), the
 * last one flagged.
 */
export function answerSync(
  store: MapStore,
  m: Extract<KvMessage, { type: "digest-req" | "sub-digest-req" | "leaf-req" }>,
  chunkBytes: number,
): KvMessage[] {
  const d = store.digest();
  if (m.type === "digest-req")
    return [{ type: "digest-res", map: m.map, session: m.session, root: d.root(), hashes: d.hashes() }];
  if (m.type === "sub-digest-req") {
    const buckets = [...new Set(m.buckets)].filter((b) => Number.isInteger(b) && b >= 0 && b < BUCKETS);
    const hashes = new BigUint64Array(buckets.length * SUB_BUCKETS);
    buckets.forEach((b, i) => {
      hashes.set(d.subHashes(b), i * SUB_BUCKETS);
    });
    return [{ type: "sub-digest-res", map: m.map, session: m.session, buckets, hashes }];
  }
  const out: KvMessage[] = [];
  let chunk: Entry[] = [];
  let size = 0;
  const flush = (last: boolean) => {
    out.push({ type: "bucket-res", map: m.map, session: m.session, chunk: out.length, last, entries: chunk });
    chunk = [];
    size = 0;
  };
  for (const leaf of new Set(m.leaves)) {
    if (!Number.isInteger(leaf) || leaf < 0 || leaf >= LEAVES) continue; // the codec bounds them already
    for (const e of store.leaf(leaf)) {
      const n = entryBytes(e);
      if (chunk.length > 0 && size + n > chunkBytes) flush(false);
      chunk.push(e);
      size += n;
    }
  }
  flush(true);
  return out;
}
