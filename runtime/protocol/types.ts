// Value types of the GossipRouter protocol (described in docs/PROTOCOL.md; frames recorded from
// JGroups 5.5.6 in test/fixtures/captures). Pure data: no I/O, no Node streams.
import { CodedError } from "../../contract/errors.js";

/** The frame type byte of a GossipData body. Values are the wire values. */
export enum GossipType {
  Register = 0,
  Unregister = 1,
  GetMbrs = 2,
  GetMbrsRsp = 3,
  Message = 4,
  Heartbeat = 5,
  Suspect = 6,
  GetMbrsRspLast = 7,
}

/** A plain JGroups UUID address (flag 0x02). `uuid` is the canonical lowercase 8-4-4-4-12 form. */
export interface UuidAddress {
  readonly kind: "uuid";
  readonly uuid: string;
}

/** One key/value extension of an ExtendedUUID-style address; `value` null = key without value. */
export interface AddressExtension {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

/**
 * A site-qualified address used on the bridge: SiteUUID (flag 0x04) or SiteMaster (flag 0x08).
 * For a SiteMaster, `site` is the target site.
 */
export interface SiteAddress {
  readonly kind: "site-uuid" | "site-master";
  readonly uuid: string;
  /** ExtendedUUID flags (compressed int on the wire). */
  readonly flags: number;
  readonly extensions: readonly AddressExtension[];
  readonly site: string | null;
  readonly name: string | null;
}

/** A physical address (flag 0x10). `host` null = no IP (iplen 0). IPv6 carries a scope id. */
export interface IpAddress {
  readonly kind: "ip";
  /** Dotted IPv4 or RFC 5952 IPv6 text, or null when the address has no IP. */
  readonly host: string | null;
  readonly port: number;
  /** IPv6 only (i32 scope id on the wire); 0 when absent. */
  readonly scopeId?: number;
}

/**
 * Any other Address class, written with flag 0x00 and a magic id. Only the classes whose layout
 * is known are decodable: FlagsUUID (19: uuid + flags; `extensions` always empty) and
 * ExtendedUUID (12: uuid + flags + extensions). Other magic ids are "unsupported-address".
 */
export interface MagicAddress {
  readonly kind: "magic";
  readonly magic: number;
  readonly uuid: string;
  readonly flags: number;
  readonly extensions: readonly AddressExtension[];
}

export type Address = UuidAddress | SiteAddress | IpAddress | MagicAddress;

/** One member entry of a GET_MBRS response. */
export interface PingData {
  readonly member: Address | null;
  /** 0x01 server, 0x02 coordinator (the router always sends 0x01). */
  readonly flags: number;
  readonly logicalName: string | null;
  readonly physicalAddr: Address | null;
  /** Member list; null is written as count -1 (what the router always sends). */
  readonly mbrs: readonly Address[] | null;
}

/**
 * A decoded GossipData body. MESSAGE bodies carry only type, group, addr (destination, null =
 * whole group), sender and payload; the other fields are then null/empty and not on the wire.
 */
export interface GossipData {
  readonly type: GossipType;
  readonly group: string | null;
  /** MESSAGE: destination (null = multicast). REGISTER/UNREGISTER/SUSPECT: the member. */
  readonly addr: Address | null;
  /** MESSAGE: the original sender. Null for the other types in every known capture. */
  readonly sender: Address | null;
  readonly logicalName: string | null;
  readonly pingData: readonly PingData[];
  readonly physicalAddr: Address | null;
  /** MESSAGE: the serialized JGroups message (opaque to the router). Empty otherwise. */
  readonly payload: Uint8Array;
}

/** Bounds applied while decoding; anything beyond them is a ProtocolError, never an allocation. */
export interface DecodeLimits {
  /** Largest accepted frame body in bytes. @default 10 MiB (DEFAULT_MAX_FRAME) */
  readonly maxFrame: number;
  /** Largest number of PingData entries in one GET_MBRS response. @default 65535 */
  readonly maxPingData: number;
  /** Largest member list inside one PingData. @default 65535 */
  readonly maxMembers: number;
  /** Largest number of extensions in one address. @default 255 (u8 on the wire) */
  readonly maxExtensions: number;
}

export const DEFAULT_MAX_FRAME = 10 * 1024 * 1024;

export const DEFAULT_LIMITS: DecodeLimits = {
  maxFrame: DEFAULT_MAX_FRAME,
  maxPingData: 65535,
  maxMembers: 65535,
  maxExtensions: 255,
};

/** Length prefix value of the GRACEFUL_CLOSE marker (`ff ff ff fb`): no body follows. */
export const GRACEFUL_CLOSE_LENGTH = -5;

/** Stable codes for decode failures; used as log reasons and as metric labels. */
export type ProtocolErrorCode =
  | "frame-too-large"
  | "bad-length"
  | "truncated"
  | "trailing-bytes"
  | "bad-type"
  | "bad-address"
  | "unsupported-address"
  | "bad-string"
  | "count-out-of-bounds";

/** A malformed or out-of-bounds input. The connection that sent it is closed with this reason. */
export class ProtocolError extends CodedError<ProtocolErrorCode> {
  override readonly name = "ProtocolError";
  constructor(code: ProtocolErrorCode, message: string) {
    super(code, `${code}: ${message}`);
  }
}
