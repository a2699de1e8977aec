// GossipData body encoder/decoder (JGroups 5.x GossipRouter protocol, see docs/PROTOCOL.md).
//
// Decoding is strict and total: any input yields a GossipData or a ProtocolError. Every count and
// length is checked against the bytes that remain (and the DecodeLimits) before anything is
// allocated, and only the canonical forms that JGroups writes are accepted (exact address flag
// bytes, minimal compressed ints, canonical modified UTF-8), so decode -> encode is the identity
// on accepted bodies, except string presence bytes other than 0/1, which read as null like Java does.
import { ConfigError } from "../../contract/errors.js";
import { BytesMemo } from "./bytes-memo.js";
import { formatIp, parseIp } from "./ip.js";
import { MAX_UTF_BYTES, mutf8Decode, mutf8Length, mutf8Write } from "./mutf8.js";
import { Reader } from "./reader.js";
import {
  type Address,
  type AddressExtension,
  DEFAULT_LIMITS,
  type DecodeLimits,
  type GossipData,
  GossipType,
  type IpAddress,
  type MagicAddress,
  type PingData,
  ProtocolError,
  type SiteAddress,
} from "./types.js";
import { isUuid, UUID_BYTES, uuidFromBytes, writeUuid } from "./uuid.js";
import { Writer } from "./writer.js";

// Address flag bytes (org.jgroups.Address) and the magic ids we understand (jg-magic-map.xml).
const FLAG_OTHER = 0x00;
const FLAG_NULL = 0x01;
const FLAG_UUID = 0x02;
const FLAG_SITE_UUID = 0x04;
const FLAG_SITE_MASTER = 0x08;
const FLAG_IP = 0x10;
export const MAGIC_EXTENDED_UUID = 12;
export const MAGIC_FLAGS_UUID = 19;

const MAX_TYPE = GossipType.GetMbrsRspLast;
const I16_MAX = 0x7fff;
const EMPTY_BYTES = new Uint8Array(0);
const NO_PING_DATA: readonly PingData[] = Object.freeze([]);
const NO_EXTENSIONS: readonly AddressExtension[] = Object.freeze([]);

// Smallest encodings, used to reject counts that the remaining bytes cannot possibly hold.
const MIN_ADDRESS = 1;
const MIN_PING_DATA = 6; // member(1) flags(1) name(1) physical(1) count(2)
const MIN_EXTENSION = 2; // klen(1) vlen(1)

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Decodes one body (without its length prefix). Strict: every field bounded, trailing bytes are an
 * error. Throws ProtocolError, never anything else, whatever the input. The result never aliases
 * `body` (payload and extension bytes are copies). Limits left out (or undefined) take their
 * defaults; a limit that is not a number >= 0 is a bad option (ConfigError, code BAD_OPTION).
 */
export function decodeBody(body: Uint8Array, limits?: Partial<DecodeLimits>): GossipData {
  const lim = limits ? resolvedLimits(limits) : DEFAULT_LIMITS;
  if (!(body instanceof Uint8Array)) throw new ProtocolError("bad-length", "body is not a byte array");
  if (body.length > lim.maxFrame) {
    throw new ProtocolError("frame-too-large", `body of ${body.length} bytes exceeds ${lim.maxFrame}`);
  }
  const r = new Reader(body);
  const type = readType(r);
  const group = readString(r, "group");
  const addr = readAddress(r, lim, "addr");
  const sender = readAddress(r, lim, "sender");
  let logicalName: string | null = null;
  let pingData: readonly PingData[] = NO_PING_DATA;
  let physicalAddr: Address | null = null;
  if (type !== GossipType.Message) {
    logicalName = readString(r, "logical_name");
    pingData = readPingDataList(r, lim);
    physicalAddr = readPhysical(r, lim, "physical_addr");
  }
  const bufLen = r.i32("buf_len");
  if (bufLen < 0) throw new ProtocolError("bad-length", `negative buf_len ${bufLen}`);
  const payload = bufLen === 0 ? EMPTY_BYTES : r.copy(bufLen, "payload");
  if (r.remaining !== 0) {
    throw new ProtocolError(
      "trailing-bytes",
      `${r.remaining} bytes after a complete ${GossipType[type]} body`,
    );
  }
  return { type, group, addr, sender, logicalName, pingData, physicalAddr, payload };
}

