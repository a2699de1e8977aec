// The relay envelope codec: fixtures, round trip of arbitrary envelopes, and a fuzz of random and
// mutated bytes that must only ever produce an Envelope or an EnvelopeError.
import fc from "fast-check";
import {
  decodeProbeInfo,
  decodeSiteView,
  decodeTopology,
  encodeControl,
  MAX_CONTROL_BYTES,
  MAX_PROBE_MAP_LINE,
  MAX_PROBE_MAPS,
} from "../../runtime/relay/control.js";
import {
  DEFAULT_HOPS,
  type Destination,
  decodeEnvelope,
  type Envelope,
  EnvelopeError,
  EnvelopeKind,
  encodeEnvelope,
  isEnvelopeKind,
  senderLabel,
} from "../../runtime/relay/envelope.js";
import { SAMPLE_PROBE } from "./probe-fixture.js";

const INC = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

const hello: Envelope = {
  kind: EnvelopeKind.Data,
  hops: DEFAULT_HOPS,
  origin: { site: "sfc", name: "Temp", incarnation: INC },
  seq: 7,
  dest: { kind: "all" },
  payload: Buffer.from("hello"),
};

function expectCode(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(EnvelopeError);
  expect((caught as EnvelopeError).code).toBe(code);
}

describe("envelope fixtures", () => {
  test("a chat line to everyone has the documented layout", () => {
    const bytes = encodeEnvelope(hello);
    expect(bytes.toString("hex")).toBe(
      [
        "524c", // magic
        "01", // version
        "01", // kind data
        "00", // flags
        "04", // hops
        "03",
        Buffer.from("sfc").toString("hex"),
        "04",
        Buffer.from("Temp").toString("hex"),
        INC.replaceAll("-", ""),
        "00000000",
        "00000007", // seq
        "00", // dest all
        "00000005",
        Buffer.from("hello").toString("hex"),
      ].join(""),
    );
    const back = decodeEnvelope(bytes);
    expect(back).toEqual({ ...hello, payload: expect.any(Uint8Array) });
    expect(Buffer.from(back.payload).toString()).toBe("hello");
  });

  test("member and site destinations and a large sequence number", () => {
    for (const dest of [
      { kind: "site", site: "nyc" },
      { kind: "member", site: "nyc", name: "nyc-2" },
    ] as Destination[]) {
      const env = { ...hello, dest, seq: Number.MAX_SAFE_INTEGER };
      expect(decodeEnvelope(encodeEnvelope(env)).dest).toEqual(dest);
      expect(decodeEnvelope(encodeEnvelope(env)).seq).toBe(Number.MAX_SAFE_INTEGER);
    }
  });

  test("strict decoder: each malformed field has its own code", () => {
    const good = encodeEnvelope(hello);
    const mutate = (i: number, v: number) => {
      const b = Buffer.from(good);
      b[i] = v;
      return b;
    };
    expectCode(() => decodeEnvelope(good.subarray(0, 3)), "truncated");
    expectCode(() => decodeEnvelope(mutate(0, 0x00)), "bad-magic");
    expectCode(() => decodeEnvelope(mutate(2, 2)), "bad-version");
    expectCode(() => decodeEnvelope(mutate(3, 0)), "bad-kind");
    expectCode(() => decodeEnvelope(mutate(3, 99)), "bad-kind");
    expectCode(() => decodeEnvelope(mutate(4, 1)), "bad-flags");
    expectCode(() => decodeEnvelope(mutate(6, 0)), "bad-string");
    expectCode(() => decodeEnvelope(mutate(7, 0xff)), "bad-string"); // invalid UTF-8
    expectCode(() => decodeEnvelope(Buffer.concat([good, Buffer.from([0])])), "trailing-bytes");
    expectCode(() => decodeEnvelope(good.subarray(0, good.length - 1)), "truncated");
    const seqAt = 6 + 4 + 5 + 16;
    expectCode(() => decodeEnvelope(mutate(seqAt, 0xff)), "bad-seq");
    expectCode(() => decodeEnvelope(mutate(seqAt + 8, 3)), "bad-dest");
    expectCode(() => decodeEnvelope(good, { maxPayload: 4 }), "payload-too-large");
  });

  test("service data: flag 0x08 on Data only, round-trips with and without a lane", () => {
    const svc: Envelope = { ...hello, service: true };
    const bytes = encodeEnvelope(svc);
    expect(bytes[4]).toBe(0x08);
    expect(decodeEnvelope(bytes).service).toBe(true);
    expect(decodeEnvelope(encodeEnvelope(hello)).service).toBeUndefined();
    const laned = decodeEnvelope(
      encodeEnvelope({ ...svc, lane: { site: "nyc", seq: 3, low: 1, retry: true } }),
    );
    expect(laned.service).toBe(true);
    expect(laned.lane).toEqual({ site: "nyc", seq: 3, low: 1, retry: true });
    // A control kind never carries service data, either way.
    expectCode(() => encodeEnvelope({ ...svc, kind: EnvelopeKind.Ack }), "bad-flags");
    const control = Buffer.from(bytes);
    control[3] = EnvelopeKind.Ack;
    expectCode(() => decodeEnvelope(control), "bad-flags");
    const unknown = Buffer.from(bytes);
    unknown[4] = 0x10;
    expectCode(() => decodeEnvelope(unknown), "bad-flags");
  });

  test("a huge declared payload length is refused before any allocation", () => {
    const good = encodeEnvelope({ ...hello, payload: new Uint8Array(0) });
    const b = Buffer.from(good);
    b.writeUInt32BE(0xffffffff, b.length - 4);
    expectCode(() => decodeEnvelope(b), "payload-too-large");
    b.writeUInt32BE(1000, b.length - 4);
    expectCode(() => decodeEnvelope(b), "truncated");
  });

  test("the encoder refuses what the decoder would refuse", () => {
    expectCode(() => encodeEnvelope({ ...hello, origin: { ...hello.origin, name: "" } }), "bad-string");
    expectCode(
      () => encodeEnvelope({ ...hello, origin: { ...hello.origin, name: "x".repeat(256) } }),
      "bad-string",
    );
    expectCode(
      () => encodeEnvelope({ ...hello, origin: { ...hello.origin, incarnation: "nope" } }),
      "bad-uuid",
    );
    expectCode(() => encodeEnvelope({ ...hello, seq: -1 }), "bad-seq");
    expectCode(() => encodeEnvelope({ ...hello, seq: 2 ** 53 }), "bad-seq");
    expectCode(() => encodeEnvelope({ ...hello, kind: 0 as EnvelopeKind }), "bad-kind");
    expectCode(() => encodeEnvelope({ ...hello, hops: 256 }), "bad-flags");
  });

  test("the kind bound follows the enum: every kind round-trips, nothing else is a kind", () => {
    const kinds = Object.values(EnvelopeKind).filter((v): v is EnvelopeKind => typeof v === "number");
    expect(kinds.length).toBeGreaterThan(0);
    for (const kind of kinds) {
      expect(isEnvelopeKind(kind)).toBe(true);
      expect(decodeEnvelope(encodeEnvelope({ ...hello, kind })).kind).toBe(kind);
    }
    for (const n of [0, Math.max(...kinds) + 1, 1.5, -1, Number.NaN]) expect(isEnvelopeKind(n)).toBe(false);
    const bytes = encodeEnvelope(hello);
    bytes[3] = Math.max(...kinds) + 1;
    expectCode(() => decodeEnvelope(bytes), "bad-kind");
  });

  test("names decode to themselves however many share the decoder's memo (more names than its slots)", () => {
    // 300 names of one length (and some non-ASCII) over 64 memo slots: many share a slot.
    const names = Array.from({ length: 300 }, (_, i) =>
      i % 7 === 0 ? `é${i}`.padEnd(6, "x") : `n${i}`.padEnd(6, "x"),
    );
    for (let round = 0; round < 3; round++)
      for (const [i, n] of names.entries()) {
        const env = { ...hello, origin: { ...hello.origin, site: n, name: names[(i * 7) % names.length]! } };
        const back = decodeEnvelope(encodeEnvelope(env));
        expect(back.origin.site).toBe(n);
        expect(back.origin.name).toBe(env.origin.name);
      }
    // A name that is not UTF-8 is refused even when a valid one of its length was just decoded.
    const bad = encodeEnvelope({ ...hello, origin: { ...hello.origin, site: "abc" } });
    decodeEnvelope(bad);
    bad[7] = 0xff; // the site's first byte (after the 6-byte header and its length byte)
    expectCode(() => decodeEnvelope(bad), "bad-string");
  });

  test("senders of another site are shown as name:site", () => {
    expect(senderLabel({ name: "sfc-1", site: "sfc" }, "sfc")).toBe("sfc-1");
    expect(senderLabel({ name: "nyc-2", site: "nyc" }, "sfc")).toBe("nyc-2:nyc");
  });
});

