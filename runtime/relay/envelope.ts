// The relay envelope: what relay members say to each other, inside local-cluster payloads and inside
// the payload of router MESSAGE frames on the bridge. Pure codec, no I/O.
//
// Wire layout (version 1, big-endian):
//   u16 magic 0x524c ("RL") | u8 version | u8 kind | u8 flags (0x02 lane, 0x04 retry, 0x08 service) | u8 hops
//   origin: str site | str name | 16 bytes incarnation (UUID of the sender's channel instance)
//   seq: u32 high | u32 low   (a safe integer; 0 = unsequenced control message)
//   [lane, when flags has 0x02: str site | u64 lane seq | u64 lane low]
//   dest: u8 0 all | 1 site (str site) | 2 member (str site, str name)
//   u32 payload length | payload
// str = u8 byte length (1..255) + UTF-8. Every length is checked against the bytes that remain
// and the limits before anything is allocated; the decoder throws EnvelopeError and nothing else.
//
// Sequence numbers: every DATA envelope carries the next number of its origin (origin = one
// incarnation of one sender), so a receiver can order and de-duplicate per origin (issue 6).
import { CodedError } from "../../contract/errors.js";
import { BytesMemo } from "../protocol/bytes-memo.js";
import { isUuid, uuidFromBytes, uuidToBytes } from "../protocol/uuid.js";

export const ENVELOPE_MAGIC = 0x524c;
export const ENVELOPE_VERSION = 1;
/** Largest payload the decoder accepts unless told otherwise (the router's frame limit is 10 MiB). */
export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;
/** How many times a member may pass an envelope on to another local member (guards against loops). */
export const DEFAULT_HOPS = 4;
const MAX_STRING = 255;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
const FIXED_HEADER = 6;

export enum EnvelopeKind {
  /** Application data (chat lines, replies...). Sequenced. */
  Data = 1,
  /** A site master announces its site's view on the bridge. */
  SiteView = 2,
  /** A site master leaves the bridge (graceful). */
  SiteBye = 3,
  /** A site master tells its local members what the bridge looks like. */
  Topology = 4,
  /** "Tell me your state" (relay probe). */
  ProbeRequest = 5,
  /** The answer to a probe request. */
  ProbeResponse = 6,
  /** A member tells its site masters how far it has delivered each origin's lane (local only). */
  Ack = 7,
  /** A site master tells an origin how far every member of its site has delivered (cross-site). */
  Stable = 8,
  /**
   * A sender's lane position without a message (lane low = its next lane seq, payload empty),
   * repeated while the lane is idle: a member that was out of the primary view learns at once what
   * it missed ("gap") instead of at the sender's next message, which may never come.
   */
  LaneMark = 9,
}
const KINDS: ReadonlySet<number> = new Set(
  Object.values(EnvelopeKind).filter((v): v is EnvelopeKind => typeof v === "number"),
);

/** Whether `n` is one of the kinds of EnvelopeKind (the codec's bound check). */
export function isEnvelopeKind(n: number): n is EnvelopeKind {
  return KINDS.has(n);
}
/** Flag bit: a lane section (reliable cross-site stream, see docs/DELIVERY.md) follows `seq`. */
export const FLAG_LANE = 0x02;
/** Flag bit (with FLAG_LANE only): a retransmission; site masters send it through every router. */
export const FLAG_RETRY = 0x04;
/**
 * Flag bit (Data only): the payload belongs to a runtime service built on the channel (the first
 * payload byte names it, e.g. replicated maps), not to the application: it travels like any Data
 * message (same order, same guarantee) and is handed to the channel's "service" listeners.
 */
export const FLAG_SERVICE = 0x08;

/**
 * Reliable cross-site stream of one origin towards one site. `seq` numbers the origin's messages to
 * that site without gaps (1, 2, ...); `low` is the oldest message the origin still buffers for it
 * (everything below was delivered by every member of that site's view when it became stable).
 */
export interface Lane {
  readonly site: string;
  readonly seq: number;
  readonly low: number;
  /** A retransmission (sent through every router, see docs/DELIVERY.md). */
  readonly retry?: boolean;
}

export type Destination =
  | { readonly kind: "all" }
  | { readonly kind: "site"; readonly site: string }
  | { readonly kind: "member"; readonly site: string; readonly name: string };

export interface Origin {
  readonly site: string;
  readonly name: string;
  /** Canonical lowercase UUID text; new for every channel instance (a restart is a new origin). */
  readonly incarnation: string;
}

