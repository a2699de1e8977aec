// Unit tests of the codec's edges: what it rejects (and with which code), primitives, equality.
import { ConfigError } from "../../contract/errors.js";
import {
  type Address,
  addressKey,
  decodeBody,
  decodeRouteHeader,
  encodeBody,
  encodeFrame,
  type GossipData,
  GossipType,
  heartbeatFrame,
  type PingData,
  ProtocolError,
  type ProtocolErrorCode,
  registerFrame,
} from "../../runtime/protocol/index.js";
import { formatIp, parseIp } from "../../runtime/protocol/ip.js";
import { mutf8Decode, mutf8Length } from "../../runtime/protocol/mutf8.js";
import { GRACEFUL_CLOSE_HEX, loadCaptures } from "./captures.js";

const UUID = "189a9dcf-b9ad-4039-99bc-aefa9c65641e";
const UUID_WIRE = "99bcaefa9c65641e189a9dcfb9ad4039";

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ""), "hex");
}

function errorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw new Error(`expected a ProtocolError, got ${String(e)}`);
  }
  throw new Error("expected a ProtocolError, nothing was thrown");
}

function expectCode(fn: () => unknown, code: ProtocolErrorCode): void {
  expect(errorOf(fn).code).toBe(code);
}

function data(fields: Partial<GossipData> & { type: GossipType }): GossipData {
  return {
    group: null,
    addr: null,
    sender: null,
    logicalName: null,
    pingData: [],
    physicalAddr: null,
    payload: new Uint8Array(0),
    ...fields,
  };
}

/** A REGISTER body with a string of raw bytes `s` (length prefixed) as its group. */
function groupBody(raw: string): Buffer {
  const bytes = hex(raw);
  return Buffer.concat([
    hex("00 01"),
    Buffer.from([bytes.length >> 8, bytes.length & 0xff]),
    bytes,
    hex("01 01 00 0000 01 00000000"),
  ]);
}

