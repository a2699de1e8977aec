// The kv wire format: the payloads of RelayChannel messages between the replicas of a map.
// Pure: bytes in, values out. The channel frames messages, so a payload is exactly one message.
//
// message  = kind u8, map str8 (1..64 UTF-8 bytes), then the kind's fields:
//   1 UPDATE      batch u32, entries
//   2 ACK         batch u32
//   3 DIGEST_REQ  session u32
//   4 DIGEST_RES  session u32, root 32 bytes, count u32 (= BUCKETS), count x u64 bucket hash
//   5 BUCKET_REQ  session u32, count u16 (1..BUCKETS), count x u16 bucket (< BUCKETS)
//   6 BUCKET_RES  session u32, chunk u32, last u8 (0|1), entries, checksum 8 bytes
//   7 ERROR       code str8 (a KvErrorCode), message u16 length + UTF-8 (<= 1024 bytes)
//   8 SUB_DIGEST_REQ  session u32, count u16 (1..BUCKETS), count x u16 bucket
//   9 SUB_DIGEST_RES  session u32, count u16 (1..BUCKETS), count x u16 bucket, then
//                     count x SUB_BUCKETS x u64 leaf hash
//  10 LEAF_REQ    session u32, count u32 (1..LEAVES), count x u16 leaf; answered by BUCKET_RES
//  11 LEAF_DIFF_REQ  session u32, count u32 (1..LEAVES), count x (leaf u16, n u32, n x u64 entry
//                    hash: the asker's entries of that leaf, digest.ts entryHash); n summed over
//                    the leaves <= maxEntries. Answered by WANT, then BUCKET_RES chunks holding
//                    only the entries whose hash the asker did not name
//  12 WANT        session u32, count u32 (<= maxEntries), count x u64: the hashes of a
//                 LEAF_DIFF_REQ that the answerer does not hold (the asker pushes those entries)
// entries  = count u32 (<= maxEntries), count x entry
// entry    = key u16 length + UTF-8 (<= maxKeyBytes), flags u8 (bit 0: has a value, else a
//            tombstone; bit 1: has a replaced version; no other bit),
//            [value u32 length (<= maxValueBytes) + bytes when bit 0], version,
//            [replaced version when bit 1]
// version  = wall u64 (<= 2^53-1), logical u16, site str8, member str8 (1..255 bytes each)
// Integers are big-endian. The BUCKET_RES checksum is the first 8 bytes of SHA-256 over every
// byte before it, so a chunk corrupted on the way is rejected (BAD_FRAME) and requested again.
// DIGEST_RES's root must be the root of its hashes (digest.ts). Nothing may follow a message.
//
// decodeKvMessage returns a message or throws KvError BAD_FRAME, never anything else; counts and
// lengths are checked against the limits and the bytes left before anything is allocated.
import { createHash } from "node:crypto";
import { BytesMemo } from "../protocol/bytes-memo.js";
import { Reader } from "../protocol/reader.js";
import { Writer } from "../protocol/writer.js";
import { BUCKETS, digestRoot, LEAVES, ROOT_BYTES, SUB_BUCKETS } from "./digest.js";
import { checkEntry, DEFAULT_STORE_LIMITS, ENTRY_OVERHEAD, type Entry, replacesBytes } from "./entry.js";
import { isKvErrorCode, KvError, type KvErrorCode } from "./errors.js";
import { MAX_LOGICAL } from "./hlc.js";
import { isWellFormed, MAX_NAME_BYTES, utf8Length, type Version } from "./version.js";

export const KvKind = {
  Update: 1,
  Ack: 2,
  DigestReq: 3,
  DigestRes: 4,
  BucketReq: 5,
  BucketRes: 6,
  Error: 7,
  SubDigestReq: 8,
  SubDigestRes: 9,
  LeafReq: 10,
  LeafDiffReq: 11,
  Want: 12,
} as const;

/** Entry flag bits. */
const FLAG_VALUE = 1;
const FLAG_REPLACES = 2;

