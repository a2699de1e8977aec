// Bucketed hashes of a store, for anti-entropy: two replicas compare digests and then exchange
// only the entries of the parts whose hashes differ. Two levels:
//
// - A key's leaf: the first two bytes of SHA-256(UTF-8 key), big-endian (0..65535). Its bucket is
//   leaf >> 6 (BUCKETS = 1024 buckets), its sub-bucket leaf & 63 (SUB_BUCKETS = 64 per bucket).
// - An entry's hash: the first 8 bytes of SHA-256("kv1\0" + UTF-8 key + "\0" + versionKey +
//   "\0" + "T" (tombstone) or "V" (value)), as a big-endian 64-bit integer. The value's bytes are
//   not hashed: a version names one write, so equal versions mean equal values.
// - A leaf's hash and a bucket's hash: the XOR of the hashes of their entries (0 when empty). XOR
//   is its own inverse, so adding, removing or replacing an entry is two XORs per level: O(1).
// - The root: hex SHA-256 of the BUCKETS hashes as 8-byte big-endian words. Equal roots = equal
//   stores (up to hash collisions), so a sync can stop after one message.
//
// A sync compares the 1024 bucket hashes (8 KiB); for a differing bucket it either takes the whole
// bucket (MapStore.bucket) or first compares its 64 leaf hashes (subHashes) and takes only the
// differing leaves (MapStore.leaf). With 100k keys a bucket holds ~100 entries and a leaf ~1.5, so
// the second level is what makes "1 % differ" cost about 1 % (test/kv/digest.test.ts counts it).
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import type { Entry } from "./entry.js";
import { KvError } from "./errors.js";
import { versionKey } from "./version.js";

/** Buckets of a digest (top level). */
export const BUCKETS = 1024;
/** Leaves (sub-buckets) of one bucket. */
export const SUB_BUCKETS = 64;
/** Leaves in all: BUCKETS * SUB_BUCKETS. */
export const LEAVES = BUCKETS * SUB_BUCKETS;
/** Bytes of a digest root. */
export const ROOT_BYTES = 32;

/**
 * SHA-256 of a string's UTF-8 bytes. The one-shot `crypto.hash` (Node >= 20.12) is several times
 * cheaper than a Hash object for inputs this small, and these run twice per change (bench/kv.mjs
 * profiles put createHash at ~18 % of a replica's CPU); older Node falls back to createHash.
 */
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: "buffer") => Buffer }).hash;
const sha256 = oneShot
  ? (text: string): Buffer => oneShot("sha256", text, "buffer")
  : (text: string): Buffer => createHash("sha256").update(text).digest();

/** The leaf (0..LEAVES-1) of a key. */
export function leafOf(key: string): number {
  const h = sha256(key);
  return (h[0]! << 8) | h[1]!;
}

/** The bucket (0..BUCKETS-1) of a key. */
export function bucketOf(key: string): number {
  return leafOf(key) >> 6;
}

/** The leaf number of sub-bucket `sub` of bucket `bucket`. */
export function leafNumber(bucket: number, sub: number): number {
  return bucket * SUB_BUCKETS + sub;
}

/** The 64-bit hash of an entry (key, version, tombstone flag). */
export function entryHash(e: Entry): bigint {
  // The same bytes as hashing "kv1\0", the key, then the rest, in pieces.
  return sha256(`kv1\0${e.key}\0${versionKey(e.version)}\0${e.value === null ? "T" : "V"}`).readBigUInt64BE(
    0,
  );
}

/** Hex SHA-256 over bucket hashes (8-byte big-endian each). */
export function digestRoot(hashes: BigUint64Array): string {
  const b = Buffer.alloc(hashes.length * 8);
  for (let i = 0; i < hashes.length; i++) b.writeBigUInt64BE(hashes[i]!, i * 8);
  return createHash("sha256").update(b).digest("hex");
}

/**
 * Indexes whose hashes differ, ascending (bucket numbers for two `hashes()`, sub-bucket numbers
 * for two `subHashes(b)`). Both arrays must be of the same length.
 */
export function diffBuckets(a: BigUint64Array, b: BigUint64Array): number[] {
  if (a.length !== b.length)
    throw new KvError("BAD_FRAME", `digests of ${a.length} and ${b.length} buckets cannot be compared`);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** The digest of one store, kept up to date by the store (toggle on every add and removal). */
export class Digest {
  readonly #buckets = new BigUint64Array(BUCKETS);
  readonly #leaves = new BigUint64Array(LEAVES);
  #root: string | null = null;

  bucketOf(key: string): number {
    return bucketOf(key);
  }

  /** Adds or removes (XOR is both) an entry hash in a leaf and its bucket. */
  toggle(leaf: number, hash: bigint): void {
    const b = leaf >> 6;
    this.#buckets[b] = this.#buckets[b]! ^ hash;
    this.#leaves[leaf] = this.#leaves[leaf]! ^ hash;
    this.#root = null;
  }

  /** A copy of the BUCKETS bucket hashes. */
  hashes(): BigUint64Array {
    return this.#buckets.slice();
  }

  /** A copy of the SUB_BUCKETS leaf hashes of `bucket`. */
  subHashes(bucket: number): BigUint64Array {
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= BUCKETS)
      throw new RangeError(`bucket ${bucket} outside 0..${BUCKETS - 1}`);
    return this.#leaves.slice(bucket * SUB_BUCKETS, (bucket + 1) * SUB_BUCKETS);
  }

  /** Hash of all buckets (cached until the next change). */
  root(): string {
    this.#root ??= digestRoot(this.#buckets);
    return this.#root;
  }
}