const name = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }).filter((s) => {
  const n = Buffer.byteLength(s);
  return n >= 1 && n <= 255;
});
const dest: fc.Arbitrary<Destination> = fc.oneof(
  fc.constant({ kind: "all" } as const),
  name.map((site) => ({ kind: "site", site }) as const),
  fc.tuple(name, name).map(([site, n]) => ({ kind: "member", site, name: n }) as const),
);
const envelope: fc.Arbitrary<Envelope> = fc.record({
  kind: fc.integer({ min: 1, max: 6 }) as fc.Arbitrary<EnvelopeKind>,
  hops: fc.integer({ min: 0, max: 255 }),
  origin: fc.record({ site: name, name, incarnation: fc.uuid().map((u) => u.toLowerCase()) }),
  seq: fc.maxSafeNat(),
  dest,
  payload: fc.uint8Array({ maxLength: 300 }),
});

function decodesOrThrowsTyped(bytes: Uint8Array): void {
  try {
    decodeEnvelope(bytes);
  } catch (err) {
    if (!(err instanceof EnvelopeError)) throw err;
  }
}

describe("envelope properties", () => {
  test("every valid envelope survives encode/decode", () => {
    fc.assert(
      fc.property(envelope, (env) => {
        const back = decodeEnvelope(encodeEnvelope(env));
        expect({ ...back, payload: Buffer.from(back.payload) }).toEqual({
          ...env,
          payload: Buffer.from(env.payload),
        });
      }),
      { numRuns: 1500 },
    );
  });

  test("random bytes only ever decode or throw EnvelopeError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => decodesOrThrowsTyped(b)),
      { numRuns: 3000 },
    );
  });

  test("mutated valid envelopes (flips, cuts, inserts, deletes) only decode or throw EnvelopeError", () => {
    const mutation = fc.oneof(
      fc.record({ op: fc.constant("flip"), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant("cut"), at: fc.nat() }),
      fc.record({ op: fc.constant("insert"), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant("delete"), at: fc.nat() }),
      fc.record({ op: fc.constant("set"), at: fc.nat(), byte: fc.constantFrom(0, 0x7f, 0x80, 0xff) }),
    );
    fc.assert(
      fc.property(envelope, fc.array(mutation, { minLength: 1, maxLength: 4 }), (env, muts) => {
        let b = Buffer.from(encodeEnvelope(env));
        for (const m of muts) {
          const at = b.length === 0 ? 0 : m.at % b.length;
          if (m.op === "flip" && b.length > 0) b[at]! ^= 1 << (m as { bit: number }).bit;
          else if (m.op === "cut") b = b.subarray(0, at);
          else if (m.op === "insert")
            b = Buffer.concat([
              b.subarray(0, at),
              Buffer.from([(m as { byte: number }).byte]),
              b.subarray(at),
            ]);
          else if (m.op === "delete") b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
          else if (m.op === "set" && b.length > 0) b[at] = (m as { byte: number }).byte;
        }
        decodesOrThrowsTyped(b);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("control payloads", () => {
  const decoders = [decodeSiteView, decodeTopology, decodeProbeInfo];
  test("random bytes and random JSON only ever decode or throw EnvelopeError(bad-control)", () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.json().map((j) => Buffer.from(j)),
      fc.anything().map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
    );
    fc.assert(
      fc.property(input, (bytes) => {
        for (const decode of decoders) {
          try {
            decode(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(EnvelopeError);
            expect((err as EnvelopeError).code).toBe("bad-control");
          }
        }
      }),
      { numRuns: 1500 },
    );
  });

  test("a probe answer with map lines survives encode/decode; too many, too long or not text is refused", () => {
    const info = SAMPLE_PROBE;
    expect(decodeProbeInfo(encodeControl(info))).toEqual(info); // without maps: as before
    const withMaps = { ...info, maps: ["catalog: 3 entries", "users: 0 entries"] };
    expect(decodeProbeInfo(encodeControl(withMaps))).toEqual(withMaps);
    const refused = (maps: unknown) => () => decodeProbeInfo(Buffer.from(JSON.stringify({ ...info, maps })));
    expect(refused(Array.from({ length: MAX_PROBE_MAPS + 1 }, () => "m"))).toThrow(
      /probe.maps is not a list/,
    );
    expect(refused(["x".repeat(MAX_PROBE_MAP_LINE + 1)])).toThrow(/probe.maps\[0\]/);
    expect(refused([7])).toThrow(/probe.maps\[0\]/);
    expect(refused("catalog")).toThrow(/probe.maps/);
  });

  test("a site view survives encode/decode; wrong field types are refused", () => {
    const view = {
      site: "nyc",
      viewId: "nyc-1|3",
      members: [{ name: "nyc-1", host: "10.0.0.1", port: 7800 }],
      siteMasters: ["nyc-1"],
    };
    expect(decodeSiteView(encodeControl(view))).toEqual(view);
    expect(() =>
      decodeSiteView(encodeControl({ ...view, members: [{ name: "x", host: "h", port: 70000 }] })),
    ).toThrow("members[0].port is not a port");
    expect(() => decodeSiteView(Buffer.alloc(MAX_CONTROL_BYTES + 1))).toThrow("control payload of");
  });
});