export const MAX_MAP_NAME_BYTES = 64;
export const MAX_ERROR_MESSAGE_BYTES = 1024;
export const CHECKSUM_BYTES = 8;
/** Smallest entry on the wire (empty key, tombstone, 1-byte names). */
export const MIN_ENTRY_WIRE_BYTES = 2 + 1 + 8 + 2 + 2 + 2;

export type KvMessage =
  /** Changed entries for a backup site (or a member); answered by ACK with the same batch. */
  | {
      readonly type: "update";
      readonly map: string;
      readonly batch: number;
      readonly entries: readonly Entry[];
    }
  | { readonly type: "ack"; readonly map: string; readonly batch: number }
  /** Anti-entropy: "send me your digest". */
  | { readonly type: "digest-req"; readonly map: string; readonly session: number }
  | {
      readonly type: "digest-res";
      readonly map: string;
      readonly session: number;
      /** Hex root (64 characters) of `hashes`. */
      readonly root: string;
      readonly hashes: BigUint64Array;
    }
  /** "Send me the entries of these buckets." */
  | {
      readonly type: "bucket-req";
      readonly map: string;
      readonly session: number;
      readonly buckets: readonly number[];
    }
  /** One chunk of the answer; `last` on the final one. The checksum is added and verified by the codec. */
  | {
      readonly type: "bucket-res";
      readonly map: string;
      readonly session: number;
      readonly chunk: number;
      readonly last: boolean;
      readonly entries: readonly Entry[];
    }
  | { readonly type: "error"; readonly map: string; readonly code: KvErrorCode; readonly message: string }
  /** "Send me the leaf hashes (Digest.subHashes) of these buckets." */
  | {
      readonly type: "sub-digest-req";
      readonly map: string;
      readonly session: number;
      readonly buckets: readonly number[];
    }
  /** SUB_BUCKETS hashes per bucket: hashes[i * SUB_BUCKETS + s] is sub-bucket s of buckets[i]. */
  | {
      readonly type: "sub-digest-res";
      readonly map: string;
      readonly session: number;
      readonly buckets: readonly number[];
      readonly hashes: BigUint64Array;
    }
  /** "Send me the entries of these leaves" (MapStore.leaf); answered by BUCKET_RES chunks. */
  | {
      readonly type: "leaf-req";
      readonly map: string;
      readonly session: number;
      readonly leaves: readonly number[];
    }
  /**
   * "Send me the entries of these leaves that are not among mine" (each leaf with the entry
   * hashes the asker holds); answered by WANT, then BUCKET_RES chunks.
   */
  | {
      readonly type: "leaf-diff-req";
      readonly map: string;
      readonly session: number;
      readonly leaves: readonly LeafHashes[];
    }
  /** The hashes of a LEAF_DIFF_REQ the answerer lacks: the asker pushes those entries. */
  | {
      readonly type: "want";
      readonly map: string;
      readonly session: number;
      readonly hashes: BigUint64Array;
    };

/** One leaf of a LEAF_DIFF_REQ: the hashes of the asker's entries in it. */
export interface LeafHashes {
  readonly leaf: number;
  readonly hashes: BigUint64Array;
}

export interface KvCodecLimits {
  /** @default 256 */
  readonly maxKeyBytes: number;
  /** @default 65_536 */
  readonly maxValueBytes: number;
  /** Most entries in one message. @default 100_000 */
  readonly maxEntries: number;
  /** Largest message, in bytes. @default 8 MiB */
  readonly maxMessageBytes: number;
}

export const DEFAULT_CODEC_LIMITS: KvCodecLimits = Object.freeze({
  maxKeyBytes: DEFAULT_STORE_LIMITS.maxKeyBytes,
  maxValueBytes: DEFAULT_STORE_LIMITS.maxValueBytes,
  maxEntries: 100_000,
  maxMessageBytes: 8 * 1024 * 1024,
});

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** Decoded site and member names (KvReader.name). */
const NAMES = new BytesMemo<string>(64);