describe("decodeBody rejects", () => {
  const heartbeat = heartbeatFrame().subarray(4);

  test("an empty body and every strict prefix of every capture body as truncated", () => {
    expectCode(() => decodeBody(new Uint8Array(0)), "truncated");
    let prefixes = 0;
    for (const frames of loadCaptures().values()) {
      for (const f of frames) {
        if (f.hex === GRACEFUL_CLOSE_HEX) continue;
        const body = f.bytes.subarray(4);
        for (let n = 0; n < body.length; n++) {
          const code = errorOf(() => decodeBody(body.subarray(0, n))).code;
          if (code !== "truncated") throw new Error(`${f.file} #${f.index} cut to ${n} bytes: ${code}`);
          prefixes++;
        }
      }
    }
    expect(prefixes).toBeGreaterThan(10000);
  });

  test("trailing bytes after a complete body", () => {
    expectCode(() => decodeBody(Buffer.concat([heartbeat, hex("00")])), "trailing-bytes");
  });

  test("type bytes above 7", () => {
    for (const t of [8, 9, 0x7f, 0x80, 0xff]) {
      const b = Buffer.from(heartbeat);
      b[0] = t;
      expectCode(() => decodeBody(b), "bad-type");
      expectCode(() => decodeRouteHeader(b), "bad-type");
    }
  });

  test("a body larger than maxFrame", () => {
    expectCode(() => decodeBody(heartbeat, { maxFrame: 11 }), "frame-too-large");
    expect(decodeBody(heartbeat, { maxFrame: 12 }).type).toBe(GossipType.Heartbeat);
  });

  test("limits given as undefined mean the defaults, not 'no limit'", () => {
    expectCode(
      () => decodeBody(hex("03 00 01 01 00 7fff 01 00000000"), { maxPingData: undefined }),
      "truncated",
    );
    expect(decodeBody(heartbeat, { maxFrame: undefined }).type).toBe(GossipType.Heartbeat);
    expect(() => decodeBody(heartbeat, { maxFrame: Number.NaN })).toThrow(ConfigError);
  });

  test("a negative buf_len", () => {
    expectCode(() => decodeBody(hex("05 00 01 01 00 0000 01 ffffffff")), "bad-length");
  });

  test("a buf_len larger than what remains, without allocating it", () => {
    expectCode(() => decodeBody(hex("05 00 01 01 00 0000 01 7fffffff")), "truncated");
  });

  test("unknown address flags, including combinations Java would accept loosely", () => {
    for (const flag of [0x03, 0x06, 0x20, 0x40, 0x80, 0xff]) {
      expectCode(
        () => decodeBody(hex(`05 00 ${flag.toString(16).padStart(2, "0")} 01 00 0000 01 00000000`)),
        "bad-address",
      );
    }
  });

  test("address classes by magic id other than FlagsUUID and ExtendedUUID", () => {
    for (const magic of ["0001", "000b", "000d", "000e", "7fff", "ffff"]) {
      expectCode(
        () => decodeBody(hex(`01 00 00 ${magic} ${UUID_WIRE} 00 01 00 0000 01 00000000`)),
        "unsupported-address",
      );
    }
  });

  test("IP lengths other than 0, 4 and 16", () => {
    expectCode(() => decodeBody(hex("00 00 01 01 00 0000 10 05 0102030405 1f90 00000000")), "bad-address");
    expectCode(() => decodeBody(hex("00 00 01 01 00 0000 10 ff 1f90 00000000")), "bad-address");
  });

  test("a negative IPv6 scope id (Java reads it as unset and would write 0)", () => {
    expectCode(
      () => decodeBody(hex(`00 00 01 01 00 0000 10 10 ${"00".repeat(15)}01 ffffffff 1e78 00000000`)),
      "bad-address",
    );
  });

  test("a physical address that is not an IP address", () => {
    expectCode(() => decodeBody(hex(`00 00 01 01 00 0000 02 ${UUID_WIRE} 00000000`)), "bad-address");
  });

  test("non-canonical and oversized compressed ints", () => {
    const site = (flags: string) => hex(`01 00 04 ${UUID_WIRE} ${flags} 00 00 00 01 00 0000 01 00000000`);
    expect(decodeBody(site("01 05")).addr).toMatchObject({ kind: "site-uuid", flags: 5 });
    expect(decodeBody(site("04 78563412")).addr).toMatchObject({ flags: 0x12345678 });
    expect(decodeBody(site("04 ffffffff")).addr).toMatchObject({ flags: -1 });
    expectCode(() => decodeBody(site("01 00")), "bad-address");
    expectCode(() => decodeBody(site("02 0500")), "bad-address");
    expectCode(() => decodeBody(site("05 0102030405")), "bad-address");
  });

  test("negative and out-of-limit counts", () => {
    expectCode(() => decodeBody(hex("03 00 01 01 00 ffff 01 00000000")), "count-out-of-bounds");
    expectCode(() => decodeBody(hex("03 00 01 01 00 8000 01 00000000")), "count-out-of-bounds");
    // 2 entries announced, limit 1.
    expectCode(
      () => decodeBody(hex("03 00 01 01 00 0002 01 00000000"), { maxPingData: 1 }),
      "count-out-of-bounds",
    );
    // 32767 entries announced but only a few bytes follow: rejected before any loop or allocation.
    expectCode(() => decodeBody(hex("03 00 01 01 00 7fff 01 00000000")), "truncated");
    // Member list count -2 (only -1 means "no list").
    const ping = (count: string) => hex(`03 00 01 01 00 0001 01 01 00 01 ${count} 01 00000000`);
    expect(decodeBody(ping("ffff")).pingData[0]!.mbrs).toBeNull();
    expect(decodeBody(ping("0000")).pingData[0]!.mbrs).toEqual([]);
    expectCode(() => decodeBody(ping("fffe")), "count-out-of-bounds");
    expectCode(() => decodeBody(ping("0002"), { maxMembers: 1 }), "count-out-of-bounds");
    const ext = hex(`01 00 04 ${UUID_WIRE} 00 02 0161 00 0162 00 00 00 01 00 0000 01 00000000`);
    expect(decodeBody(ext).addr).toMatchObject({
      extensions: [{ key: new Uint8Array([0x61]), value: null }, {}],
    });
    expectCode(() => decodeBody(ext, { maxExtensions: 1 }), "count-out-of-bounds");
  });

  test("malformed modified UTF-8", () => {
    const cases = {
      "raw NUL": "00",
      "lone continuation byte": "80",
      "4-byte lead": "f09f9880",
      "overlong 2-byte": "c1 81",
      "overlong 3-byte": "e0 81 81",
      "truncated 2-byte": "c3",
      "truncated 3-byte": "e2 82",
      "bad continuation": "c3 41",
      "5-byte lead": "f8 80 80 80 80",
    };
    for (const [name, raw] of Object.entries(cases)) {
      const err = errorOf(() => decodeBody(groupBody(raw)));
      expect([name, err.code]).toEqual([name, "bad-string"]);
    }
  });

  test("non-byte-array input, with a ProtocolError", () => {
    expectCode(() => decodeBody("hello" as unknown as Uint8Array), "bad-length");
    expectCode(() => decodeRouteHeader(null as unknown as Uint8Array), "bad-length");
  });
});

