// The kv wire format: round trips of every message (fast-check), a pinned encoding, bounds, and
// fuzzing (random bytes, truncated and bit-flipped valid messages): decoding throws KvError
// BAD_FRAME and nothing else; a state-transfer chunk with one flipped byte fails its checksum.
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import {
  chunkEntries,
  DEFAULT_CODEC_LIMITS,
  decodeKvMessage,
  encodeKvMessage,
  entryWireBytes,
  type KvMessage,
  MAX_ENVELOPE_BYTES,
} from "../../runtime/kv/codec.js";
import { BUCKETS, Digest, digestRoot, LEAVES, SUB_BUCKETS } from "../../runtime/kv/digest.js";
import type { Entry } from "../../runtime/kv/entry.js";
import { KV_ERROR_CODES, KvError } from "../../runtime/kv/errors.js";
import { MAX_LOGICAL } from "../../runtime/kv/hlc.js";

const nameArb = fc.string({ unit: "grapheme", minLength: 1, maxLength: 10 });
const mapArb = fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 64 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const versionArb = fc.record({
  hlc: fc.record({ wall: fc.maxSafeNat(), logical: fc.integer({ min: 0, max: MAX_LOGICAL }) }),
  site: nameArb,
  member: nameArb,
});
const entryArb: fc.Arbitrary<Entry> = fc.record(
  {
    key: fc.string({ unit: "grapheme", maxLength: 20 }),
    value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
    version: versionArb,
    replaces: versionArb,
  },
  { requiredKeys: ["key", "value", "version"] },
);
const entriesArb = fc.array(entryArb, { maxLength: 8 });
const hashesArb = (n: number) =>
  fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { minLength: n, maxLength: n });