/** Bytes `e` takes on the wire (for sizing batches below maxMessageBytes). */
export function entryWireBytes(e: Entry): number {
  return (
    ENTRY_OVERHEAD -
    (e.value === null ? 4 : 0) +
    utf8Length(e.key) +
    (e.value?.length ?? 0) +
    utf8Length(e.version.site) +
    utf8Length(e.version.member) +
    replacesBytes(e)
  );
}

/**
 * Most bytes of a message around its entries: BUCKET_RES (kind, a 64-byte map name, session,
 * chunk, last, count, checksum); UPDATE needs less.
 */
export const MAX_ENVELOPE_BYTES = 1 + 1 + MAX_MAP_NAME_BYTES + 4 + 4 + 1 + 4 + CHECKSUM_BYTES;

/**
 * Splits entries, in order, into chunks that each encode into at most `maxMessageBytes` (an entry
 * too big for any message gets a chunk of its own; the encoder then refuses it) and hold at most
 * `maxEntries` entries: the chunks of a state transfer or the batches of an UPDATE.
 */
export function chunkEntries(
  entries: readonly Entry[],
  limits: KvCodecLimits = DEFAULT_CODEC_LIMITS,
): Entry[][] {
  const budget = limits.maxMessageBytes - MAX_ENVELOPE_BYTES;
  const out: Entry[][] = [];
  let cur: Entry[] = [];
  let size = 0;
  for (const e of entries) {
    const n = entryWireBytes(e);
    if (cur.length > 0 && (size + n > budget || cur.length >= limits.maxEntries)) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(e);
    size += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding

class KvWriter extends Writer {
  constructor() {
    super(Buffer.allocUnsafe(256), 0, true);
  }
  str8(s: string, max: number, field: string): this {
    const b = utf8.encode(s);
    if (b.length < 1 || b.length > max || !isWellFormed(s))
      throw new KvError("BAD_FRAME", `${field} must be 1..${max} UTF-8 bytes of well-formed Unicode`);
    return this.u8(b.length).bytes(b);
  }
  u32Checked(v: number, field: string): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw new KvError("BAD_FRAME", `${field} must be an integer 0..2^32-1, got ${v}`);
    return this.u32(v);
  }
  entries(list: readonly Entry[], limits: KvCodecLimits): this {
    if (list.length > limits.maxEntries)
      throw new KvError(
        "BAD_FRAME",
        `${list.length} entries exceed maxEntries ${limits.maxEntries} per message`,
      );
    this.u32(list.length);
    for (const e of list) {
      checkEntry(e, limits);
      const key = utf8.encode(e.key);
      this.u16(key.length).bytes(key);
      const flags = (e.value === null ? 0 : FLAG_VALUE) | (e.replaces === undefined ? 0 : FLAG_REPLACES);
      this.u8(flags);
      if (e.value !== null) this.u32(e.value.length).bytes(e.value);
      this.version(e.version);
      if (e.replaces !== undefined) this.version(e.replaces);
    }
    return this;
  }
  /** count (u16, or u32 when `wide`) then count x u16, each < `bound`. */
  numbers(list: readonly number[], bound: number, what: string, wide: boolean): this {
    if (list.length < 1 || list.length > bound)
      throw new KvError("BAD_FRAME", `a request names 1..${bound} ${what}s, got ${list.length}`);
    if (wide) this.u32(list.length);
    else this.u16(list.length);
    for (const n of list) {
      if (!Number.isInteger(n) || n < 0 || n >= bound)
        throw new KvError("BAD_FRAME", `${what} ${n} outside 0..${bound - 1}`);
      this.u16(n);
    }
    return this;
  }
  hashes(h: BigUint64Array): this {
    const b = Buffer.alloc(h.length * 8);
    for (let i = 0; i < h.length; i++) b.writeBigUInt64BE(h[i]!, i * 8);
    return this.bytes(b);
  }
  version(v: Version): this {
    const { wall, logical } = v.hlc;
    this.u32(Math.floor(wall / 0x1_0000_0000))
      .u32(wall >>> 0)
      .u16(logical);
    return this.str8(v.site, MAX_NAME_BYTES, "site").str8(v.member, MAX_NAME_BYTES, "member");
  }
  done(limits: KvCodecLimits): Buffer {
    if (this.pos > limits.maxMessageBytes)
      throw new KvError(
        "BAD_FRAME",
        `message of ${this.pos} bytes exceeds maxMessageBytes ${limits.maxMessageBytes}: send fewer entries per message`,
      );
    return this.buf.subarray(0, this.pos);
  }
}

function checksum(b: Uint8Array): Buffer {
  return createHash("sha256").update(b).digest().subarray(0, CHECKSUM_BYTES);
}

/** Encodes one message. Throws KvError for a value that cannot be sent (names the field). */
export function encodeKvMessage(m: KvMessage, limits: KvCodecLimits = DEFAULT_CODEC_LIMITS): Buffer {
  const w = new KvWriter();
  w.u8(KvKind[kindName(m.type)]).str8(m.map, MAX_MAP_NAME_BYTES, "map name");
  switch (m.type) {
    case "update":
      return w.u32Checked(m.batch, "batch").entries(m.entries, limits).done(limits);
    case "ack":
      return w.u32Checked(m.batch, "batch").done(limits);
    case "digest-req":
      return w.u32Checked(m.session, "session").done(limits);
    case "digest-res": {
      if (m.hashes.length !== BUCKETS)
        throw new KvError("BAD_FRAME", `a digest has ${BUCKETS} buckets, got ${m.hashes.length}`);
      if (!/^[0-9a-f]{64}$/.test(m.root))
        throw new KvError("BAD_FRAME", "root must be 64 lowercase hex digits");
      w.u32Checked(m.session, "session").bytes(Buffer.from(m.root, "hex")).u32(m.hashes.length);
      return w.hashes(m.hashes).done(limits);
    }
    case "bucket-req":
    case "sub-digest-req":
      return w.u32Checked(m.session, "session").numbers(m.buckets, BUCKETS, "bucket", false).done(limits);
    case "leaf-req":
      return w.u32Checked(m.session, "session").numbers(m.leaves, LEAVES, "leaf", true).done(limits);
    case "leaf-diff-req": {
      const n = m.leaves.length;
      if (n < 1 || n > LEAVES)
        throw new KvError("BAD_FRAME", `a request names 1..${LEAVES} leaves, got ${n}`);
      const total = m.leaves.reduce((sum, l) => sum + l.hashes.length, 0);
      if (total > limits.maxEntries)
        throw new KvError("BAD_FRAME", `${total} hashes exceed maxEntries ${limits.maxEntries} per message`);
      w.u32Checked(m.session, "session").u32(n);
      for (const l of m.leaves) {
        if (!Number.isInteger(l.leaf) || l.leaf < 0 || l.leaf >= LEAVES)
          throw new KvError("BAD_FRAME", `leaf ${l.leaf} outside 0..${LEAVES - 1}`);
        w.u16(l.leaf).u32(l.hashes.length).hashes(l.hashes);
      }
      return w.done(limits);
    }
    case "want":
      if (m.hashes.length > limits.maxEntries)
        throw new KvError(
          "BAD_FRAME",
          `${m.hashes.length} hashes exceed maxEntries ${limits.maxEntries} per message`,
        );
      return w.u32Checked(m.session, "session").u32(m.hashes.length).hashes(m.hashes).done(limits);
    case "sub-digest-res": {
      if (m.hashes.length !== m.buckets.length * SUB_BUCKETS)
        throw new KvError(
          "BAD_FRAME",
          `${m.buckets.length} buckets need ${m.buckets.length * SUB_BUCKETS} hashes, got ${m.hashes.length}`,
        );
      w.u32Checked(m.session, "session").numbers(m.buckets, BUCKETS, "bucket", false);
      return w.hashes(m.hashes).done(limits);
    }
    case "bucket-res": {
      w.u32Checked(m.session, "session")
        .u32Checked(m.chunk, "chunk")
        .u8(m.last ? 1 : 0);
      w.entries(m.entries, limits);
      w.bytes(checksum(w.buf.subarray(0, w.pos)));
      return w.done(limits);
    }
    case "error": {
      if (!isKvErrorCode(m.code)) throw new KvError("BAD_FRAME", `unknown error code ${m.code}`);
      w.str8(m.code, 64, "error code");
      const text = truncateUtf8(m.message, MAX_ERROR_MESSAGE_BYTES);
      return w.u16(text.length).bytes(text).done(limits);
    }
  }
}

function kindName(t: KvMessage["type"]): keyof typeof KvKind {
  switch (t) {
    case "update":
      return "Update";
    case "ack":
      return "Ack";
    case "digest-req":
      return "DigestReq";
    case "digest-res":
      return "DigestRes";
    case "bucket-req":
      return "BucketReq";
    case "bucket-res":
      return "BucketRes";
    case "error":
      return "Error";
    case "sub-digest-req":
      return "SubDigestReq";
    case "sub-digest-res":
      return "SubDigestRes";
    case "leaf-req":
      return "LeafReq";
    case "leaf-diff-req":
      return "LeafDiffReq";
    case "want":
      return "Want";
  }
}

/** UTF-8 of `s`, cut to at most `max` bytes on a character boundary. */
function truncateUtf8(s: string, max: number): Uint8Array {
  const b = utf8.encode(s);
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--; // do not cut a character in two
  return b.subarray(0, end);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function bad(why: string): KvError {
  return new KvError("BAD_FRAME", `bad kv message: ${why}`);
}

/** Strict UTF-8 text of `b`; BAD_FRAME naming `what` when it is not. */
function utf8Text(b: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw bad(`${what} is not valid UTF-8`);
  }
}

class KvReader extends Reader {
  constructor(buf: Uint8Array) {
    super(buf, 0, buf.length, (what, n, at) =>
      bad(`${what}: needs ${n} bytes at offset ${at.pos}, ${at.end - at.pos} left`),
    );
  }
  text(n: number, what: string): string {
    return utf8Text(this.bytes(n, what), what);
  }
  str8(max: number, what: string): string {
    return this.text(this.#length8(max, what), what);
  }
  /**
   * A site or member name (str8). The same few names are in every entry, and a store keeps them
   * in every entry's version: through the memo each name is one string, not one per entry.
   */
  name(what: string): string {
    const n = this.#length8(MAX_NAME_BYTES, what);
    const start = this.pos;
    this.need(n, what);
    this.pos += n;
    return NAMES.get(this.buf, start, start + n, (b, s, e) => utf8Text(b.subarray(s, e), what));
  }
  /** A str8's length byte, 1..max. */
  #length8(max: number, what: string): number {
    const n = this.u8(what);
    if (n < 1 || n > max) throw bad(`${what} of ${n} bytes outside 1..${max}`);
    return n;
  }
  /** count (u16, or u32 when `wide`) then count x u16, each < `bound`. */
  numbers(bound: number, what: string, wide: boolean): number[] {
    const count = wide ? this.u32(`${what} count`) : this.u16(`${what} count`);
    if (count < 1 || count > bound) throw bad(`${what} count ${count} outside 1..${bound}`);
    this.need(count * 2, `${what}s`);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const n = this.u16(what);
      if (n >= bound) throw bad(`${what} ${n} outside 0..${bound - 1}`);
      out.push(n);
    }
    return out;
  }
  hashes(count: number, what: string): BigUint64Array {
    const raw = this.bytes(count * 8, what);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new BigUint64Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getBigUint64(i * 8);
    return out;
  }
  entries(limits: KvCodecLimits): Entry[] {
    const count = this.u32("entry count");
    if (count > limits.maxEntries) throw bad(`${count} entries exceed maxEntries ${limits.maxEntries}`);
    if (count * MIN_ENTRY_WIRE_BYTES > this.remaining)
      throw bad(`${count} entries cannot fit in the ${this.remaining} bytes left`);
    const out: Entry[] = [];
    for (let i = 0; i < count; i++) out.push(this.entry(limits));
    return out;
  }
  entry(limits: KvCodecLimits): Entry {
    const keyLen = this.u16("key length");
    if (keyLen > limits.maxKeyBytes)
      throw bad(`key of ${keyLen} bytes exceeds maxKeyBytes ${limits.maxKeyBytes}`);
    const key = this.text(keyLen, "key");
    const flags = this.u8("entry flags");
    if ((flags & ~(FLAG_VALUE | FLAG_REPLACES)) !== 0) throw bad(`entry flags ${flags} set an unknown bit`);
    let value: Uint8Array | null = null;
    if ((flags & FLAG_VALUE) !== 0) {
      const n = this.u32("value length");
      if (n > limits.maxValueBytes)
        throw bad(`value of ${n} bytes exceeds maxValueBytes ${limits.maxValueBytes}`);
      this.need(n, "value");
      value = this.copyOwned(n, "value"); // kept by the store: see Reader.copyOwned
    }
    const version = this.version();
    if ((flags & FLAG_REPLACES) === 0) return { key, value, version };
    return { key, value, version, replaces: this.version() };
  }
  version(): Version {
    const hi = this.u32("wall");
    const lo = this.u32("wall");
    if (hi > 0x1fffff) throw bad("wall above 2^53-1");
    const logical = this.u16("logical");
    if (logical > MAX_LOGICAL) throw bad("logical out of range");
    const site = this.name("site");
    const member = this.name("member");
    return { hlc: { wall: hi * 0x1_0000_0000 + lo, logical }, site, member };
  }
}

