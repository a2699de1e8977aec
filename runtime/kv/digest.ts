// Bucketed hashes of a store, for anti-entropy: two replicas exchange their digests and then only
// the entries of the buckets whose hashes differ.
//
// - A key's bucket: the first two bytes of SHA-256(UTF-8 key), big-endian, modulo BUCKETS.
// - An entry's hash: the first 8 bytes of SHA-256("kv1\0" + UTF-8 key + "\0" + versionKey +
//   "\0" + "T" (tombstone) or "V" (value)), as a big-endian 64-bit integer. The value's bytes are
//   not hashed: a version names one write, so equal versions mean equal values.
// - A bucket's hash: the XOR of the hashes of its entries (0 when empty). XOR is its own inverse,
//   so adding, removing or replacing an entry is one XOR each: O(1) per change.
// - The root: hex SHA-256 of the BUCKETS hashes as 8-byte big-endian words. Equal roots = equal
//   stores (up to hash collisions), so a sync can stop after one message.
import { createHash } from "node:crypto";
import type { Entry } from "./entry.js";
import { KvError } from "./errors.js";
import { versionKey } from "./version.js";

/** Buckets of a digest (a power of two, at most 65536). */
export const BUCKETS = 1024;
/** Bytes of a digest root. */
export const ROOT_BYTES = 32;

const utf8 = new TextEncoder();

/** The bucket (0..BUCKETS-1) of a key. */
export function bucketOf(key: string): number {
  const h = createHash("sha256").update(utf8.encode(key)).digest();
  return ((h[0]! << 8) | h[1]!) % BUCKETS;
}

/** The 64-bit hash of an entry (key, version, tombstone flag). */
export function entryHash(e: Entry): bigint {
  const h = createHash("sha256")
    .update("kv1\0")
    .update(utf8.encode(e.key))
    .update(`\0${versionKey(e.version)}\0${e.value === null ? "T" : "V"}`)
    .digest();
  return h.readBigUInt64BE(0);
}

/** Hex SHA-256 over bucket hashes (8-byte big-endian each). */
export function digestRoot(hashes: BigUint64Array): string {
  const b = Buffer.alloc(hashes.length * 8);
  for (let i = 0; i < hashes.length; i++) b.writeBigUInt64BE(hashes[i]!, i * 8);
  return createHash("sha256").update(b).digest("hex");
}

/** Buckets whose hashes differ, ascending. Both arrays must have BUCKETS entries. */
export function diffBuckets(a: BigUint64Array, b: BigUint64Array): number[] {
  if (a.length !== b.length)
    throw new KvError("BAD_FRAME", `digests of ${a.length} and ${b.length} buckets cannot be compared`);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** The digest of one store, kept up to date by the store (toggle on every add and removal). */
export class Digest {
  readonly #hashes = new BigUint64Array(BUCKETS);
  #root: string | null = null;

  bucketOf(key: string): number {
    return bucketOf(key);
  }

  /** Adds or removes (XOR is both) an entry hash in a bucket. */
  toggle(bucket: number, hash: bigint): void {
    this.#hashes[bucket] = this.#hashes[bucket]! ^ hash;
    this.#root = null;
  }

  /** A copy of the bucket hashes. */
  hashes(): BigUint64Array {
    return this.#hashes.slice();
  }

  /** Hash of all buckets (cached until the next change). */
  root(): string {
    this.#root ??= digestRoot(this.#hashes);
    return this.#root;
  }
}
