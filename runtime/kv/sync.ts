// Anti-entropy between two replicas of one map: the puller asks for the other replica's digest,
// compares it bucket by bucket with its own, then, a group of differing buckets at a time, their
// leaf hashes, and then, for the leaves that differ, sends the hashes of its own entries there
// (LEAF_DIFF_REQ). The other replica answers with the hashes it lacks (WANT) and, in chunks
// (bounded memory), only the entries whose hash the puller did not name; the puller applies them
// and pushes back the entries that were wanted. One session thus converges both replicas whatever
// the merge function, and moves what differs: an entry moves when the other side lacks it or holds
// its key at another version. The responder side is stateless.
//
// A replica older than LEAF_DIFF_REQ drops it as an unknown kind: when a leaf step times out the
// session falls back to LEAF_REQ (whole leaves; the puller then compares versions itself) for the
// rest of the session.
//
// Used for a joining member's state transfer (from its site's coordinator), for the periodic check
// inside a site, and between the coordinators of two sites (after a partition, a site offline, a
// writer that died with changes its backup site never got). No timers here: the owner drives
// timeouts through `expire(now)`.
import type { KvMessage, LeafHashes } from "./codec.js";
import { BUCKETS, diffBuckets, LEAVES, leafNumber, SUB_BUCKETS } from "./digest.js";
import { type Entry, entryBytes } from "./entry.js";
import { KvError } from "./errors.js";
import type { MapStore } from "./store.js";
import { versionsEqual } from "./version.js";

/** How many buckets one SUB_DIGEST_REQ names (bounds what is held while a group is compared). */
export const BUCKETS_PER_REQUEST = 64;

/**
 * Most entry hashes in one LEAF_DIFF_REQ (8 bytes each: 128 KiB); a group's differing leaves are
 * asked for in as many requests as that takes. A single leaf with more entries (billions of keys
 * in the map) is asked for whole, with LEAF_REQ.
 */