/** Decodes one message; throws KvError BAD_FRAME (only) on anything else. */
export function decodeKvMessage(bytes: Uint8Array, limits: KvCodecLimits = DEFAULT_CODEC_LIMITS): KvMessage {
  try {
    return decode(bytes, limits);
  } catch (err) {
    if (err instanceof KvError && err.code === "BAD_FRAME") throw err;
    // Defence in depth: a decoder bug must look like a bad message to the caller, not crash it.
    throw new KvError("BAD_FRAME", `bad kv message: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
}

function decode(bytes: Uint8Array, limits: KvCodecLimits): KvMessage {
  if (!(bytes instanceof Uint8Array)) throw bad("not bytes");
  if (bytes.length > limits.maxMessageBytes)
    throw bad(`${bytes.length} bytes exceed maxMessageBytes ${limits.maxMessageBytes}`);
  const r = new KvReader(bytes);
  const kind = r.u8("kind");
  const map = r.str8(MAX_MAP_NAME_BYTES, "map name");
  let m: KvMessage;
  switch (kind) {
    case KvKind.Update:
      m = { type: "update", map, batch: r.u32("batch"), entries: r.entries(limits) };
      break;
    case KvKind.Ack:
      m = { type: "ack", map, batch: r.u32("batch") };
      break;
    case KvKind.DigestReq:
      m = { type: "digest-req", map, session: r.u32("session") };
      break;
    case KvKind.DigestRes: {
      const session = r.u32("session");
      const root = Buffer.from(r.bytes(ROOT_BYTES, "root")).toString("hex");
      const count = r.u32("bucket count");
      if (count !== BUCKETS) throw bad(`digest of ${count} buckets, expected ${BUCKETS}`);
      const hashes = r.hashes(count, "bucket hashes");
      if (digestRoot(hashes) !== root) throw bad("digest root does not match its bucket hashes");
      m = { type: "digest-res", map, session, root, hashes };
      break;
    }
    case KvKind.BucketReq: {
      const session = r.u32("session");
      m = { type: "bucket-req", map, session, buckets: r.numbers(BUCKETS, "bucket", false) };
      break;
    }
    case KvKind.SubDigestReq: {
      const session = r.u32("session");
      m = { type: "sub-digest-req", map, session, buckets: r.numbers(BUCKETS, "bucket", false) };
      break;
    }
    case KvKind.SubDigestRes: {
      const session = r.u32("session");
      const buckets = r.numbers(BUCKETS, "bucket", false);
      const hashes = r.hashes(buckets.length * SUB_BUCKETS, "leaf hashes");
      m = { type: "sub-digest-res", map, session, buckets, hashes };
      break;
    }
    case KvKind.LeafReq: {
      const session = r.u32("session");
      m = { type: "leaf-req", map, session, leaves: r.numbers(LEAVES, "leaf", true) };
      break;
    }
    case KvKind.LeafDiffReq: {
      const session = r.u32("session");
      const count = r.u32("leaf count");
      if (count < 1 || count > LEAVES) throw bad(`leaf count ${count} outside 1..${LEAVES}`);
      // Each leaf takes at least 6 bytes: refuse a count the message cannot hold before looping.
      r.need(count * 6, "leaves");
      const leaves: LeafHashes[] = [];
      let total = 0;
      for (let i = 0; i < count; i++) {
        const leaf = r.u16("leaf");
        if (leaf >= LEAVES) throw bad(`leaf ${leaf} outside 0..${LEAVES - 1}`);
        const n = r.u32("hash count");
        total += n;
        if (total > limits.maxEntries) throw bad(`more than maxEntries ${limits.maxEntries} hashes`);
        r.need(n * 8, "entry hashes");
        leaves.push({ leaf, hashes: r.hashes(n, "entry hashes") });
      }
      m = { type: "leaf-diff-req", map, session, leaves };
      break;
    }
    case KvKind.Want: {
      const session = r.u32("session");
      const n = r.u32("hash count");
      if (n > limits.maxEntries) throw bad(`${n} hashes exceed maxEntries ${limits.maxEntries}`);
      r.need(n * 8, "entry hashes");
      m = { type: "want", map, session, hashes: r.hashes(n, "entry hashes") };
      break;
    }
    case KvKind.BucketRes: {
      if (bytes.length < CHECKSUM_BYTES + 1) throw bad("too short for a checksum");
      const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
      if (!checksum(body).equals(bytes.subarray(body.length)))
        throw bad("bucket chunk checksum mismatch (corrupted on the way): request it again");
      const br = new KvReader(body);
      br.pos = r.pos;
      const session = br.u32("session");
      const chunk = br.u32("chunk");
      const last = br.u8("last");
      if (last > 1) throw bad(`last flag ${last} is neither 0 nor 1`);
      const entries = br.entries(limits);
      if (br.remaining !== 0) throw bad(`${br.remaining} bytes after the message`);
      r.pos = bytes.length;
      m = { type: "bucket-res", map, session, chunk, last: last === 1, entries };
      break;
    }
    case KvKind.Error: {
      const code = r.str8(64, "error code");
      if (!isKvErrorCode(code)) throw bad(`unknown error code ${JSON.stringify(code)}`);
      const n = r.u16("error message length");
      if (n > MAX_ERROR_MESSAGE_BYTES)
        throw bad(`error message of ${n} bytes over ${MAX_ERROR_MESSAGE_BYTES}`);
      m = { type: "error", map, code, message: r.text(n, "error message") };
      break;
    }
    default:
      throw bad(`unknown kind ${kind}`);
  }
  if (r.remaining !== 0) throw bad(`${r.remaining} bytes after the message`);
  if (m.type === "update" || m.type === "bucket-res") for (const e of m.entries) checkEntryWire(e, limits);
  return m;
}

function checkEntryWire(e: Entry, limits: KvCodecLimits): void {
  try {
    checkEntry(e, limits);
  } catch (err) {
    throw bad((err as Error).message);
  }
}