describe("decodeBody accepts", () => {
  test("string presence values other than 1 as null (like Java's Bits.readString)", () => {
    const d = decodeBody(hex("05 02 01 01 ff 0000 01 00000000"));
    expect(d.group).toBeNull();
    expect(d.logicalName).toBeNull();
  });

  test("every address kind, and re-encodes them identically", () => {
    const bodies = [
      // SiteMaster for site sfc with a null name
      `01 00 08 ${"00".repeat(16)} 00 00 01 0003 736663 00 01 00 0000 01 00000000`,
      // FlagsUUID (magic 19) with flags 2
      `01 00 00 0013 ${UUID_WIRE} 01 02 01 00 0000 01 00000000`,
      // ExtendedUUID (magic 12) with one extension with a value
      `01 00 00 000c ${UUID_WIRE} 00 01 01 6b 02 7676 01 00 0000 01 00000000`,
      // IPv6 ::1 scope 3, port 7800, and an IP address without IP
      `00 00 01 01 00 0000 10 10 ${"00".repeat(15)}01 00000003 1e78 00000000`,
      "00 00 01 01 00 0000 10 00 1e78 00000000",
    ];
    const decoded = bodies.map((b) => {
      const d = decodeBody(hex(b));
      expect(encodeBody(d).toString("hex")).toBe(b.replace(/\s+/g, ""));
      return d;
    });
    expect(decoded[0]!.addr).toEqual({
      kind: "site-master",
      uuid: "00000000-0000-0000-0000-000000000000",
      flags: 0,
      extensions: [],
      site: "sfc",
      name: null,
    });
    expect(decoded[1]!.addr).toEqual({ kind: "magic", magic: 19, uuid: UUID, flags: 2, extensions: [] });
    expect(decoded[2]!.addr).toEqual({
      kind: "magic",
      magic: 12,
      uuid: UUID,
      flags: 0,
      extensions: [{ key: new Uint8Array([0x6b]), value: new Uint8Array([0x76, 0x76]) }],
    });
    expect(decoded[3]!.physicalAddr).toEqual({ kind: "ip", host: "::1", port: 7800, scopeId: 3 });
    expect(decoded[4]!.physicalAddr).toEqual({ kind: "ip", host: null, port: 7800 });
  });

  test("payload and extension bytes are copies, not views of the input", () => {
    const body = Buffer.from(
      encodeBody(data({ type: GossipType.Message, group: "g", payload: new Uint8Array([1, 2, 3]) })),
    );
    const d = decodeBody(body);
    body.fill(0);
    expect([...d.payload]).toEqual([1, 2, 3]);
  });

  test("a route header from a body whose tail is garbage (only the start is read)", () => {
    const frame = registerFrame("chat", { kind: "uuid", uuid: UUID }, "x", null);
    const body = Buffer.concat([frame.subarray(4, 4 + 1 + 7 + 17), hex("ffffff")]);
    expect(decodeRouteHeader(body)).toEqual({
      type: GossipType.Register,
      group: "chat",
      addr: { kind: "uuid", uuid: UUID },
    });
  });
});