export const HASHES_PER_REQUEST = 16_384;

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
      /** The leaves of this request, and those of the group still to ask for after it. */
      readonly leaves: readonly number[];
      readonly rest: readonly number[];
      /** LEAF_DIFF_REQ (else LEAF_REQ: whole leaves). */
      readonly diff: boolean;
      /** LEAF_DIFF_REQ: our entries' hashes named in it, each with its key. */
      readonly named: Map<bigint, string>;
      /** What came back: entries by key, the WANT (null until it arrived), the next chunk expected. */
      readonly received: Map<string, Entry>;
      wanted: readonly bigint[] | null;
      nextChunk: number;
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
  readonly #hashesPerRequest: number;
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
  /** The other replica did not answer a LEAF_DIFF_REQ: whole leaves from then on. */
  #legacy = false;
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
    /** Most of our entry hashes per LEAF_DIFF_REQ. @default HASHES_PER_REQUEST */
    hashesPerRequest?: number;
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
    this.#hashesPerRequest = o.hashesPerRequest ?? HASHES_PER_REQUEST;
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
      this.#requestLeaves(step.group, leaves, now);
    } else if (m.type === "want" && step.kind === "leaves" && step.diff && step.wanted === null) {
      step.wanted = Array.from(m.hashes);
      this.#deadline = now + this.#stepTimeoutMs;
    } else if (m.type === "bucket-res" && step.kind === "leaves") {
      // Chunks come in order (the channel is FIFO); a gap is a chunk dropped as corrupt: wait for
      // the step's timeout, which asks for the leaves again.
      if (m.chunk !== step.nextChunk) return;
      step.nextChunk++;
      for (const e of m.entries) {
        this.#received++;
        step.received.set(e.key, e);
        if (this.#apply(e)) this.#applied++;
      }
      this.#deadline = now + this.#stepTimeoutMs;
      if (m.last && (!step.diff || step.wanted !== null)) void this.#pushBack(step, now);
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
      // A replica that predates LEAF_DIFF_REQ never answers it: whole leaves from now on (also
      // correct when the request or its answer was merely lost).
      this.#legacy = true;
      this.#requestLeaves(step.group, [...step.leaves, ...step.rest], now);
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

  /**
   * Asks for `leaves` of `group`: with LEAF_DIFF_REQ, as many as `hashesPerRequest` of our hashes
   * allow (the rest after the answer), or all of them with LEAF_REQ.
   */
  #requestLeaves(group: readonly number[], leaves: readonly number[], now: number): void {
    const named = new Map<bigint, string>();
    const ask: LeafHashes[] = [];
    let i = 0;
    if (!this.#legacy) {
      for (; i < leaves.length; i++) {
        const mine = this.#store.leafHashed(leaves[i]!);
        if (named.size + mine.length > this.#hashesPerRequest && ask.length > 0) break;
        if (mine.length > this.#hashesPerRequest) break; // alone too big: whole, with LEAF_REQ
        for (const { entry, hash } of mine) named.set(hash, entry.key);
        ask.push({ leaf: leaves[i]!, hashes: BigUint64Array.from(mine, (x) => x.hash) });
      }
    }
    const diff = ask.length > 0;
    const asked = diff ? leaves.slice(0, i) : leaves.slice(0, this.#legacy ? leaves.length : 1);
    this.#step = {
      kind: "leaves",
      group,
      leaves: asked,
      rest: leaves.slice(asked.length),
      diff,
      named,
      received: new Map(),
      wanted: null,
      nextChunk: 0,
    };
    this.#deadline = now + this.#stepTimeoutMs;
    if (diff) this.#send({ type: "leaf-diff-req", map: this.#map, session: this.session, leaves: ask });
    else this.#send({ type: "leaf-req", map: this.#map, session: this.session, leaves: asked });
  }

  /**
   * Ours that the other replica asked for (WANT), or, after a LEAF_REQ, that it lacks or holds at
   * another version in the leaves just fetched. Then the group's next leaves, or the next group.
   */
  async #pushBack(step: Extract<Step, { kind: "leaves" }>, now: number): Promise<void> {
    const out: Entry[] = [];
    const wantedKeys = new Set<string>();
    for (const h of step.wanted ?? []) {
      const key = step.named.get(h);
      if (key !== undefined) wantedKeys.add(key);
    }
    for (const leaf of step.leaves)
      for (const e of this.#store.leaf(leaf)) {
        const t = step.received.get(e.key);
        const theirs = t !== undefined && versionsEqual(t.version, e.version); // what they just sent
        // After a LEAF_DIFF_REQ: the key's entry now (it may be newer than the one we named).
        if (step.diff ? wantedKeys.has(e.key) && !theirs : !theirs) out.push(e);
      }
    try {
      if (out.length > 0) await this.#push(out);
    } catch (err) {
      this.#fail(err instanceof KvError ? err : new KvError("CLOSED", (err as Error).message));
      return;
    }
    this.#sent += out.length;
    if (step.rest.length > 0) {
      this.#requestLeaves(step.group, step.rest, now);
      return;
    }
    this.#done += step.group.length;
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

/** The requests of a sync, which answerSync answers. */
export type SyncRequest = Extract<
  KvMessage,
  { type: "digest-req" | "sub-digest-req" | "leaf-req" | "leaf-diff-req" }
>;

export function isSyncRequest(m: KvMessage): m is SyncRequest {
  return (
    m.type === "digest-req" ||
    m.type === "sub-digest-req" ||
    m.type === "leaf-req" ||
    m.type === "leaf-diff-req"
  );
}

/**
 * The responder's side: answers a DIGEST_REQ, a SUB_DIGEST_REQ, a LEAF_REQ or a LEAF_DIFF_REQ
 * from `store`; leaf answers are cut into BUCKET_RES chunks of at most `chunkBytes` (at least one
 * entry each), numbered from 0, the last one flagged; a LEAF_DIFF_REQ's WANT comes first.
 */
export function answerSync(store: MapStore, m: SyncRequest, chunkBytes: number): KvMessage[] {
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
  const chunks: KvMessage[] = [];
  let chunk: Entry[] = [];
  let size = 0;
  const flush = (last: boolean) => {
    chunks.push({
      type: "bucket-res",
      map: m.map,
      session: m.session,
      chunk: chunks.length,
      last,
      entries: chunk,
    });
    chunk = [];
    size = 0;
  };
  const add = (e: Entry) => {
    const n = entryBytes(e);
    if (chunk.length > 0 && size + n > chunkBytes) flush(false);
    chunk.push(e);
    size += n;
  };
  const valid = (leaf: number) => Number.isInteger(leaf) && leaf >= 0 && leaf < LEAVES; // the codec bounds them already
  if (m.type === "leaf-req") {
    for (const leaf of new Set(m.leaves)) if (valid(leaf)) for (const e of store.leaf(leaf)) add(e);
    flush(true);
    return chunks;
  }
  const want: bigint[] = [];
  const seen = new Set<number>();
  for (const { leaf, hashes } of m.leaves) {
    if (!valid(leaf) || seen.has(leaf)) continue;
    seen.add(leaf);
    const theirs = new Set(hashes);
    const ours = new Set<bigint>();
    for (const { entry, hash } of store.leafHashed(leaf)) {
      ours.add(hash);
      if (!theirs.has(hash)) add(entry);
    }
    for (const h of theirs) if (!ours.has(h)) want.push(h);
  }
  flush(true);
  return [{ type: "want", map: m.map, session: m.session, hashes: BigUint64Array.from(want) }, ...chunks];
}
