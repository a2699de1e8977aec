// What one backup site still has to acknowledge for one map: the recovery point (RPO) if this
// site died now. Pure: no I/O, no timers; the clock is injected.
//
// - add(e) records a change. Changes of one key coalesce: a pending (not yet sent) record of the
//   key is replaced by the newer entry, but keeps the time of its oldest unacknowledged change,
//   so oldestPendingMs() stays honest while a hot key changes faster than the link drains.
// - take(maxBytes) moves the oldest pending records into a batch in flight; ack(batch) settles
//   it; requeue(batch)/requeueAll() put a batch back (the path was lost: resend). A key changed
//   while in flight is pending again with the newer entry, and is sent in a later batch.
// - Budget: the unacknowledged records (pending and in flight) may hold at most maxKeys keys and
//   maxBytes bytes (entryBytes); add() over budget throws BACKLOG_FULL. Nothing is ever dropped.
// - An ack of version v of a key also settles the key's records at or below v elsewhere (an older
//   batch still in flight, e.g. one that was resent): the backup site has something at least as new.
// - isAcked(e): an entry of that key with a version >= e.version was acknowledged. The backlog
//   remembers the highest acknowledged version of each key until forget(key) (call it when the
//   store collects the key's tombstone).
import { ConfigError } from "../../contract/errors.js";
import { type Entry, entryBytes } from "./entry.js";
import { KvError } from "./errors.js";
import { compareVersions, maxVersion, type Version } from "./version.js";

/** Largest batch id (ids wrap around to 1 after it). */
export const MAX_BATCH_ID = 0xffffffff;

export interface BackupBacklogOptions {
  /** Budget of unacknowledged bytes (entryBytes). */
  readonly maxBytes: number;
  /** Budget of keys with an unacknowledged change. */
  readonly maxKeys: number;
  /** ms clock. @default Date.now */
  readonly now?: () => number;
  /**
   * The first batch id (1..MAX_BATCH_ID). A backlog that replaces another for the same backup
   * site (a new site master) should not reuse the ids its predecessor may still see acks for.
   * @default 1
   */
  readonly firstBatch?: number;
}

interface Rec {
  entry: Entry;
  /** When the oldest unacknowledged change this record stands for was added. */
  since: number;
  bytes: number;
  /** Order of the add() that set `entry` (the later add is the newer state of the key). */
  seq: number;
}

interface Batch {
  recs: Rec[];
  /** Smallest `since` of the batch (Infinity once empty). */
  since: number;
}

export class BackupBacklog {
  readonly maxBytes: number;
  readonly maxKeys: number;
  readonly #now: () => number;
  /** Not yet sent, in order of `since` (oldest first). */
  #pending = new Map<string, Rec>();
  readonly #inFlight = new Map<number, Batch>();
  /** Unacknowledged records (pending or in flight) of each key. */
  readonly #records = new Map<string, number>();
  /** Records in flight, by key (a key can be in several batches). */
  readonly #inFlightByKey = new Map<string, { rec: Rec; batch: Batch }[]>();
  readonly #acked = new Map<string, Version>();
  #bytes = 0;
  #nextBatch: number;
  #adds = 0;

  constructor(opts: BackupBacklogOptions) {
    for (const name of ["maxBytes", "maxKeys"] as const)
      if (!Number.isSafeInteger(opts[name]) || opts[name] < 1)
        throw new ConfigError(`BackupBacklog option ${name} must be an integer >= 1 (got ${opts[name]})`);
    this.maxBytes = opts.maxBytes;
    this.maxKeys = opts.maxKeys;
    this.#now = opts.now ?? Date.now;
    const first = opts.firstBatch ?? 1;
    if (!Number.isInteger(first) || first < 1 || first > MAX_BATCH_ID)
      throw new ConfigError(
        `BackupBacklog option firstBatch must be an integer 1..${MAX_BATCH_ID} (got ${first})`,
      );
    this.#nextBatch = first;
  }

  /** Keys with an unacknowledged change (pending or in flight). */
  get pendingKeys(): number {
    return this.#records.size;
  }

  /** Bytes of the unacknowledged records (pending and in flight). */
  get pendingBytes(): number {
    return this.#bytes;
  }

  /** Records waiting to be sent (not in flight). */
  get queued(): number {
    return this.#pending.size;
  }

  /** Batches sent and not yet acknowledged. */
  get batchesInFlight(): number {
    return this.#inFlight.size;
  }

  /** True when `bytes` more (of a new key) would fit the budget now. */
  wouldFit(bytes: number): boolean {
    return this.#bytes + bytes <= this.maxBytes && this.#records.size < this.maxKeys;
  }