describe("encoding", () => {
  test("HEARTBEAT, GET_MBRS and REGISTER are the documented bytes", () => {
    expect(encodeFrame(data({ type: GossipType.Heartbeat })).toString("hex")).toBe(
      "0000000c050001010000000100000000",
    );
    expect(encodeFrame(data({ type: GossipType.GetMbrs })).toString("hex")).toBe(
      "0000000c020001010000000100000000",
    );
    expect(
      registerFrame("chat", { kind: "uuid", uuid: UUID }, "h1", {
        kind: "ip",
        host: "127.0.0.1",
        port: 37661,
      }).toString("hex"),
    ).toBe(
      hex(
        `0000002d 00 01 0004 63686174 02 ${UUID_WIRE} 01 01 0002 6831 0000 10 04 7f000001 931d 00000000`,
      ).toString("hex"),
    );
  });

  test("MESSAGE writes only type, group, addr, sender and payload", () => {
    const b = encodeBody(
      data({ type: GossipType.Message, group: "g", logicalName: "ignored", payload: new Uint8Array([9]) }),
    );
    expect(b.toString("hex")).toBe("04010001670101" + "00000001" + "09");
  });

  test("rejects values it cannot write, with a ProtocolError", () => {
    const bad = (fields: Partial<GossipData>, code: ProtocolErrorCode) =>
      expectCode(() => encodeBody(data({ type: GossipType.Register, ...fields })), code);
    bad({ type: 8 as GossipType }, "bad-type");
    bad({ addr: { kind: "uuid", uuid: UUID.toUpperCase() } }, "bad-address");
    bad({ addr: { kind: "uuid", uuid: "not-a-uuid" } }, "bad-address");
    bad({ group: "x".repeat(65536) }, "bad-string");
    bad({ group: "é".repeat(32768) }, "bad-string");
    bad({ physicalAddr: { kind: "ip", host: "localhost", port: 1 } }, "bad-address");
    bad({ physicalAddr: { kind: "ip", host: "1.2.3.4", port: 65536 } }, "bad-address");
    bad({ physicalAddr: { kind: "ip", host: "1.2.3.4", port: 1, scopeId: 2 } }, "bad-address");
    bad({ physicalAddr: { kind: "ip", host: "::1", port: 1, scopeId: -1 } }, "bad-address");
    bad({ physicalAddr: { kind: "uuid", uuid: UUID } }, "bad-address");
    bad({ addr: { kind: "magic", magic: 11, uuid: UUID, flags: 0, extensions: [] } }, "unsupported-address");
    bad(
      {
        addr: {
          kind: "magic",
          magic: 19,
          uuid: UUID,
          flags: 0,
          extensions: [{ key: new Uint8Array(1), value: null }],
        },
      },
      "bad-address",
    );
    const ext = { key: new Uint8Array(256), value: null };
    bad(
      { addr: { kind: "site-uuid", uuid: UUID, flags: 0, extensions: [ext], site: null, name: null } },
      "count-out-of-bounds",
    );
    bad(
      { addr: { kind: "site-uuid", uuid: UUID, flags: 1.5, extensions: [], site: null, name: null } },
      "bad-address",
    );
    const ping: PingData = { member: null, flags: 1, logicalName: null, physicalAddr: null, mbrs: null };
    bad(
      { type: GossipType.GetMbrsRsp, pingData: new Array<PingData>(32768).fill(ping) },
      "count-out-of-bounds",
    );
    bad({ type: GossipType.GetMbrsRsp, pingData: [{ ...ping, flags: 256 }] }, "bad-address");
  });

  test("a 65535-byte string is the largest that fits", () => {
    const d = data({ type: GossipType.Register, group: "a".repeat(65535) });
    expect(decodeBody(encodeBody(d)).group).toBe(d.group);
  });
});

describe("modified UTF-8", () => {
  const enc = (s: string) =>
    encodeBody(data({ type: GossipType.Register, group: s })).subarray(4, 4 + mutf8Length(s));

  test("U+0000 is c0 80, non-BMP characters are two 3-byte surrogates", () => {
    expect(enc("a\u0000b").toString("hex")).toBe("61c08062");
    expect(enc("😀").toString("hex")).toBe("eda0bdedb880");
    expect(enc("bøb").toString("hex")).toBe("62c3b862");
    expect(enc("€").toString("hex")).toBe("e282ac");
  });

  test("lone surrogates round-trip (Java strings are UTF-16 too)", () => {
    for (const s of ["\ud800", "x\udfffy", "\udbff\ud800"]) {
      const b = enc(s);
      expect(mutf8Decode(b, 0, b.length)).toBe(s);
    }
  });

  test("long ASCII and non-ASCII strings decode", () => {
    for (const s of ["x".repeat(20000), "ü€😀\u0000".repeat(3000)]) {
      const b = enc(s);
      expect(mutf8Decode(b, 0, b.length)).toBe(s);
    }
  });
});