export interface Envelope {
  readonly kind: EnvelopeKind;
  /** Local re-routes still allowed (decremented when a member passes it on to another member). */
  readonly hops: number;
  readonly origin: Origin;
  /** Per-origin sequence number, 1.. for Data; 0 for control kinds. */
  readonly seq: number;
  readonly dest: Destination;
  readonly payload: Uint8Array;
  /** Present on reliable cross-site Data envelopes only. */
  readonly lane?: Lane;
  /** Data for a runtime service, not the application (FLAG_SERVICE). */
  readonly service?: true;
}

export type EnvelopeErrorCode =
  | "truncated"
  | "bad-magic"
  | "bad-version"
  | "bad-kind"
  | "bad-flags"
  | "bad-string"
  | "bad-uuid"
  | "bad-seq"
  | "bad-dest"
  | "payload-too-large"
  | "trailing-bytes"
  | "bad-control";

/** A malformed envelope (decode) or an envelope that cannot be written (encode). */
export class EnvelopeError extends CodedError<EnvelopeErrorCode> {
  override readonly name = "EnvelopeError";
  constructor(code: EnvelopeErrorCode, message: string) {
    super(code, `${code}: ${message}`);
  }
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodings of the strings and incarnations written again and again (our name and site, the sites
 * we send to, our incarnation): computed once, not per envelope. Only valid values are kept;
 * bounded, and emptied when full.
 */
const MEMO_MAX = 1024;
const stringMemo = new Map<string, Uint8Array>();
const uuidMemo = new Map<string, Uint8Array>();

function remember(memo: Map<string, Uint8Array>, key: string, bytes: Uint8Array): Uint8Array {
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(key, bytes);
  return bytes;
}

function stringBytes(value: string, field: string): Uint8Array {
  const known = stringMemo.get(value);
  if (known) return known;
  const bytes = utf8.encode(value);
  if (bytes.length === 0 || bytes.length > MAX_STRING) {
    throw new EnvelopeError("bad-string", `${field} must be 1..${MAX_STRING} UTF-8 bytes`);
  }
  return remember(stringMemo, value, bytes);
}

function uuidBytes(uuid: string): Uint8Array {
  const known = uuidMemo.get(uuid);
  if (known) return known;
  if (!isUuid(uuid)) throw new EnvelopeError("bad-uuid", "incarnation is not a lowercase UUID");
  return remember(uuidMemo, uuid, uuidToBytes(uuid));
}

// Decoded names (sites, members): the same few in every envelope (building the string for every
// field was ~7 % of a site master's samples).
const NAMES = new BytesMemo<string>(64);

/**
 * `buf[start..end)` as text: ASCII (names, sites: the common case) without the UTF-8 decoder,
 * anything else through the strict decoder. Throws on invalid UTF-8.
 */
function decodeText(buf: Buffer, start: number, end: number): string {
  return NAMES.get(buf, start, end, decodeName);
}

function decodeName(buf: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) return strictUtf8.decode(buf.subarray(start, end));
  }
  return Buffer.prototype.toString.call(buf, "latin1", start, end);
}

/** The encoded fields of an envelope and its size: what encodeEnvelope writes. */
interface Prepared {
  readonly site: Uint8Array;
  readonly name: Uint8Array;
  readonly inc: Uint8Array;
  readonly laneSite: Uint8Array | null;
  readonly destKind: number;
  readonly destSite: Uint8Array | null;
  readonly destName: Uint8Array | null;
  readonly size: number;
}

/** Checks every field and encodes the strings. Throws EnvelopeError if a field is out of bounds. */
function prepare(env: Envelope): Prepared {
  if (!isEnvelopeKind(env.kind)) {
    throw new EnvelopeError("bad-kind", `kind ${env.kind}`);
  }
  if (!Number.isInteger(env.hops) || env.hops < 0 || env.hops > 255) {
    throw new EnvelopeError("bad-flags", `hops ${env.hops} outside 0..255`);
  }
  if (env.service && env.kind !== EnvelopeKind.Data) {
    throw new EnvelopeError("bad-flags", `service data on kind ${env.kind}: only Data carries it`);
  }
  if (!Number.isSafeInteger(env.seq) || env.seq < 0) {
    throw new EnvelopeError("bad-seq", `seq ${env.seq} is not a safe non-negative integer`);
  }
  const site = stringBytes(env.origin.site, "origin.site");
  const name = stringBytes(env.origin.name, "origin.name");
  const inc = uuidBytes(env.origin.incarnation);
  const lane = env.lane;
  let laneSite: Uint8Array | null = null;
  if (lane) {
    laneSite = stringBytes(lane.site, "lane.site");
    checkLaneNumber(lane.seq);
    checkLaneNumber(lane.low);
  }
  let destSite: Uint8Array | null = null;
  let destName: Uint8Array | null = null;
  let destKind: number;
  switch (env.dest.kind) {
    case "all":
      destKind = 0;
      break;
    case "site":
      destKind = 1;
      destSite = stringBytes(env.dest.site, "dest.site");
      break;
    case "member":
      destKind = 2;
      destSite = stringBytes(env.dest.site, "dest.site");
      destName = stringBytes(env.dest.name, "dest.name");
      break;
    default:
      throw new EnvelopeError("bad-dest", "unknown destination kind");
  }
  const size =
    FIXED_HEADER +
    1 +
    site.length +
    1 +
    name.length +
    16 +
    8 +
    (laneSite ? 1 + laneSite.length + 16 : 0) +
    1 +
    (destSite ? 1 + destSite.length : 0) +
    (destName ? 1 + destName.length : 0) +
    4 +
    env.payload.length;
  return { site, name, inc, laneSite, destKind, destSite, destName, size };
}