/**
 * resolveLimits, once per limits object: a connection passes the same one with every frame (the
 * object is read once, so changing it later has no effect).
 */
const RESOLVED = new WeakMap<object, DecodeLimits>();
function resolvedLimits(limits: Partial<DecodeLimits>): DecodeLimits {
  let lim = RESOLVED.get(limits);
  if (lim === undefined) {
    lim = resolveLimits(limits);
    RESOLVED.set(limits, lim);
  }
  return lim;
}

/** Defaults for the limits not given (an explicit undefined also means "default", never "no limit"). */
function resolveLimits(limits: Partial<DecodeLimits>): DecodeLimits {
  const pick = (k: keyof DecodeLimits): number => {
    const v = limits[k];
    if (v === undefined) return DEFAULT_LIMITS[k];
    if (typeof v !== "number" || Number.isNaN(v) || v < 0) {
      throw new ConfigError(`decode limit ${k} must be a number >= 0, got ${String(v)}`);
    }
    return v;
  };
  return {
    maxFrame: pick("maxFrame"),
    maxPingData: pick("maxPingData"),
    maxMembers: pick("maxMembers"),
    maxExtensions: pick("maxExtensions"),
  };
}

/** What the router needs to route a frame, read from the start of the body only. */
export interface RouteHeader {
  readonly type: GossipType;
  readonly group: string | null;
  /** addr field: MESSAGE destination (null = multicast) or the member of REGISTER/UNREGISTER. */
  readonly addr: Address | null;
}

/**
 * Reads type, group and addr without decoding the rest (fast path for MESSAGE). Throws
 * ProtocolError. It does not validate the remainder of the body: use decodeBody for that.
 */
export function decodeRouteHeader(body: Uint8Array): RouteHeader {
  if (!(body instanceof Uint8Array)) throw new ProtocolError("bad-length", "body is not a byte array");
  const r = new Reader(body);
  const type = readType(r);
  const group = readString(r, "group");
  const addr = readAddress(r, DEFAULT_LIMITS, "addr");
  return { type, group, addr };
}

/**
 * A MESSAGE body's sender (after type, group and dest) and where its encoding lies in `body`.
 * Throws ProtocolError. The address encoding is self-delimiting: bytes that begin with the
 * complete encoding of an address decode to that address (the router's source check relies on it).
 */
export function decodeMessageSender(body: Uint8Array): {
  sender: Address | null;
  start: number;
  end: number;
} {
  const r = new Reader(body);
  readType(r);
  readString(r, "group");
  readAddress(r, DEFAULT_LIMITS, "addr");
  const start = r.pos;
  const sender = readAddress(r, DEFAULT_LIMITS, "sender");
  return { sender, start, end: r.pos };
}

function readType(r: Reader): GossipType {
  const t = r.u8("type");
  if (t > MAX_TYPE) throw new ProtocolError("bad-type", `type byte ${t} (0..${MAX_TYPE} expected)`);
  return t as GossipType;
}

function readString(r: Reader, what: string): string | null {
  // Like Bits.readString: presence 1 = a string follows, anything else = null.
  if (r.u8(what) !== 1) return null;
  const len = r.u16(what);
  r.need(len, what);
  const start = r.pos;
  r.pos += len;
  return STRINGS.get(r.buf, start, start + len, mutf8Decode);
}

// Every MESSAGE names its group and two UUID addresses, the same few over and over: decoded once
// (frozen addresses, shared like the site addresses above).
const STRINGS = new BytesMemo<string>(64);
const UUID_ADDRESSES = new BytesMemo<Address>(64);
const uuidAddress = (buf: Uint8Array, start: number): Address =>
  Object.freeze({ kind: "uuid", uuid: uuidFromBytes(buf, start, "lsb-first") });

