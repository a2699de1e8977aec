// Node-to-node wire format of the local cluster mesh (port 7800). Pure: bytes in, values out.
//
// Frame = i32 big-endian length N (of what follows, 1..maxFrame) + type byte + fields.
// Fields: str8 = u8 length + UTF-8 (1..255 bytes); str16 = u16 length + UTF-8 (0..1024 bytes);
// member = str8 name, str8 site, 16 uuid bytes, str8 host, u16 port;
// view = u32 seq (1..MAX_VIEW_SEQ), u16 count (1..MAX_VIEW_MEMBERS), count x member
// (members[0] is the coordinator). Authenticated handshake (a cluster secret is set, auth.ts):
// AUTH_HELLO, AUTH_CHALLENGE, AUTH_PROOF, then HELLO_ACK; nonces and proofs are raw 32 bytes.
// A decoder error is always a ClusterCodecError: the caller closes that one connection.
import { CodedError } from "../../contract/errors.js";
import { Reader, type TruncatedError } from "../protocol/reader.js";
import { FrameSplitter } from "../protocol/splitter.js";
import { isUuid, UUID_BYTES, uuidFromBytes, uuidToBytes } from "../protocol/uuid.js";
import { Writer } from "../protocol/writer.js";
import { type Member, makeView, memberKey, type View } from "./member.js";

/** Protocol version carried in HELLO; a peer speaking another version is refused. */
export const CLUSTER_PROTOCOL_VERSION = 1;
/** Default largest frame (length prefix excluded), also the default `maxFrame` option. */
export const DEFAULT_MAX_FRAME = 4 * 1024 * 1024;
/** Smallest allowed `maxFrame`: room for a HELLO with long names and a sizeable view. */
export const MIN_MAX_FRAME = 1024;
const MAX_REASON = 1024;
/**
 * Largest view sequence number on the wire and in any view a member creates. Views go 1, 2, ...;
 * 2^31-1 keeps `seq + 1` exact in every language's 32-bit integers and is out of reach of real
 * view changes (one per second for 68 years). A view outside 1..MAX_VIEW_SEQ is refused.
 */
export const MAX_VIEW_SEQ = 0x7fffffff;
/** Largest view on the wire (a site has tens of members; a bigger count is refused). */
export const MAX_VIEW_MEMBERS = 1024;
/** Bytes of a handshake nonce and of an HMAC-SHA256 proof. */
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
/** Bytes of a DATA frame around its payload (length prefix + type byte). */
export const DATA_OVERHEAD = 5;

export const FrameType = {
  Hello: 1,
  HelloAck: 2,
  Reject: 3,
  Heartbeat: 4,
  InfoReq: 5,
  Info: 6,
  JoinReq: 7,
  JoinReject: 8,
  View: 9,
  Leave: 10,
  MergeReq: 11,
  Data: 12,
  AuthHello: 13,
  AuthChallenge: 14,
  AuthProof: 15,
  AuthAck: 16,
} as const;

/** Every frame a member can send. The sender's identity comes from the connection's HELLO. */
export type ClusterFrame =
  /** First frame of a connection, from the side that opened it. */
  | { readonly type: "hello"; readonly version: number; readonly cluster: string; readonly member: Member }
  /** Answer to HELLO: the accepting side's identity. */
  | { readonly type: "hello-ack"; readonly member: Member }
  /** The connection is refused (wrong cluster, version, self, not admitted); closed right after. */
  | { readonly type: "reject"; readonly reason: string }
  | { readonly type: "heartbeat" }
  /** "What view are you in?" (discovery probe). */
  | { readonly type: "info-req" }
  | { readonly type: "info"; readonly view: View | null }
  /** Asks the receiver (a coordinator) to admit the sender. */
  | { readonly type: "join-req" }
  /** The receiver is not (or no longer) a coordinator; the joiner retries. */
  | { readonly type: "join-reject"; readonly reason: string }
  /** Install this view. */
  | { readonly type: "view"; readonly view: View }
  /** The sender leaves gracefully. */
  | { readonly type: "leave" }
  /** A coordinator whose view loses the merge asks the winning coordinator to absorb it. */
  | { readonly type: "merge-req"; readonly view: View }
  | { readonly type: "data"; readonly payload: Uint8Array }
  /** HELLO of a member that has a cluster secret: also the dialer's nonce. */
  | {
      readonly type: "auth-hello";
      readonly version: number;
      readonly cluster: string;
      readonly member: Member;
      readonly nonce: Uint8Array;
    }
  /** The acceptor's identity and nonce: the dialer proves first (AUTH_PROOF). */
  | { readonly type: "auth-challenge"; readonly member: Member; readonly nonce: Uint8Array }
  /** The dialer's proof (auth.ts); the acceptor answers HELLO_ACK with its own proof. */
  | { readonly type: "auth-proof"; readonly proof: Uint8Array }
  /** The acceptor's proof: the handshake is complete (the HELLO_ACK of an authenticated one). */
  | { readonly type: "auth-ack"; readonly proof: Uint8Array };

