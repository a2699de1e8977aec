// GossipData body encoder/decoder. STUB: signatures fixed, bodies being implemented (codec helper).
import type { Address, DecodeLimits, GossipData, GossipType } from "./types.js";

/** Encodes a whole frame: i32 length prefix + canonical body (exactly what JGroups writes). */
export function encodeFrame(data: GossipData): Buffer {
  void data;
  throw new Error("not implemented");
}

/** Encodes only the body (no length prefix). */
export function encodeBody(data: GossipData): Buffer {
  void data;
  throw new Error("not implemented");
}

/**
 * Decodes one body (without its length prefix). Strict: every field bounded, trailing bytes are an
 * error. Throws ProtocolError, never anything else, whatever the input.
 */
export function decodeBody(body: Uint8Array, limits?: Partial<DecodeLimits>): GossipData {
  void body;
  void limits;
  throw new Error("not implemented");
}

/** What the router needs to route a frame, read from the start of the body only. */
export interface RouteHeader {
  readonly type: GossipType;
  readonly group: string | null;
  /** addr field: MESSAGE destination (null = multicast) or the member of REGISTER/UNREGISTER. */
  readonly addr: Address | null;
}

/** Reads type, group and addr without decoding the rest (fast path for MESSAGE). Throws ProtocolError. */
export function decodeRouteHeader(body: Uint8Array): RouteHeader {
  void body;
  throw new Error("not implemented");
}

/**
 * A stable string key for an address with JGroups equality semantics (UUID-family addresses are
 * equal when their 128 bits are; SiteMaster by site; IpAddress by host and port).
 */
export function addressKey(addr: Address): string {
  void addr;
  throw new Error("not implemented");
}
