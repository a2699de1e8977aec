// An entry of a replicated map: a key, a value (bytes; null = tombstone) and the version of the
// write that produced it. Merge functions pick the winner of two entries of the same key.
import { ConfigError } from "../../contract/errors.js";
import { KvError } from "./errors.js";
import { compareVersions, isWellFormed, utf8Length, type Version, versionProblem } from "./version.js";

export interface Entry {
  readonly key: string;
  /** The value's bytes; null = tombstone (the key was deleted). */
  readonly value: Uint8Array | null;
  readonly version: Version;
  /**
   * The version of the entry this write overwrote on the member that made it (what its writer had
   * seen of the key); absent when that member held no entry for the key. Travels with the entry:
   * a replica tells a concurrent write of another site (it did not replace ours) from one made
   * after seeing ours, which is what the conflict count needs (docs/KV.md).
   */
  readonly replaces?: Version;
  /** Tombstones only, local: ms (the store's clock) when this replica applied the delete. Never sent. */
  readonly deletedAt?: number;
}

/**
 * Picks the winner of two entries of one key: it must return one of the two (the very object),
 * and be deterministic, commutative, associative and idempotent (in other words: the greater of
 * the two under a total order of entries), or replicas that receive the same writes in another
 * order end up different. test/kv/merge.test.ts checks these laws with fast-check.
 */
export type MergeFn = (key: string, local: Entry, remote: Entry) => Entry;

/** The default merge: the higher version wins (versions are a total order; equal = same write). */
export const lastWriterWins: MergeFn = (_key, local, remote) =>
  compareVersions(remote.version, local.version) > 0 ? remote : local;

/** Byte order of two byte strings (shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function isTombstone(e: Entry): boolean {
  return e.value === null;
}

/** Limits on what a store accepts, from a local write or from the network. */
export interface StoreLimits {
  /** Largest key, in UTF-8 bytes. @default 256 */
  readonly maxKeyBytes: number;
  /** Largest value, in bytes. @default 65_536 */
  readonly maxValueBytes: number;
  /** Most entries of one store, tombstones included. @default 1_000_000 */
  readonly maxEntries: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = Object.freeze({
  maxKeyBytes: 256,
  maxValueBytes: 64 * 1024,
  maxEntries: 1_000_000,
});

export function resolveLimits(limits: Partial<StoreLimits> = {}): StoreLimits {
  const r = { ...DEFAULT_STORE_LIMITS, ...limits };
  for (const [name, v] of Object.entries(r))
    if (!Number.isSafeInteger(v) || v < 1)
      throw new ConfigError(`MapStore option limits.${name} must be an integer >= 1 (got ${v})`);
  return r;
}

/** Throws KEY_TOO_LARGE or BAD_KEY unless `key` is within the limits. */
export function checkKey(key: string, limits: Pick<StoreLimits, "maxKeyBytes">): void {
  if (typeof key !== "string") throw new KvError("BAD_KEY", `key must be a string, got ${typeof key}`);
  const n = utf8Length(key);
  if (n > limits.maxKeyBytes)
    throw new KvError("KEY_TOO_LARGE", `key of ${n} bytes exceeds maxKeyBytes ${limits.maxKeyBytes}`);
  if (!isWellFormed(key))
    throw new KvError("BAD_KEY", "key contains a lone UTF-16 surrogate (not representable in UTF-8)");
}

/** Throws VALUE_TOO_LARGE unless `value` is null or within the limits. */
export function checkValue(value: Uint8Array | null, limits: Pick<StoreLimits, "maxValueBytes">): void {
  if (value === null) return;
  if (!(value instanceof Uint8Array))
    throw new KvError("VALUE_TOO_LARGE", "value must be a Uint8Array (or null for a delete)");
  if (value.length > limits.maxValueBytes)
    throw new KvError(
      "VALUE_TOO_LARGE",
      `value of ${value.length} bytes exceeds maxValueBytes ${limits.maxValueBytes}`,
    );
}

/** Validates an entry received from elsewhere: key, value, well-formed version (BAD_FRAME). */
export function checkEntry(e: Entry, limits: Pick<StoreLimits, "maxKeyBytes" | "maxValueBytes">): void {
  if (e === null || typeof e !== "object") throw new KvError("BAD_FRAME", "entry is not an object");
  checkKey(e.key, limits);
  checkValue(e.value, limits);
  const problem = versionProblem(e.version);
  if (problem) throw new KvError("BAD_FRAME", `entry "${e.key.slice(0, 64)}": bad version: ${problem}`);
  if (e.replaces !== undefined) {
    const p = versionProblem(e.replaces);
    if (p) throw new KvError("BAD_FRAME", `entry "${e.key.slice(0, 64)}": bad replaced version: ${p}`);
  }
}

/**
 * Bytes an entry accounts for in budgets (backlog, batches): key and value bytes, the version's
 * names, plus ENTRY_OVERHEAD for the fixed fields. Close to its size on the wire (codec.ts).
 */
export function entryBytes(e: Entry): number {
  return (
    ENTRY_OVERHEAD +
    utf8Length(e.key) +
    (e.value?.length ?? 0) +
    utf8Length(e.version.site) +
    utf8Length(e.version.member) +
    replacesBytes(e)
  );
}

/** Bytes of an entry's replaced version on the wire (0 when it has none). */
export function replacesBytes(e: Entry): number {
  const r = e.replaces;
  return r === undefined ? 0 : VERSION_OVERHEAD + utf8Length(r.site) + utf8Length(r.member);
}

/** Fixed bytes of a version on the wire: wall 8 + logical u16 + 2 x str8 length. */
export const VERSION_OVERHEAD = 8 + 2 + 1 + 1;

/** Fixed bytes of an entry on the wire: key u16 + flag u8 + value u32 + wall 8 + logical u16 + 2 x str8 length. */
export const ENTRY_OVERHEAD = 2 + 1 + 4 + 8 + 2 + 1 + 1;

/** A copy of `e` without local-only fields (what goes on the wire). */
export function wireEntry(e: Entry): Entry {
  return e.replaces === undefined
    ? { key: e.key, value: e.value, version: e.version }
    : { key: e.key, value: e.value, version: e.version, replaces: e.replaces };
}