/** Bad bytes on a mesh connection. `code` is stable (usable as a metric label). */
export class ClusterCodecError extends CodedError<
  "BAD_LENGTH" | "TRUNCATED" | "TRAILING" | "BAD_TYPE" | "BAD_FIELD"
> {
  override readonly name = "ClusterCodecError";
}

// ---------------------------------------------------------------------------------------------
// Encoding

const utf8 = new TextEncoder();

/** The mesh's fields on the shared writer; the length prefix is filled in by frame(). */
class FrameWriter extends Writer {
  constructor() {
    super(Buffer.allocUnsafe(64), 4, true);
  }
  str8(s: string, field: string): this {
    const b = utf8.encode(s);
    if (b.length < 1 || b.length > 255) throw new RangeError(`${field} must be 1..255 UTF-8 bytes`);
    return this.u8(b.length).bytes(b);
  }
  str16(s: string): this {
    const b = utf8.encode(s).subarray(0, MAX_REASON);
    return this.u16(b.length).bytes(b);
  }
  member(m: Member): this {
    this.str8(m.name, "member name").str8(m.site, "member site");
    if (!isUuid(m.uuid)) throw new RangeError(`member uuid "${m.uuid}" is not a lowercase 8-4-4-4-12 UUID`);
    this.bytes(uuidToBytes(m.uuid));
    return this.str8(m.host, "member host").u16(m.port);
  }
  view(v: View): this {
    if (v.members.length < 1 || v.members.length > MAX_VIEW_MEMBERS)
      throw new RangeError("view size out of range");
    if (!validViewSeq(v.id.seq)) throw new RangeError(`view seq ${v.id.seq} outside 1..${MAX_VIEW_SEQ}`);
    this.u32(v.id.seq).u16(v.members.length);
    for (const m of v.members) this.member(m);
    return this;
  }
  fixed(b: Uint8Array, n: number, field: string): this {
    if (b.length !== n) throw new RangeError(`${field} must be ${n} bytes`);
    return this.bytes(b);
  }
  /** The frame with its length prefix. */
  frame(): Buffer {
    this.buf.writeInt32BE(this.pos - 4, 0);
    return this.buf.subarray(0, this.pos);
  }
}

/** Encodes a whole frame (length prefix included). Throws RangeError on values that cannot be encoded. */
export function encodeFrame(f: ClusterFrame): Buffer {
  const w = new FrameWriter();
  switch (f.type) {
    case "hello":
      return w.u8(FrameType.Hello).u8(f.version).str8(f.cluster, "cluster").member(f.member).frame();
    case "hello-ack":
      return w.u8(FrameType.HelloAck).member(f.member).frame();
    case "reject":
      return w.u8(FrameType.Reject).str16(f.reason).frame();
    case "heartbeat":
      return w.u8(FrameType.Heartbeat).frame();
    case "info-req":
      return w.u8(FrameType.InfoReq).frame();
    case "info":
      w.u8(FrameType.Info).u8(f.view ? 1 : 0);
      if (f.view) w.view(f.view);
      return w.frame();
    case "join-req":
      return w.u8(FrameType.JoinReq).frame();
    case "join-reject":
      return w.u8(FrameType.JoinReject).str16(f.reason).frame();
    case "view":
      return w.u8(FrameType.View).view(f.view).frame();
    case "leave":
      return w.u8(FrameType.Leave).frame();
    case "merge-req":
      return w.u8(FrameType.MergeReq).view(f.view).frame();
    case "data":
      return w.u8(FrameType.Data).bytes(f.payload).frame();
    case "auth-hello":
      w.u8(FrameType.AuthHello).u8(f.version).str8(f.cluster, "cluster").member(f.member);
      return w.fixed(f.nonce, NONCE_BYTES, "nonce").frame();
    case "auth-challenge":
      return w.u8(FrameType.AuthChallenge).member(f.member).fixed(f.nonce, NONCE_BYTES, "nonce").frame();
    case "auth-proof":
      return w.u8(FrameType.AuthProof).fixed(f.proof, PROOF_BYTES, "proof").frame();
    case "auth-ack":
      return w.u8(FrameType.AuthAck).fixed(f.proof, PROOF_BYTES, "proof").frame();
  }
}

