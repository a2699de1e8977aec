// One replica of one replicated map, in memory. Pure: no I/O and no timers; the clock is injected.
//
// Every change goes through the merge function, local writes included (with lastWriterWins a
// local write always wins, its stamp being above everything the clock has seen; a custom merge
// may keep the stored entry, and then put/delete/compareAndSet return that entry and nothing
// changes). Deletes leave tombstones (value null) that replicate like values and are collected
// by collectTombstones once the caller knows every backup site has them.
//
// Events: MapStore is an EventEmitter; "change" is emitted after every change of the store with
// the entry now stored and where the change came from ("local": put/delete/compareAndSet,
// "remote": apply). Tombstone collection emits nothing (it does not change what a read sees).

import { EventEmitter } from "node:events";
import { ConfigError } from "../../contract/errors.js";
import { Digest, entryHash, LEAVES, leafNumber, leafOf, SUB_BUCKETS } from "./digest.js";
import {
  checkEntry,
  checkKey,
  checkValue,
  type Entry,
  lastWriterWins,
  type MergeFn,
  resolveLimits,
  type StoreLimits,
} from "./entry.js";
import { KvError } from "./errors.js";
import type { HybridClock } from "./hlc.js";
import { NO_SLOT, SlotTable } from "./slot-table.js";
import { compareVersions, type Version, versionKey, versionProblem, versionsEqual } from "./version.js";

export type ChangeOrigin = "local" | "remote";

export interface MapStoreEvents {
  change: [entry: Entry, origin: ChangeOrigin];
}

export interface MapStoreOptions {
  /** This replica's site (the origin of its writes). */
  readonly site: string;
  /** This replica's member name within the site. */
  readonly member: string;
  /** Stamps local writes and observes remote ones. */
  readonly clock: HybridClock;
  /** @default lastWriterWins */
  readonly merge?: MergeFn;
  /** @default DEFAULT_STORE_LIMITS */
  readonly limits?: Partial<StoreLimits>;
  /** Local time for tombstones' deletedAt, ms. @default Date.now */
  readonly now?: () => number;
}

export class MapStore extends EventEmitter<MapStoreEvents> {
  readonly site: string;
  readonly member: string;
  readonly limits: StoreLimits;
  readonly #clock: HybridClock;
  readonly #merge: MergeFn;
  readonly #now: () => number;
  /** The entries, with their digest leaves and hashes (slot-table.ts). */
  readonly #slots = new SlotTable(LEAVES);
  readonly #digest = new Digest();
  #tombstones = 0;

  constructor(opts: MapStoreOptions) {
    super();
    // Validates the names once: every local version carries them.
    const problem = versionProblem({ hlc: { wall: 0, logical: 0 }, site: opts.site, member: opts.member });
    if (problem) throw new ConfigError(`MapStore options site and member: ${problem}`);
    this.site = opts.site;
    this.member = opts.member;
    this.#clock = opts.clock;
    this.#merge = opts.merge ?? lastWriterWins;
    this.limits = resolveLimits(opts.limits);
    this.#now = opts.now ?? Date.now;
  }

  /** The stored entry of `key`, tombstones included (value null). */
  get(key: string): Entry | undefined {
    const slot = this.#slots.find(key);
    return slot === NO_SLOT ? undefined : this.#slots.entry(slot);
  }

  /** The live value of `key` (undefined when absent or deleted). */
  getValue(key: string): Uint8Array | undefined {
    return this.get(key)?.value ?? undefined;
  }

  /** Live entries. */
  get size(): number {
    return this.#slots.size - this.#tombstones;
  }

  /** Stored tombstones. */
  get tombstones(): number {
    return this.#tombstones;
  }

  /** A local write; returns the entry now stored (see the merge note at the top). */
  put(key: string, value: Uint8Array): Entry {
    checkKey(key, this.limits);
    if (value === null) throw new KvError("VALUE_TOO_LARGE", "put needs a value: use delete to remove a key");
    checkValue(value, this.limits);
    return this.#writeLocal(key, value);
  }

  /** A local delete: a tombstone, or null when the key is absent or already deleted. */
  delete(key: string): Entry | null {
    checkKey(key, this.limits);
    const cur = this.get(key);
    if (!cur || cur.value === null) return null;
    return this.#writeLocal(key, null);
  }

  /**
   * Writes `value` (null: deletes) when the key's current version is `expected` (null: the key
   * must be absent or deleted), else throws VERSION_MISMATCH with `current`. Checked on this
   * replica only: two sites that succeed concurrently are resolved by the merge like any writes.
   */
  compareAndSet(key: string, expected: Version | null, value: Uint8Array | null): Entry {
    checkKey(key, this.limits);
    checkValue(value, this.limits);
    const cur = this.get(key);
    const live = cur && cur.value !== null ? cur : undefined;
    const ok =
      expected === null ? live === undefined : live !== undefined && versionsEqual(live.version, expected);
    if (!ok) {
      const found = live ? versionKey(live.version) : "absent";
      const wanted = expected ? versionKey(expected) : "absent";
      throw new KvError("VERSION_MISMATCH", `key "${key}" is at version ${found}, expected ${wanted}`, {
        current: live?.version ?? null,
      });
    }
    return this.#writeLocal(key, value);
  }