/** 16 wire bytes (least-significant long first) -> canonical 8-4-4-4-12 text. */
function readUuid(r: Reader, what: string): string {
  r.need(UUID_BYTES, what);
  const uuid = uuidFromBytes(r.buf, r.pos, "lsb-first");
  r.pos += UUID_BYTES;
  return uuid;
}

/** Bits.readIntCompressed, canonical form only: u8 n (0..4) + n bytes little-endian, no high zero byte. */
function readCompressedInt(r: Reader, what: string): number {
  const n = r.u8(what);
  if (n === 0) return 0;
  if (n > 4) throw new ProtocolError("bad-address", `${what}: compressed int of ${n} bytes`);
  r.need(n, what);
  let v = 0;
  for (let i = 0; i < n; i++) v |= r.buf[r.pos + i]! << (8 * i);
  if (r.buf[r.pos + n - 1] === 0) {
    throw new ProtocolError("bad-address", `${what}: non-canonical compressed int`);
  }
  r.pos += n;
  return v;
}

function readExtensions(r: Reader, lim: DecodeLimits, what: string): readonly AddressExtension[] {
  const n = r.u8(`${what} extension count`);
  if (n === 0) return NO_EXTENSIONS;
  if (n > lim.maxExtensions) {
    throw new ProtocolError("count-out-of-bounds", `${what}: ${n} extensions (max ${lim.maxExtensions})`);
  }
  r.need(n * MIN_EXTENSION, `${what} extensions`);
  const out: AddressExtension[] = [];
  for (let i = 0; i < n; i++) {
    const key = r.copy(r.u8(`${what} extension key length`), `${what} extension key`);
    const vlen = r.u8(`${what} extension value length`);
    const value = vlen === 0 ? null : r.copy(vlen, `${what} extension value`);
    out.push({ key, value });
  }
  return out;
}

function readAddress(r: Reader, lim: DecodeLimits, what: string): Address | null {
  const flag = r.u8(what);
  switch (flag) {
    case FLAG_NULL:
      return null;
    case FLAG_UUID: {
      r.need(UUID_BYTES, what);
      const start = r.pos;
      r.pos += UUID_BYTES;
      return UUID_ADDRESSES.get(r.buf, start, start + UUID_BYTES, uuidAddress);
    }
    case FLAG_SITE_UUID:
    case FLAG_SITE_MASTER: {
      const known = SITE_ADDRESSES.lookup(r.buf, r.pos - 1);
      if (known) {
        r.pos = known.end;
        return known.addr;
      }
      const start = r.pos - 1;
      const uuid = readUuid(r, what);
      const flags = readCompressedInt(r, `${what} flags`);
      const extensions = readExtensions(r, lim, what);
      const site = readString(r, `${what} site`);
      const name = readString(r, `${what} name`);
      const kind = flag === FLAG_SITE_UUID ? "site-uuid" : "site-master";
      const addr = Object.freeze({ kind, uuid, flags, extensions, site, name } satisfies SiteAddress);
      if (extensions.length === 0) SITE_ADDRESSES.remember(r.buf, start, r.pos, addr);
      return addr;
    }
    case FLAG_IP:
      return readIp(r, what);
    case FLAG_OTHER: {
      const magic = r.i16(`${what} magic id`);
      if (magic !== MAGIC_FLAGS_UUID && magic !== MAGIC_EXTENDED_UUID) {
        throw new ProtocolError("unsupported-address", `${what}: address class with magic id ${magic}`);
      }
      const uuid = readUuid(r, what);
      const flags = readCompressedInt(r, `${what} flags`);
      const extensions = magic === MAGIC_EXTENDED_UUID ? readExtensions(r, lim, what) : NO_EXTENSIONS;
      return { kind: "magic", magic, uuid, flags, extensions } satisfies MagicAddress;
    }
    default:
      throw new ProtocolError("bad-address", `${what}: unknown address flags 0x${flag.toString(16)}`);
  }
}

/**
 * The site addresses decoded last (without extensions), with their encodings: every MESSAGE
 * carries its destination and sender, and on the bridge those are the same few site masters, so
 * an encoding seen before is recognised by its bytes instead of decoded again (UUID text, two
 * strings, an object per message). Bytes that decoded once decode the same way again, so a hit
 * returns the same (frozen) address. A handful of entries, replaced in turn: bounded.
 */