const messageArb: fc.Arbitrary<KvMessage> = fc.oneof(
  fc.record({ type: fc.constant("update" as const), map: mapArb, batch: u32, entries: entriesArb }),
  fc.record({ type: fc.constant("ack" as const), map: mapArb, batch: u32 }),
  fc.record({ type: fc.constant("digest-req" as const), map: mapArb, session: u32 }),
  fc.record({ map: mapArb, session: u32, h: hashesArb(BUCKETS) }).map(({ map, session, h }) => {
    const hashes = BigUint64Array.from(h);
    return { type: "digest-res" as const, map, session, root: digestRoot(hashes), hashes };
  }),
  fc.record({
    type: fc.constant("bucket-req" as const),
    map: mapArb,
    session: u32,
    buckets: fc.array(fc.integer({ min: 0, max: BUCKETS - 1 }), { minLength: 1, maxLength: 20 }),
  }),
  fc.record({
    type: fc.constant("bucket-res" as const),
    map: mapArb,
    session: u32,
    chunk: u32,
    last: fc.boolean(),
    entries: entriesArb,
  }),
  fc.record({
    type: fc.constant("error" as const),
    map: mapArb,
    code: fc.constantFrom(...KV_ERROR_CODES),
    message: fc.string({ maxLength: 50 }),
  }),
  fc.record({
    type: fc.constant("sub-digest-req" as const),
    map: mapArb,
    session: u32,
    buckets: fc.array(fc.integer({ min: 0, max: BUCKETS - 1 }), { minLength: 1, maxLength: 5 }),
  }),
  fc
    .record({
      map: mapArb,
      session: u32,
      buckets: fc.array(fc.integer({ min: 0, max: BUCKETS - 1 }), { minLength: 1, maxLength: 3 }),
    })
    .chain((m) =>
      hashesArb(m.buckets.length * SUB_BUCKETS).map((h) => ({
        type: "sub-digest-res" as const,
        ...m,
        hashes: BigUint64Array.from(h),
      })),
    ),
  fc.record({
    type: fc.constant("leaf-req" as const),
    map: mapArb,
    session: u32,
    leaves: fc.array(fc.integer({ min: 0, max: LEAVES - 1 }), { minLength: 1, maxLength: 20 }),
  }),
  fc.record({
    type: fc.constant("leaf-diff-req" as const),
    map: mapArb,
    session: u32,
    leaves: fc.array(
      fc.record({
        leaf: fc.integer({ min: 0, max: LEAVES - 1 }),
        hashes: fc
          .array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { maxLength: 4 })
          .map((h) => BigUint64Array.from(h)),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  }),
  fc.record({
    type: fc.constant("want" as const),
    map: mapArb,
    session: u32,
    hashes: fc
      .array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { maxLength: 6 })
      .map((h) => BigUint64Array.from(h)),
  }),
);

/** Decodes and expects either a message or a KvError BAD_FRAME, nothing else. */
function decodeOrBadFrame(b: Uint8Array): KvMessage | KvError {
  try {
    return decodeKvMessage(b);
  } catch (err) {
    if (!(err instanceof KvError)) throw new Error(`decode threw a non-KvError: ${String(err)}`);
    expect(err.code).toBe("BAD_FRAME");
    return err;
  }
}

function badFrame(b: Uint8Array): string {
  const r = decodeOrBadFrame(b);
  if (!(r instanceof KvError)) throw new Error(`expected BAD_FRAME, decoded a ${r.type}`);
  return r.message;
}

const entry: Entry = {
  key: "k",
  value: Uint8Array.of(0xaa),
  version: { hlc: { wall: 0x0102_0304_0506, logical: 7 }, site: "nyc", member: "n1" },
};

describe("kv codec", () => {
  test("property: every message round-trips", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const wire = encodeKvMessage(m);
        expect(decodeKvMessage(wire)).toEqual(m);
        // Re-encoding the decoded message gives the same bytes.
        expect(Buffer.compare(encodeKvMessage(decodeKvMessage(wire)), wire)).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  test("the encoding of an UPDATE is pinned (the wire contract between versions)", () => {
    const wire = encodeKvMessage({ type: "update", map: "m", batch: 5, entries: [entry] });
    expect(wire.toString("hex")).toBe(
      [
        "01", // kind UPDATE
        "016d", // map "m"
        "00000005", // batch
        "00000001", // 1 entry
        "00016b", // key "k"
        "01", // a value
        "00000001aa", // value
        "0000010203040506", // wall
        "0007", // logical
        "036e7963", // site "nyc"
        "026e31", // member "n1"
      ].join(""),
    );
    expect(entryWireBytes(entry)).toBe(wire.length - 11);
    // The version it replaced follows the entry's own (flag bit 1).
    const replaces = { hlc: { wall: 0x0102_0304_0500, logical: 0 }, site: "sfc", member: "s1" };
    const second = encodeKvMessage({ type: "update", map: "m", batch: 5, entries: [{ ...entry, replaces }] });
    expect(second.toString("hex")).toBe(
      [
        "01016d0000000500000001", // kind, map, batch, 1 entry
        "00016b", // key "k"
        "03", // a value and a replaced version
        "00000001aa0000010203040506000703 6e7963026e31".replace(" ", ""), // value, version
        "0000010203040500", // replaced: wall
        "0000", // logical
        "03736663", // site "sfc"
        "027331", // member "s1"
      ].join(""),
    );
    expect(entryWireBytes({ ...entry, replaces })).toBe(second.length - 11);
  });

  test("the encodings of LEAF_DIFF_REQ and WANT are pinned", () => {
    const req = encodeKvMessage({
      type: "leaf-diff-req",
      map: "m",
      session: 3,
      leaves: [
        { leaf: 0x0102, hashes: BigUint64Array.of(0x1122334455667788n) },
        { leaf: 0xffff, hashes: new BigUint64Array(0) },
      ],
    });
    expect(req.toString("hex")).toBe(
      [
        "0b", // kind LEAF_DIFF_REQ
        "016d", // map "m"
        "00000003", // session
        "00000002", // 2 leaves
        "0102", // leaf
        "00000001", // 1 hash
        "1122334455667788",
        "ffff", // leaf
        "00000000", // no entry of ours there
      ].join(""),
    );
    const want = encodeKvMessage({ type: "want", map: "m", session: 3, hashes: BigUint64Array.of(1n, 2n) });
    expect(want.toString("hex")).toBe(
      ["0c", "016d", "00000003", "00000002", "0000000000000001", "0000000000000002"].join(""),
    );
  });

  test("LEAF_DIFF_REQ and WANT bounds: counts checked against the bytes left and maxEntries", () => {
    const head = Buffer.from("0b016d00000003", "hex"); // LEAF_DIFF_REQ, map "m", session 3
    const u32be = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]);
    expect(badFrame(Buffer.concat([head, u32be(0)]))).toMatch(/leaf count 0/);
    expect(badFrame(Buffer.concat([head, u32be(LEAVES + 1)]))).toMatch(/leaf count/);
    expect(badFrame(Buffer.concat([head, u32be(60_000), Buffer.alloc(12)]))).toMatch(/leaves/);
    // One leaf that claims 2^32-1 hashes, and one that claims a few more than the message holds.
    expect(badFrame(Buffer.concat([head, u32be(1), Buffer.from("0001", "hex"), u32be(0xffffffff)]))).toMatch(
      /maxEntries/,
    );
    expect(
      badFrame(Buffer.concat([head, u32be(1), Buffer.from("0001", "hex"), u32be(3), Buffer.alloc(16)])),
    ).toMatch(/entry hashes/);
    const small = { ...DEFAULT_CODEC_LIMITS, maxEntries: 2 };
    const three = encodeKvMessage({
      type: "leaf-diff-req",
      map: "m",
      session: 3,
      leaves: [
        { leaf: 1, hashes: BigUint64Array.of(1n, 2n) },
        { leaf: 2, hashes: BigUint64Array.of(3n) },
      ],
    });
    expect(() => decodeKvMessage(three, small)).toThrow(/maxEntries 2/);
    const wantHead = Buffer.from("0c016d00000003", "hex");
    expect(badFrame(Buffer.concat([wantHead, u32be(0xffffffff)]))).toMatch(/maxEntries/);
    expect(badFrame(Buffer.concat([wantHead, u32be(2), Buffer.alloc(8)]))).toMatch(/entry hashes/);
    expect(() =>
      encodeKvMessage({ type: "want", map: "m", session: 1, hashes: BigUint64Array.of(1n, 2n, 3n) }, small),
    ).toThrow(/maxEntries 2/);
    expect(() =>
      encodeKvMessage({
        type: "leaf-diff-req",
        map: "m",
        session: 1,
        leaves: [{ leaf: LEAVES, hashes: new BigUint64Array(0) }],
      }),
    ).toThrow(/outside/);
  });

  test("a digest of a real store round-trips and its root must match its hashes", () => {
    const d = new Digest();
    d.toggle(5, 123n);
    d.toggle(LEAVES - 1, 2n ** 63n);
    const m: KvMessage = { type: "digest-res", map: "m", session: 9, root: d.root(), hashes: d.hashes() };
    const wire = encodeKvMessage(m);
    expect(decodeKvMessage(wire)).toEqual(m);
    const tampered = Buffer.from(wire);
    tampered[tampered.length - 1]! ^= 1; // a hash changed, the root not
    expect(badFrame(tampered)).toMatch(/root does not match/);
  });

  test("a state-transfer chunk with any one byte flipped fails (checksum or bounds)", () => {
    const wire = encodeKvMessage({
      type: "bucket-res",
      map: "m",
      session: 1,
      chunk: 0,
      last: true,
      entries: [entry, { ...entry, key: "k2", value: null }],
    });
    for (let i = 0; i < wire.length; i++)
      for (const bit of [0x01, 0x80]) {
        const b = Buffer.from(wire);
        b[i]! ^= bit;
        const msg = badFrame(b);
        if (i > 2) expect(msg).toMatch(/checksum/); // past kind and map name: the checksum catches it
      }
  });

  test("bounds: counts and lengths are checked before anything is allocated", () => {
    const head = Buffer.from("01016d00000001", "hex"); // UPDATE, map "m", batch 1
    const count = (n: number) =>
      Buffer.concat([head, Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255])]);
    expect(badFrame(count(0xffffffff))).toMatch(/exceed maxEntries/);
    expect(badFrame(count(50_000))).toMatch(/cannot fit/);
    // A key length above maxKeyBytes, a value length above maxValueBytes.
    expect(badFrame(Buffer.concat([count(1), Buffer.from("0101", "hex"), Buffer.alloc(20)]))).toMatch(
      /maxKeyBytes/,
    );
    expect(
      badFrame(Buffer.concat([count(1), Buffer.from("00016b01ffffffff", "hex"), Buffer.alloc(20)])),
    ).toMatch(/maxValueBytes/);
    const limits = { ...DEFAULT_CODEC_LIMITS, maxMessageBytes: 16 };
    expect(() => decodeKvMessage(Buffer.alloc(17), limits)).toThrow(/maxMessageBytes/);
    expect(() => encodeKvMessage({ type: "update", map: "m", batch: 1, entries: [entry] }, limits)).toThrow(
      /send fewer entries/,
    );
  });

  test("malformed fields are BAD_FRAME with a reason", () => {
    const ok = encodeKvMessage({ type: "ack", map: "m", batch: 1 });
    expect(badFrame(Buffer.concat([ok, Buffer.of(0)]))).toMatch(/bytes after the message/);
    expect(badFrame(Buffer.from("63016d00000001", "hex"))).toMatch(/unknown kind 99/);
    expect(badFrame(Buffer.from("0200", "hex"))).toMatch(/map name of 0 bytes/);
    expect(badFrame(Buffer.from("0241", "hex"))).toMatch(/map name of 65 bytes/);
    expect(badFrame(Buffer.from("0201ff00000001", "hex"))).toMatch(/not valid UTF-8/);
    expect(badFrame(Buffer.from("07016d03464f4f0000", "hex"))).toMatch(/unknown error code "FOO"/);
    expect(badFrame(Buffer.alloc(0))).toMatch(/kind/);
    // A stamp beyond 2^53 - 1 and an empty site.
    const upd = encodeKvMessage({ type: "update", map: "m", batch: 1, entries: [entry] });
    const wall = Buffer.from(upd);
    wall.writeUInt32BE(0x00200000, 20); // wall's high word: after kind, map, batch, count, key, value
    expect(badFrame(wall)).toMatch(/2\^53/);
    const site = Buffer.from(upd);
    site[30] = 0; // the site's length byte
    expect(badFrame(site)).toMatch(/site of 0 bytes/);
    // A site name that is not UTF-8 is refused, and the names memo keeps nothing of it: the same
    // message with the name intact still decodes to its site.
    const siteBytes = Buffer.from(upd);
    siteBytes.fill(0xff, 31, 31 + siteBytes[30]!);
    expect(badFrame(siteBytes)).toMatch(/site is not valid UTF-8/);
    expect(badFrame(siteBytes)).toMatch(/site is not valid UTF-8/);
    const again = decodeKvMessage(upd);
    expect(again.type === "update" && again.entries[0]!.version.site).toBe(entry.version.site);
    const flags = Buffer.from(upd);
    flags[14] = 0x05; // the entry's flags: an unknown bit
    expect(badFrame(flags)).toMatch(/entry flags 5 set an unknown bit/);
  });

  test("encoding refuses what cannot be sent, with KvError naming the field", () => {
    const enc = (m: KvMessage) => {
      try {
        encodeKvMessage(m);
      } catch (err) {
        expect(err).toBeInstanceOf(KvError);
        return (err as KvError).message;
      }
      return "encoded";
    };
    expect(enc({ type: "ack", map: "x".repeat(65), batch: 1 })).toMatch(/map name/);
    expect(enc({ type: "ack", map: "m", batch: -1 })).toMatch(/batch/);
    expect(
      enc({ type: "update", map: "m", batch: 1, entries: [{ ...entry, key: "k".repeat(257) }] }),
    ).toMatch(/maxKeyBytes 256/);
    expect(enc({ type: "bucket-req", map: "m", session: 1, buckets: [] })).toMatch(/1\.\.1024/);
    expect(enc({ type: "bucket-req", map: "m", session: 1, buckets: [BUCKETS] })).toMatch(/outside/);
    expect(
      enc({ type: "digest-res", map: "m", session: 1, root: "00", hashes: new BigUint64Array(BUCKETS) }),
    ).toMatch(/hex/);
    // An error message is cut to 1024 bytes on a character boundary.
    const long = encodeKvMessage({ type: "error", map: "m", code: "UNKNOWN_MAP", message: "é".repeat(600) });
    const back = decodeKvMessage(long);
    expect(back.type === "error" && back.message).toBe("é".repeat(512));
  });

  test("property: chunkEntries keeps order, and every chunk encodes within the limits", () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 40 }),
        fc.integer({ min: 200, max: 2000 }),
        fc.integer({ min: 1, max: 10 }),
        (entries, maxMessageBytes, maxEntries) => {
          const limits = { ...DEFAULT_CODEC_LIMITS, maxMessageBytes, maxEntries };
          const chunks = chunkEntries(entries, limits);
          expect(chunks.flat()).toEqual(entries);
          chunks.forEach((c, i) => {
            expect(c.length).toBeGreaterThan(0);
            expect(c.length).toBeLessThanOrEqual(maxEntries);
            const m: KvMessage = {
              type: "bucket-res",
              map: "m".repeat(64),
              session: 1,
              chunk: i,
              last: i === chunks.length - 1,
              entries: c,
            };
            const sum = c.reduce((n, e) => n + entryWireBytes(e), 0);
            if (c.length > 1 || sum + MAX_ENVELOPE_BYTES <= maxMessageBytes)
              expect(encodeKvMessage(m, limits).length).toBe(sum + MAX_ENVELOPE_BYTES);
          });
        },
      ),
    );
  });

  test("fuzz: random bytes decode to a message or BAD_FRAME, never another exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 12 }), (b, kind) => {
        decodeOrBadFrame(b);
        const framed = Uint8Array.from([kind, 1, 0x6d, ...b]); // a real kind and map, random rest
        decodeOrBadFrame(framed);
      }),
      { numRuns: 2000 },
    );
  });

  test("fuzz: truncated and bit-flipped valid messages decode to a message or BAD_FRAME", () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (m, at, bit) => {
        const wire = encodeKvMessage(m);
        for (const cut of [at % wire.length, wire.length - 1]) {
          const r = decodeOrBadFrame(wire.subarray(0, cut));
          expect(r).toBeInstanceOf(KvError); // a prefix of a message is never a message
        }
        const flipped = Buffer.from(wire);
        flipped[at % wire.length]! ^= 1 << bit;
        decodeOrBadFrame(flipped);
      }),
      { numRuns: 500 },
    );
  });
});