  /**
   * A replicated entry (from another member or site): validated like network input (limits,
   * version, clock drift), then merged. Returns the entry now stored when it changed the store,
   * null when it was older or a duplicate.
   */
  apply(remote: Entry): Entry | null {
    checkEntry(remote, this.limits);
    this.#clock.observe(remote.version.hlc);
    const replaces = remote.replaces === undefined ? {} : { replaces: remote.replaces };
    const incoming: Entry =
      remote.value === null
        ? { key: remote.key, value: null, version: remote.version, ...replaces, deletedAt: this.#now() }
        : { key: remote.key, value: remote.value, version: remote.version, ...replaces };
    return this.#install(incoming, "remote");
  }

  /** Live entries (all, or those whose key starts with `prefix`), in insertion order. */
  *entries(prefix?: string): IterableIterator<Entry> {
    for (const [key, slot] of this.#slots.slots()) {
      const e = this.#slots.entry(slot);
      if (e.value !== null && (prefix === undefined || key.startsWith(prefix))) yield e;
    }
  }

  /** Every stored entry, tombstones included (state transfer). */
  *allEntries(): IterableIterator<Entry> {
    for (const [, slot] of this.#slots.slots()) yield this.#slots.entry(slot);
  }

  /**
   * Entries (tombstones included) with a version above `v` (all when null), ascending by
   * version: what a watcher that saw up to `v` has missed. O(n log n) over the store.
   */
  changedSince(v: Version | null): Entry[] {
    const out: Entry[] = [];
    for (const e of this.allEntries()) if (v === null || compareVersions(e.version, v) > 0) out.push(e);
    return out.sort((a, b) => compareVersions(a.version, b.version));
  }

  /** Entries (tombstones included) of digest bucket `n` (0..BUCKETS-1). */
  bucket(n: number): Entry[] {
    const out: Entry[] = [];
    for (let sub = 0; sub < SUB_BUCKETS; sub++) this.#leafInto(leafNumber(n, sub), out);
    return out;
  }

  /** Entries (tombstones included) of digest leaf `n` (0..LEAVES-1; see leafNumber). */
  leaf(n: number): Entry[] {
    return this.#leafInto(n, []);
  }

  /** The entries of leaf `n` with their digest hashes (digest.ts entryHash), for a LEAF_DIFF_REQ. */
  leafHashed(n: number): { readonly entry: Entry; readonly hash: bigint }[] {
    const out: { entry: Entry; hash: bigint }[] = [];
    this.#slots.forEachInLeaf(n, (slot) =>
      out.push({ entry: this.#slots.entry(slot), hash: this.#slots.hash(slot) }),
    );
    return out;
  }

  #leafInto(n: number, out: Entry[]): Entry[] {
    this.#slots.forEachInLeaf(n, (slot) => out.push(this.#slots.entry(slot)));
    return out;
  }

  digest(): Digest {
    return this.#digest;
  }

  /**
   * Removes tombstones for which `stableBefore(e)` is true (the caller knows every backup site
   * has them) and that were applied here more than `graceMs` ago. Returns how many.
   */
  collectTombstones(
    stableBefore: (e: Entry) => boolean,
    graceMs: number,
    onCollected?: (key: string) => void,
  ): number {
    if (this.#tombstones === 0) return 0;
    const cutoff = this.#now() - graceMs;
    let n = 0;
    for (const [key, slot] of this.#slots.slots()) {
      const e = this.#slots.entry(slot);
      if (e.value !== null || (e.deletedAt ?? Number.NEGATIVE_INFINITY) > cutoff || !stableBefore(e))
        continue;
      this.#digest.toggle(this.#slots.leafOf(slot), this.#slots.hash(slot));
      this.#slots.remove(key, slot);
      this.#tombstones--;
      n++;
      onCollected?.(key);
    }
    return n;
  }

  #writeLocal(key: string, value: Uint8Array | null): Entry {
    const version: Version = { hlc: this.#clock.tick(), site: this.site, member: this.member };
    const seen = this.get(key)?.version;
    const replaces = seen === undefined ? {} : { replaces: seen };
    const entry: Entry =
      value === null
        ? { key, value: null, version, ...replaces, deletedAt: this.#now() }
        : { key, value, version, ...replaces };
    return this.#install(entry, "local") ?? this.get(key)!;
  }

  /** Merges `incoming` into the store; the entry stored when it changed, else null. */
  #install(incoming: Entry, origin: ChangeOrigin): Entry | null {
    const key = incoming.key;
    const slot = this.#slots.find(key);
    if (slot === NO_SLOT) {
      if (this.#slots.size >= this.limits.maxEntries)
        throw new KvError(
          "TOO_MANY_ENTRIES",
          `map holds ${this.#slots.size} entries (${this.#tombstones} tombstones), maxEntries ${this.limits.maxEntries}: raise limits.maxEntries or delete keys`,
        );
      const leaf = leafOf(key);
      const hash = entryHash(incoming);
      this.#slots.add(key, incoming, leaf, hash);
      this.#digest.toggle(leaf, hash);
      if (incoming.value === null) this.#tombstones++;
      this.emit("change", incoming, origin);
      return incoming;
    }
    const local = this.#slots.entry(slot);
    if (versionsEqual(local.version, incoming.version)) return null; // the same write again
    const winner = this.#merge(key, local, incoming);
    if (winner !== incoming) return null;
    const hash = entryHash(incoming);
    this.#digest.toggle(this.#slots.leafOf(slot), this.#slots.hash(slot) ^ hash);
    this.#slots.replace(slot, incoming, hash);
    this.#tombstones += (incoming.value === null ? 1 : 0) - (local.value === null ? 1 : 0);
    this.emit("change", incoming, origin);
    return incoming;
  }
}