  /** Records a change; throws BACKLOG_FULL (and records nothing) when it is over budget. */
  add(e: Entry): void {
    const bytes = entryBytes(e);
    const old = this.#pending.get(e.key);
    const newKey = !this.#records.has(e.key);
    const bytesAfter = this.#bytes + bytes - (old?.bytes ?? 0);
    if (bytesAfter > this.maxBytes || (newKey && this.#records.size >= this.maxKeys))
      throw new KvError(
        "BACKLOG_FULL",
        `backup backlog full: ${this.#records.size} keys / ${this.#bytes} bytes unacknowledged, an entry of ${bytes} bytes would exceed maxKeys ${this.maxKeys} / maxBytes ${this.maxBytes}: slow the writers down or raise the budget`,
      );
    this.#bytes = bytesAfter;
    if (old) {
      old.entry = e;
      old.bytes = bytes;
      old.seq = ++this.#adds;
    } else {
      this.#pending.set(e.key, { entry: e, since: this.#now(), bytes, seq: ++this.#adds });
      this.#records.set(e.key, (this.#records.get(e.key) ?? 0) + 1);
    }
  }

  /**
   * The next batch, oldest records first, up to `maxBytes` (at least one record, however big).
   * `{ batch: 0, entries: [] }` when nothing is pending (no batch is created).
   */
  take(maxBytes: number): { batch: number; entries: Entry[] } {
    if (this.#pending.size === 0) return { batch: 0, entries: [] };
    const recs: Rec[] = [];
    let size = 0;
    for (const [key, rec] of this.#pending) {
      if (recs.length > 0 && size + rec.bytes > maxBytes) break;
      recs.push(rec);
      size += rec.bytes;
      this.#pending.delete(key);
    }
    const batch = this.#newBatchId();
    const b: Batch = { recs, since: recs[0]!.since }; // pending is in `since` order
    this.#inFlight.set(batch, b);
    for (const rec of recs) {
      const list = this.#inFlightByKey.get(rec.entry.key);
      if (list) list.push({ rec, batch: b });
      else this.#inFlightByKey.set(rec.entry.key, [{ rec, batch: b }]);
    }
    return { batch, entries: recs.map((r) => r.entry) };
  }

  /** The backup site applied `batch` (an unknown or settled batch is ignored). */
  ack(batch: number): void {
    const b = this.#settle(batch);
    if (!b) return;
    for (const r of b.recs) {
      this.#drop(r);
      const key = r.entry.key;
      const prev = this.#acked.get(key);
      const v = prev ? maxVersion(prev, r.entry.version) : r.entry.version;
      this.#acked.set(key, v);
      this.#cover(key, v);
    }
  }

  /** Batch ids are 1..MAX_BATCH_ID (u32 on the wire), wrapping around, never one still in flight. */
  #newBatchId(): number {
    while (this.#inFlight.has(this.#nextBatch)) this.#advance();
    const id = this.#nextBatch;
    this.#advance();
    return id;
  }

  #advance(): void {
    this.#nextBatch = this.#nextBatch >= MAX_BATCH_ID ? 1 : this.#nextBatch + 1;
  }

  /** Records of `key` at or below `v` (in other batches, or pending) are acknowledged too. */
  #cover(key: string, v: Version): void {
    const pending = this.#pending.get(key);
    if (pending && compareVersions(pending.entry.version, v) <= 0) {
      this.#pending.delete(key);
      this.#drop(pending);
    }
    const list = this.#inFlightByKey.get(key);
    if (!list) return;
    const keep = list.filter(({ rec, batch }) => {
      if (compareVersions(rec.entry.version, v) > 0) return true;
      batch.recs = batch.recs.filter((x) => x !== rec);
      batch.since = batch.recs.reduce((m, x) => Math.min(m, x.since), Number.POSITIVE_INFINITY);
      this.#drop(rec);
      return false;
    });
    if (keep.length) this.#inFlightByKey.set(key, keep);
    else this.#inFlightByKey.delete(key);
  }

  /** `batch` is to be sent again (its records go back to pending, oldest first). */
  requeue(batch: number): void {
    const b = this.#settle(batch);
    if (b) this.#restore(b.recs);
  }

  /** Every batch in flight is to be sent again (the path to the backup site was lost). */
  requeueAll(): void {
    const recs: Rec[] = [];
    for (const id of [...this.#inFlight.keys()]) recs.push(...this.#settle(id)!.recs);
    this.#restore(recs);
  }

  /** Age in ms of the oldest unacknowledged change, null when everything is acknowledged. */
  oldestPendingMs(): number | null {
    let oldest = Number.POSITIVE_INFINITY;
    for (const r of this.#pending.values()) {
      oldest = r.since; // insertion order is `since` order
      break;
    }
    for (const b of this.#inFlight.values()) if (b.since < oldest) oldest = b.since;
    return oldest === Number.POSITIVE_INFINITY ? null : Math.max(0, this.#now() - oldest);
  }

  /** True once an entry of e.key with a version >= e.version was acknowledged. */
  isAcked(e: Entry): boolean {
    const v = this.#acked.get(e.key);
    return v !== undefined && compareVersions(v, e.version) >= 0;
  }

  /** Forgets the acknowledged version of `key` (after its tombstone was collected). */
  forget(key: string): void {
    this.#acked.delete(key);
  }

  #settle(batch: number): Batch | undefined {
    const b = this.#inFlight.get(batch);
    if (!b) return undefined;
    this.#inFlight.delete(batch);
    for (const r of b.recs) {
      const key = r.entry.key;
      const list = this.#inFlightByKey.get(key)!.filter((x) => x.rec !== r);
      if (list.length) this.#inFlightByKey.set(key, list);
      else this.#inFlightByKey.delete(key);
    }
    return b;
  }

  /** A record is gone (acknowledged, or superseded by a newer pending one). */
  #drop(r: Rec): void {
    this.#bytes -= r.bytes;
    const n = this.#records.get(r.entry.key)! - 1;
    if (n === 0) this.#records.delete(r.entry.key);
    else this.#records.set(r.entry.key, n);
  }

  /** Puts records back into pending: of two records of a key the later-added wins, with the older time. */
  #restore(recs: Rec[]): void {
    if (recs.length === 0) return;
    const merged = new Map<string, Rec>(this.#pending);
    for (const r of recs) {
      const cur = merged.get(r.entry.key);
      if (!cur) merged.set(r.entry.key, r);
      else {
        const [keep, lose] = cur.seq > r.seq ? [cur, r] : [r, cur];
        keep.since = Math.min(cur.since, r.since);
        merged.set(r.entry.key, keep);
        this.#drop(lose);
      }
    }
    this.#pending = new Map([...merged.entries()].sort((a, b) => a[1].since - b[1].since));
  }
}