function checkLaneNumber(v: number): void {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new EnvelopeError("bad-seq", `lane number ${v} is not a safe non-negative integer`);
}

/** The length of encodeEnvelope(env). Throws EnvelopeError if a field is out of bounds. */
export function encodedSize(env: Envelope): number {
  return prepare(env).size;
}

/** Encodes an envelope. Throws EnvelopeError if a field is out of bounds. */
export function encodeEnvelope(env: Envelope): Buffer {
  const { site, name, inc, laneSite, destKind, destSite, destName, size } = prepare(env);
  const lane = env.lane;
  const out = Buffer.allocUnsafe(size);
  out[0] = ENVELOPE_MAGIC >>> 8;
  out[1] = ENVELOPE_MAGIC & 0xff;
  out[2] = ENVELOPE_VERSION;
  out[3] = env.kind;
  out[4] = (lane ? FLAG_LANE | (lane.retry ? FLAG_RETRY : 0) : 0) | (env.service ? FLAG_SERVICE : 0);
  out[5] = env.hops;
  let o = putString(out, FIXED_HEADER, site);
  o = putString(out, o, name);
  o = putBytes(out, o, inc);
  o = putU64(out, o, env.seq);
  if (lane && laneSite) {
    o = putString(out, o, laneSite);
    o = putU64(out, o, lane.seq);
    o = putU64(out, o, lane.low);
  }
  out[o++] = destKind;
  if (destSite) o = putString(out, o, destSite);
  if (destName) o = putString(out, o, destName);
  o = out.writeUInt32BE(env.payload.length, o);
  out.set(env.payload, o);
  return out;
}

/** Short byte strings are copied by hand: cheaper than a native set() call for a few bytes. */
function putBytes(out: Buffer, o: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) out[o + i] = b[i]!;
  return o + b.length;
}

function putString(out: Buffer, o: number, b: Uint8Array): number {
  out[o] = b.length;
  return putBytes(out, o + 1, b);
}

function putU64(out: Buffer, o: number, v: number): number {
  out.writeUInt32BE(Math.floor(v / 0x1_0000_0000), o);
  out.writeUInt32BE(v % 0x1_0000_0000, o + 4);
  return o + 8;
}

/** Bounds applied while decoding. */
export interface EnvelopeLimits {
  /** @default DEFAULT_MAX_PAYLOAD (8 MiB) */
  readonly maxPayload: number;
}

/**
 * Decodes one envelope. Strict and total: any input either yields an Envelope or throws
 * EnvelopeError. The payload is a view into `bytes` (no copy): copy it if `bytes` is reused.
 */