/** True for a sequence number a view may carry (1..MAX_VIEW_SEQ, an integer). */
export function validViewSeq(seq: number): boolean {
  return Number.isInteger(seq) && seq >= 1 && seq <= MAX_VIEW_SEQ;
}

/**
 * The bytes a handshake proof is computed over (auth.ts): a label, who proves (`dialer` or
 * `acceptor`, so a proof cannot be reflected), the cluster, both members (each field
 * length-prefixed, so no two transcripts share bytes) and both nonces (so none is replayed).
 */
export function authTranscript(
  direction: "dialer" | "acceptor",
  cluster: string,
  dialer: Member,
  acceptor: Member,
  dialerNonce: Uint8Array,
  acceptorNonce: Uint8Array,
): Buffer {
  const w = new FrameWriter();
  w.str8("cross-cloud-relay mesh auth v1", "label").u8(direction === "dialer" ? 1 : 2);
  w.str8(cluster, "cluster").member(dialer).member(acceptor);
  w.fixed(dialerNonce, NONCE_BYTES, "nonce").fixed(acceptorNonce, NONCE_BYTES, "nonce");
  return w.buf.subarray(4, w.pos);
}

/** Encodes a DATA frame without copying the payload twice (hot path). */
export function encodeData(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(DATA_OVERHEAD + payload.length);
  out.writeInt32BE(1 + payload.length, 0);
  out[4] = FrameType.Data;
  out.set(payload, DATA_OVERHEAD);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

// ignoreBOM: a leading U+FEFF is part of the text. Without it the decoder drops it, and a member
// named "\ufeffnyc-1" would be read back as "nyc-1" (another member key than the sender's).
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const truncated: TruncatedError = (what) => new ClusterCodecError("TRUNCATED", `frame ends inside ${what}`);

/** The mesh's fields on the shared reader. */
class FrameReader extends Reader {
  constructor(body: Uint8Array) {
    super(body, 0, body.length, truncated);
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining, "payload");
  }

  #text(b: Uint8Array, what: string): string {
    try {
      return strictUtf8.decode(b);
    } catch {
      throw new ClusterCodecError("BAD_FIELD", `${what} is not valid UTF-8`);
    }
  }
  str8(what: string): string {
    const n = this.u8(`${what} length`);
    if (n === 0) throw new ClusterCodecError("BAD_FIELD", `${what} is empty`);
    return this.#text(this.bytes(n, what), what);
  }
  str16(what: string): string {
    const n = this.u16(`${what} length`);
    if (n > MAX_REASON) throw new ClusterCodecError("BAD_FIELD", `${what} longer than ${MAX_REASON} bytes`);
    return this.#text(this.bytes(n, what), what);
  }
  member(): Member {
    const name = this.str8("member name");
    const site = this.str8("member site");
    const uuid = uuidFromBytes(this.bytes(UUID_BYTES, "member uuid"));
    const host = this.str8("member host");
    const port = this.u16("member port");
    return { name, site, uuid, host, port };
  }
  view(): View {
    const seq = this.u32("view seq");
    // Refused here rather than later: a view at 2^32-1 made `seq + 1` unencodable (a RangeError
    // thrown out of a socket handler killed the process).
    if (!validViewSeq(seq))
      throw new ClusterCodecError("BAD_FIELD", `view seq ${seq} outside 1..${MAX_VIEW_SEQ}`);
    const count = this.u16("view size");
    if (count > MAX_VIEW_MEMBERS)
      throw new ClusterCodecError("BAD_FIELD", `view size ${count} exceeds ${MAX_VIEW_MEMBERS}`);
    // Smallest member: 3 one-byte strings with their lengths + uuid + port = 24 bytes.
    if (count === 0 || count * 24 > this.remaining) {
      throw new ClusterCodecError("BAD_FIELD", `view size ${count} does not fit the frame`);
    }
    const members: Member[] = [];
    const keys = new Set<string>();
    for (let i = 0; i < count; i++) {
      const m = this.member();
      const key = memberKey(m);
      if (keys.has(key)) throw new ClusterCodecError("BAD_FIELD", `view lists ${key} twice`);
      keys.add(key);
      members.push(m);
    }
    return makeView(seq, members);
  }
  expectEnd(): void {
    if (this.remaining !== 0)
      throw new ClusterCodecError("TRAILING", `${this.remaining} bytes after the frame`);
  }
}