class SiteAddressMemo {
  static readonly SIZE = 8;
  readonly #bytes: (Buffer | null)[] = new Array(SiteAddressMemo.SIZE).fill(null);
  readonly #addrs: (SiteAddress | null)[] = new Array(SiteAddressMemo.SIZE).fill(null);
  #next = 0;

  /** The address whose encoding starts at `buf[start]` (the flag byte), if remembered. */
  lookup(buf: Uint8Array, start: number): { addr: SiteAddress; end: number } | null {
    const end = siteAddressEnd(buf, start);
    if (end < 0) return null;
    const len = end - start;
    for (let i = 0; i < SiteAddressMemo.SIZE; i++) {
      const b = this.#bytes[i];
      if (!b || b.length !== len) continue;
      let same = true;
      for (let j = 0; j < len; j++) {
        if (b[j] !== buf[start + j]) {
          same = false;
          break;
        }
      }
      if (same) return { addr: this.#addrs[i]!, end };
    }
    return null;
  }

  remember(buf: Uint8Array, start: number, end: number, addr: SiteAddress): void {
    const i = this.#next;
    this.#bytes[i] = Buffer.from(buf.subarray(start, end));
    this.#addrs[i] = addr;
    this.#next = (i + 1) % SiteAddressMemo.SIZE;
  }
}
const SITE_ADDRESSES = new SiteAddressMemo();

/**
 * Where the encoding of a site address without extensions that starts at `buf[start]` ends, or -1
 * (extensions, or bytes missing: the full decoder handles and reports those).
 */
function siteAddressEnd(buf: Uint8Array, start: number): number {
  let o = start + 1 + UUID_BYTES;
  if (o >= buf.length) return -1;
  o += 1 + buf[o]!; // compressed flags: count byte + bytes
  if (o >= buf.length || buf[o] !== 0) return -1; // extensions
  o += 1;
  for (let k = 0; k < 2; k++) {
    if (o >= buf.length) return -1;
    if (buf[o] !== 1) {
      o += 1; // null string
      continue;
    }
    if (o + 3 > buf.length) return -1;
    o += 3 + ((buf[o + 1]! << 8) | buf[o + 2]!);
  }
  return o <= buf.length ? o : -1;
}

function readIp(r: Reader, what: string): IpAddress {
  const len = r.u8(`${what} ip length`);
  if (len === 0) return { kind: "ip", host: null, port: r.u16(`${what} port`) };
  if (len !== 4 && len !== 16) {
    throw new ProtocolError("bad-address", `${what}: ip length ${len} (0, 4 or 16 expected)`);
  }
  r.need(len, what);
  const host = formatIp(r.buf, r.pos, len);
  r.pos += len;
  if (len === 4) return { kind: "ip", host, port: r.u16(`${what} port`) };
  const scopeId = r.i32(`${what} scope id`);
  // Java keeps no negative scope id (it reads one as "unset" and writes 0): not canonical.
  if (scopeId < 0) throw new ProtocolError("bad-address", `${what}: negative IPv6 scope id ${scopeId}`);
  return { kind: "ip", host, port: r.u16(`${what} port`), scopeId };
}

/** JGroups casts physical addresses to PhysicalAddress: only IpAddress (or null) is valid there. */
function readPhysical(r: Reader, lim: DecodeLimits, what: string): Address | null {
  const at = r.pos;
  const a = readAddress(r, lim, what);
  if (a !== null && a.kind !== "ip") {
    throw new ProtocolError(
      "bad-address",
      `${what} at offset ${at} is a ${a.kind} address, not an IP address`,
    );
  }
  return a;
}

function readPingDataList(r: Reader, lim: DecodeLimits): readonly PingData[] {
  const n = r.i16("ping_count");
  if (n === 0) return NO_PING_DATA;
  if (n < 0 || n > lim.maxPingData) {
    throw new ProtocolError(
      "count-out-of-bounds",
      `ping_count ${n} (0..${Math.min(lim.maxPingData, I16_MAX)})`,
    );
  }
  r.need(n * MIN_PING_DATA, "ping data");
  const out: PingData[] = [];
  for (let i = 0; i < n; i++) {
    const member = readAddress(r, lim, "ping member");
    const flags = r.u8("ping flags");
    const logicalName = readString(r, "ping logical_name");
    const physicalAddr = readPhysical(r, lim, "ping physical_addr");
    const count = r.i16("ping member count");
    let mbrs: Address[] | null = null;
    if (count !== -1) {
      if (count < 0 || count > lim.maxMembers) {
        throw new ProtocolError("count-out-of-bounds", `ping member count ${count}`);
      }
      r.need(count * MIN_ADDRESS, "ping members");
      mbrs = [];
      for (let k = 0; k < count; k++) {
        const m = readAddress(r, lim, "ping member list entry");
        // Java would accept a null entry, but no JGroups writer produces one and our type has none.
        if (m === null) throw new ProtocolError("bad-address", "null entry in a ping member list");
        mbrs.push(m);
      }
    }
    out.push({ member, flags, logicalName, physicalAddr, mbrs });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding: one pass to size the body exactly, one pass to write it.

function stringSize(s: string | null, what: string): number {
  if (s === null || s === undefined) return 1;
  if (typeof s !== "string") throw new ProtocolError("bad-string", `${what} is not a string`);
  const n = mutf8Length(s);
  if (n > MAX_UTF_BYTES)
    throw new ProtocolError("bad-string", `${what} takes ${n} bytes (max ${MAX_UTF_BYTES})`);
  return 3 + n;
}

function compressedIntSize(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) {
    throw new ProtocolError("bad-address", `${what}: flags ${v} is not a 32-bit integer`);
  }
  const u = v >>> 0;
  if (u === 0) return 1;
  if (u >>> 24 !== 0) return 5;
  if (u >>> 16 !== 0) return 4;
  if (u >>> 8 !== 0) return 3;
  return 2;
}

function extensionsSize(ext: readonly AddressExtension[], what: string): number {
  if (ext.length > 255) throw new ProtocolError("count-out-of-bounds", `${what}: ${ext.length} extensions`);
  let n = 1;
  for (const e of ext) {
    if (e.key.length > 255 || (e.value !== null && e.value.length > 255)) {
      throw new ProtocolError("count-out-of-bounds", `${what}: extension key/value longer than 255 bytes`);
    }
    n += 2 + e.key.length + (e.value?.length ?? 0);
  }
  return n;
}

function checkUuid(uuid: string, what: string): void {
  if (!isUuid(uuid)) {
    throw new ProtocolError(
      "bad-address",
      `${what}: uuid ${JSON.stringify(uuid)} is not lowercase 8-4-4-4-12 hex`,
    );
  }
}

function ipBytes(a: IpAddress, what: string): Uint8Array | null {
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 0xffff) {
    throw new ProtocolError("bad-address", `${what}: port ${a.port} out of range`);
  }
  if (a.host === null || a.host === undefined) return null;
  const bytes = typeof a.host === "string" ? parseIp(a.host) : null;
  if (!bytes)
    throw new ProtocolError("bad-address", `${what}: ${JSON.stringify(a.host)} is not an IP literal`);
  const scope = a.scopeId ?? 0;
  if (!Number.isInteger(scope) || scope < 0 || scope > 0x7fffffff || (bytes.length === 4 && scope !== 0)) {
    throw new ProtocolError("bad-address", `${what}: bad scope id ${scope}`);
  }
  return bytes;
}

function addressSize(a: Address | null, what: string): number {
  if (a === null || a === undefined) return 1;
  switch (a.kind) {
    case "uuid":
      checkUuid(a.uuid, what);
      return 17;
    case "site-uuid":
    case "site-master":
      checkUuid(a.uuid, what);
      return (
        17 +
        compressedIntSize(a.flags, what) +
        extensionsSize(a.extensions, what) +
        stringSize(a.site, `${what} site`) +
        stringSize(a.name, `${what} name`)
      );
    case "ip": {
      const b = ipBytes(a, what);
      return b === null ? 4 : b.length === 4 ? 8 : 24;
    }
    case "magic":
      checkUuid(a.uuid, what);
      if (a.magic === MAGIC_FLAGS_UUID) {
        if (a.extensions.length > 0) {
          throw new ProtocolError("bad-address", `${what}: a FlagsUUID (magic 19) has no extensions`);
        }
        return 19 + compressedIntSize(a.flags, what);
      }
      if (a.magic === MAGIC_EXTENDED_UUID) {
        return 19 + compressedIntSize(a.flags, what) + extensionsSize(a.extensions, what);
      }
      throw new ProtocolError("unsupported-address", `${what}: cannot encode magic id ${a.magic}`);
    default:
      throw new ProtocolError(
        "bad-address",
        `${what}: unknown address kind ${(a as { kind: unknown }).kind}`,
      );
  }
}

function checkCount(n: number, what: string): void {
  if (n > I16_MAX) throw new ProtocolError("count-out-of-bounds", `${what}: ${n} entries (max ${I16_MAX})`);
}

function bodySize(d: GossipData): number {
  if (!Number.isInteger(d.type) || d.type < 0 || d.type > MAX_TYPE) {
    throw new ProtocolError("bad-type", `type ${d.type}`);
  }
  let n = 1 + stringSize(d.group, "group") + addressSize(d.addr, "addr") + addressSize(d.sender, "sender");
  if (d.type !== GossipType.Message) {
    n += stringSize(d.logicalName, "logical_name") + 2;
    checkCount(d.pingData.length, "ping data");
    for (const p of d.pingData) {
      if (!Number.isInteger(p.flags) || p.flags < 0 || p.flags > 0xff) {
        throw new ProtocolError("bad-address", `ping flags ${p.flags} is not a byte`);
      }
      n += addressSize(p.member, "ping member") + 1 + stringSize(p.logicalName, "ping logical_name");
      n += physicalSize(p.physicalAddr, "ping physical_addr") + 2;
      if (p.mbrs) {
        checkCount(p.mbrs.length, "ping member list");
        for (const m of p.mbrs) {
          if (m === null) throw new ProtocolError("bad-address", "null entry in a ping member list");
          n += addressSize(m, "ping member list entry");
        }
      }
    }
    n += physicalSize(d.physicalAddr, "physical_addr");
  }
  return n + 4 + d.payload.length;
}

function physicalSize(a: Address | null, what: string): number {
  if (a && a.kind !== "ip") throw new ProtocolError("bad-address", `${what} must be an IP address or null`);
  return addressSize(a, what);
}

/** The GossipRouter fields on the shared writer (into a buffer sized by bodySize). */
class BodyWriter extends Writer {
  string(s: string | null): void {
    if (s === null || s === undefined) {
      this.u8(0);
      return;
    }
    this.u8(1);
    const start = this.pos;
    this.pos = mutf8Write(s, this.buf, start + 2);
    const len = this.pos - start - 2;
    this.buf[start] = len >>> 8;
    this.buf[start + 1] = len;
  }
  uuid(uuid: string): void {
    writeUuid(uuid, this.buf, this.pos, "lsb-first");
    this.pos += UUID_BYTES;
  }
  compressedInt(v: number): void {
    const u = v >>> 0;
    const n = u === 0 ? 0 : u >>> 24 ? 4 : u >>> 16 ? 3 : u >>> 8 ? 2 : 1;
    this.u8(n);
    for (let i = 0; i < n; i++) this.u8((u >>> (8 * i)) & 0xff);
  }
  extensions(ext: readonly AddressExtension[]): void {
    this.u8(ext.length);
    for (const e of ext) {
      this.u8(e.key.length);
      this.bytes(e.key);
      // Java writes a missing value and an empty one alike: length 0.
      this.u8(e.value?.length ?? 0);
      if (e.value) this.bytes(e.value);
    }
  }
  address(a: Address | null): void {
    if (a === null || a === undefined) {
      this.u8(FLAG_NULL);
      return;
    }
    switch (a.kind) {
      case "uuid":
        this.u8(FLAG_UUID);
        this.uuid(a.uuid);
        return;
      case "site-uuid":
      case "site-master":
        this.u8(a.kind === "site-uuid" ? FLAG_SITE_UUID : FLAG_SITE_MASTER);
        this.uuid(a.uuid);
        this.compressedInt(a.flags);
        this.extensions(a.extensions);
        this.string(a.site);
        this.string(a.name);
        return;
      case "ip": {
        this.u8(FLAG_IP);
        const b = ipBytes(a, "ip");
        if (b === null) {
          this.u8(0);
        } else {
          this.u8(b.length);
          this.bytes(b);
          if (b.length === 16) this.i32(a.scopeId ?? 0);
        }
        this.u16(a.port);
        return;
      }
      case "magic":
        this.u8(FLAG_OTHER);
        this.u16(a.magic);
        this.uuid(a.uuid);
        this.compressedInt(a.flags);
        if (a.magic === MAGIC_EXTENDED_UUID) this.extensions(a.extensions);
        return;
    }
  }
}

function writeBody(d: GossipData, w: BodyWriter): void {
  w.u8(d.type);
  w.string(d.group);
  w.address(d.addr);
  w.address(d.sender);
  if (d.type !== GossipType.Message) {
    w.string(d.logicalName);
    w.u16(d.pingData.length);
    for (const p of d.pingData) {
      w.address(p.member);
      w.u8(p.flags);
      w.string(p.logicalName);
      w.address(p.physicalAddr);
      if (p.mbrs === null || p.mbrs === undefined) {
        w.u16(0xffff);
      } else {
        w.u16(p.mbrs.length);
        for (const m of p.mbrs) w.address(m);
      }
    }
    w.address(d.physicalAddr);
  }
  w.i32(d.payload.length);
  w.bytes(d.payload);
}

/** Encodes only the body (no length prefix). */
export function encodeBody(data: GossipData): Buffer {
  const size = bodySize(data);
  const w = new BodyWriter(Buffer.allocUnsafe(size), 0);
  writeBody(data, w);
  return w.buf;
}

/** Encodes a whole frame: i32 length prefix + canonical body (exactly what JGroups writes). */
export function encodeFrame(data: GossipData): Buffer {
  const size = bodySize(data);
  const buf = Buffer.allocUnsafe(4 + size);
  buf.writeInt32BE(size, 0);
  writeBody(data, new BodyWriter(buf, 4));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Equality

/**
 * A stable string key for an address with JGroups equality semantics (UUID-family addresses are
 * equal when their 128 bits are; SiteMaster by site; IpAddress by host and port).
 *
 * Details, from the JGroups 5.5 equals/hashCode: UUID, FlagsUUID and ExtendedUUID are equal when
 * their 128 bits are (flags and extensions do not count). SiteUUID adds its site (when set) to
 * hash and compare, and only equals another SiteUUID; SiteMaster compares site then bits, and
 * all SiteMasters without a site are one "all site masters" address. IpAddress compares the IP
 * bytes (not the IPv6 scope id) and the port. Java's UUID.equals(siteUuid) is asymmetric; a key
 * has to be symmetric, so a SiteUUID never matches a plain UUID here.
 */
export function addressKey(addr: Address): string {
  switch (addr.kind) {
    case "uuid":
    case "magic":
      return "u:" + addr.uuid;
    case "site-uuid":
      // uuid has a fixed length, so whatever the site holds the key stays unambiguous.
      return addr.site === null ? "s:" + addr.uuid : "s:" + addr.uuid + ":" + addr.site;
    case "site-master":
      return addr.site === null ? "m:*" : "m:" + addr.uuid + ":" + addr.site;
    case "ip": {
      if (addr.host === null) return "ip:#" + addr.port;
      const bytes = parseIp(addr.host);
      const host = bytes ? formatIp(bytes, 0, bytes.length as 4 | 16) : addr.host;
      return "ip:" + host + "#" + addr.port;
    }
  }
}