export function decodeEnvelope(bytes: Uint8Array, limits: Partial<EnvelopeLimits> = {}): Envelope {
  const maxPayload = limits.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c: Cursor = { buf, o: 0 };
  need(c, FIXED_HEADER, "header");
  if (buf.readUInt16BE(0) !== ENVELOPE_MAGIC) throw new EnvelopeError("bad-magic", "not a relay envelope");
  const version = buf[2]!;
  if (version !== ENVELOPE_VERSION)
    throw new EnvelopeError("bad-version", `version ${version} is not supported`);
  const kind = buf[3]!;
  if (!isEnvelopeKind(kind)) throw new EnvelopeError("bad-kind", `kind ${kind}`);
  const flags = buf[4]!;
  if (
    (flags & ~(FLAG_LANE | FLAG_RETRY | FLAG_SERVICE)) !== 0 ||
    (flags & (FLAG_LANE | FLAG_RETRY)) === FLAG_RETRY ||
    (flags & FLAG_SERVICE && kind !== EnvelopeKind.Data)
  )
    throw new EnvelopeError(
      "bad-flags",
      `flags ${flags} (unknown bits, retry without a lane, or service on a control kind)`,
    );
  const hops = buf[5]!;
  c.o = FIXED_HEADER;
  const site = getString(c, "origin.site");
  const name = getString(c, "origin.name");
  need(c, 16, "origin.incarnation");
  const incarnation = incarnationAt(buf, c.o);
  c.o += 16;
  const seq = getU64(c, "seq");
  let lane: Lane | undefined;
  if (flags & FLAG_LANE) {
    const laneSite = getString(c, "lane.site");
    const laneSeq = getU64(c, "lane.seq");
    const low = getU64(c, "lane.low");
    lane =
      flags & FLAG_RETRY
        ? { site: laneSite, seq: laneSeq, low, retry: true }
        : { site: laneSite, seq: laneSeq, low };
  }
  need(c, 1, "dest");
  const destKind = buf[c.o]!;
  c.o += 1;
  let dest: Destination;
  if (destKind === 0) dest = DEST_ALL;
  else if (destKind === 1) dest = { kind: "site", site: getString(c, "dest.site") };
  else if (destKind === 2) {
    const dsite = getString(c, "dest.site");
    dest = { kind: "member", site: dsite, name: getString(c, "dest.name") };
  } else throw new EnvelopeError("bad-dest", `destination kind ${destKind}`);
  need(c, 4, "payload length");
  const plen = buf.readUInt32BE(c.o);
  c.o += 4;
  if (plen > maxPayload) throw new EnvelopeError("payload-too-large", `${plen} bytes > ${maxPayload}`);
  need(c, plen, "payload");
  const payload = buf.subarray(c.o, c.o + plen);
  c.o += plen;
  if (c.o !== buf.length)
    throw new EnvelopeError("trailing-bytes", `${buf.length - c.o} bytes after the payload`);
  const origin = { site, name, incarnation };
  const env: Envelope = lane
    ? { kind, hops, origin, seq, dest, payload, lane }
    : { kind, hops, origin, seq, dest, payload };
  return flags & FLAG_SERVICE ? { ...env, service: true } : env;
}

/**
 * The incarnations decoded last, with their bytes: a receiver hears the same few senders over and
 * over, so 16 known bytes give back the same string (no new UUID text per envelope, and the string
 * keeps its hash for the receive windows' map). A handful of entries, replaced in turn.
 */
const INCARNATION_MEMO = 8;
const incarnationBytes: (Buffer | null)[] = new Array(INCARNATION_MEMO).fill(null);
const incarnationTexts: string[] = new Array(INCARNATION_MEMO).fill("");
let incarnationNext = 0;

function incarnationAt(buf: Buffer, at: number): string {
  for (let i = 0; i < INCARNATION_MEMO; i++) {
    const b = incarnationBytes[i];
    if (!b) continue;
    let j = 0;
    while (j < 16 && b[j] === buf[at + j]) j++;
    if (j === 16) return incarnationTexts[i]!;
  }
  const text = uuidFromBytes(buf, at);
  incarnationBytes[incarnationNext] = Buffer.from(buf.subarray(at, at + 16));
  incarnationTexts[incarnationNext] = text;
  incarnationNext = (incarnationNext + 1) % INCARNATION_MEMO;
  return text;
}

/** Where the decoder is in the bytes (plain functions on it: no closures made per envelope). */
interface Cursor {
  readonly buf: Buffer;
  o: number;
}

/** The destination "all" carries nothing: one shared (frozen) object for every decoded envelope. */
const DEST_ALL: Destination = Object.freeze({ kind: "all" });

function need(c: Cursor, n: number, what: string): void {
  if (c.buf.length - c.o < n)
    throw new EnvelopeError("truncated", `${what} needs ${n} bytes at offset ${c.o}`);
}

function getString(c: Cursor, what: string): string {
  need(c, 1, what);
  const len = c.buf[c.o]!;
  c.o += 1;
  if (len === 0) throw new EnvelopeError("bad-string", `${what} is empty`);
  need(c, len, what);
  let s: string;
  try {
    s = decodeText(c.buf, c.o, c.o + len);
  } catch {
    throw new EnvelopeError("bad-string", `${what} is not valid UTF-8`);
  }
  c.o += len;
  return s;
}

function getU64(c: Cursor, what: string): number {
  need(c, 8, what);
  const hi = c.buf.readUInt32BE(c.o);
  const lo = c.buf.readUInt32BE(c.o + 4);
  c.o += 8;
  if (hi > 0x1f_ffff) throw new EnvelopeError("bad-seq", `${what} beyond 2^53-1`);
  const v = hi * 0x1_0000_0000 + lo;
  if (v > MAX_SEQ) throw new EnvelopeError("bad-seq", `${what} beyond 2^53-1`);
  return v;
}

/** `name` for a sender of the reader's own site, `name:site` otherwise (the walkthrough's format). */
export function senderLabel(
  from: { readonly name: string; readonly site: string },
  localSite: string,
): string {
  return from.site === localSite ? from.name : `${from.name}:${from.site}`;
}