/**
 * Decodes one frame body (type byte + fields, no length prefix). Strict and total: whatever the
 * input, it returns a frame or throws ClusterCodecError. DATA payloads are views into `body`.
 */
export function decodeFrame(body: Uint8Array): ClusterFrame {
  const r = new FrameReader(body);
  const t = r.u8("type");
  let f: ClusterFrame;
  switch (t) {
    case FrameType.Hello: {
      const version = r.u8("version");
      const cluster = r.str8("cluster");
      f = { type: "hello", version, cluster, member: r.member() };
      break;
    }
    case FrameType.HelloAck:
      f = { type: "hello-ack", member: r.member() };
      break;
    case FrameType.Reject:
      f = { type: "reject", reason: r.str16("reason") };
      break;
    case FrameType.Heartbeat:
      f = { type: "heartbeat" };
      break;
    case FrameType.InfoReq:
      f = { type: "info-req" };
      break;
    case FrameType.Info: {
      const has = r.u8("view flag");
      if (has > 1) throw new ClusterCodecError("BAD_FIELD", `view flag ${has} is not 0 or 1`);
      f = { type: "info", view: has ? r.view() : null };
      break;
    }
    case FrameType.JoinReq:
      f = { type: "join-req" };
      break;
    case FrameType.JoinReject:
      f = { type: "join-reject", reason: r.str16("reason") };
      break;
    case FrameType.View:
      f = { type: "view", view: r.view() };
      break;
    case FrameType.Leave:
      f = { type: "leave" };
      break;
    case FrameType.MergeReq:
      f = { type: "merge-req", view: r.view() };
      break;
    case FrameType.Data:
      f = { type: "data", payload: r.rest() };
      break;
    case FrameType.AuthHello: {
      const version = r.u8("version");
      const cluster = r.str8("cluster");
      const member = r.member();
      f = { type: "auth-hello", version, cluster, member, nonce: r.copy(NONCE_BYTES, "nonce") };
      break;
    }
    case FrameType.AuthChallenge: {
      const member = r.member();
      f = { type: "auth-challenge", member, nonce: r.copy(NONCE_BYTES, "nonce") };
      break;
    }
    case FrameType.AuthProof:
      f = { type: "auth-proof", proof: r.copy(PROOF_BYTES, "proof") };
      break;
    case FrameType.AuthAck:
      f = { type: "auth-ack", proof: r.copy(PROOF_BYTES, "proof") };
      break;
    default:
      throw new ClusterCodecError("BAD_TYPE", `unknown frame type ${t}`);
  }
  r.expectEnd();
  return f;
}

/**
 * The mesh's framing on the shared splitter: lengths 1..maxFrame (no GRACEFUL_CLOSE marker), a bad
 * one is a ClusterCodecError BAD_LENGTH, and frames stay valid after the call (DATA payloads are
 * views into them and reach listeners that may keep them). Holds at most one incomplete frame.
 */
export function meshSplitter(maxFrame: number = DEFAULT_MAX_FRAME): FrameSplitter {
  return new FrameSplitter({
    maxFrame,
    minFrame: 1,
    gracefulClose: false,
    stableFrames: true,
    lengthError: (len, limits) =>
      new ClusterCodecError("BAD_LENGTH", `frame length ${len} outside 1..${limits.maxFrame}`),
  });
}