describe("IP text", () => {
  test("canonical forms", () => {
    const cases: [string, string][] = [
      ["127.0.0.1", "127.0.0.1"],
      ["::1", "::1"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      ["::", "::"],
      ["fe80::", "fe80::"],
      ["::ffff:10.1.2.3", "::ffff:10.1.2.3"],
      ["0:0:0:0:0:ffff:a01:203", "::ffff:10.1.2.3"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ];
    for (const [input, out] of cases) {
      const b = parseIp(input)!;
      expect([input, formatIp(b, 0, b.length as 4 | 16)]).toEqual([input, out]);
    }
  });

  test("rejects what is not an IP literal", () => {
    for (const s of [
      "",
      "1.2.3",
      "1.2.3.256",
      "01.2.3.4",
      "1.2.3.4.5",
      "localhost",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "fe80::1%eth0",
      "12345::",
      "1:2:3:4:5:6:7::8",
    ]) {
      expect([s, parseIp(s)]).toEqual([s, null]);
    }
  });
});

describe("addressKey", () => {
  const site = (kind: "site-uuid" | "site-master", uuid: string, s: string | null): Address => ({
    kind,
    uuid,
    flags: 0,
    extensions: [],
    site: s,
    name: "n",
  });
  const OTHER = "00000000-0000-0000-0000-000000000001";

  test("UUID, FlagsUUID and ExtendedUUID are equal by their 128 bits", () => {
    const k = addressKey({ kind: "uuid", uuid: UUID });
    expect(addressKey({ kind: "magic", magic: 19, uuid: UUID, flags: 4, extensions: [] })).toBe(k);
    expect(
      addressKey({
        kind: "magic",
        magic: 12,
        uuid: UUID,
        flags: 0,
        extensions: [{ key: new Uint8Array(1), value: null }],
      }),
    ).toBe(k);
    expect(addressKey({ kind: "uuid", uuid: OTHER })).not.toBe(k);
  });

  test("SiteUUID: bits and site (names, flags and extensions do not count)", () => {
    expect(addressKey(site("site-uuid", UUID, "nyc"))).toBe(
      addressKey({ ...site("site-uuid", UUID, "nyc"), name: "other", flags: 3 } as Address),
    );
    expect(addressKey(site("site-uuid", UUID, "nyc"))).not.toBe(addressKey(site("site-uuid", UUID, "sfc")));
    expect(addressKey(site("site-uuid", UUID, "nyc"))).not.toBe(addressKey(site("site-uuid", OTHER, "nyc")));
    expect(addressKey(site("site-uuid", UUID, "nyc"))).not.toBe(addressKey(site("site-master", UUID, "nyc")));
    expect(addressKey(site("site-uuid", UUID, ""))).not.toBe(addressKey(site("site-uuid", UUID, null)));
  });

  test("SiteMaster: by site; every SiteMaster without a site is the same address", () => {
    expect(addressKey(site("site-master", UUID, null))).toBe(addressKey(site("site-master", OTHER, null)));
    expect(addressKey(site("site-master", UUID, "nyc"))).not.toBe(
      addressKey(site("site-master", UUID, "sfc")),
    );
  });

  test("IpAddress: IP bytes and port, whatever the text form or scope id", () => {
    const ip = (host: string | null, port: number, scopeId?: number): Address => ({
      kind: "ip",
      host,
      port,
      scopeId,
    });
    expect(addressKey(ip("::1", 7800, 1))).toBe(addressKey(ip("0:0:0:0:0:0:0:1", 7800, 2)));
    expect(addressKey(ip("::1", 7800))).not.toBe(addressKey(ip("::1", 7801)));
    expect(addressKey(ip("127.0.0.1", 1))).not.toBe(addressKey(ip("::ffff:127.0.0.1", 1)));
    expect(addressKey(ip(null, 1))).not.toBe(addressKey(ip("0.0.0.0", 1)));
  });
});
