import fc from "fast-check";
import {
  ClusterCodecError,
  type ClusterFrame,
  decodeFrame,
  encodeFrame,
  MAX_VIEW_MEMBERS,
  MAX_VIEW_SEQ,
  meshSplitter,
} from "../../runtime/cluster/codec.js";
import { type Member, makeView } from "../../runtime/cluster/member.js";

const ident = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => Buffer.byteLength(s) <= 255);
const member: fc.Arbitrary<Member> = fc.record({
  name: ident,
  site: ident,
  uuid: fc.uuid().map((u) => u.toLowerCase()),
  host: ident,
  port: fc.integer({ min: 0, max: 65535 }),
});
const view = fc
  .uniqueArray(member, { minLength: 1, maxLength: 6, selector: (m) => `${m.name}/${m.uuid}` })
  .chain((ms) => fc.integer({ min: 1, max: MAX_VIEW_SEQ }).map((seq) => makeView(seq, ms)));
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const reason = fc.string({ maxLength: 50 });

const frame: fc.Arbitrary<ClusterFrame> = fc.oneof(
  fc.record({
    type: fc.constant("hello" as const),
    version: fc.integer({ min: 0, max: 255 }),
    cluster: ident,
    member,
  }),
  fc.record({ type: fc.constant("hello-ack" as const), member }),
  fc.record({ type: fc.constant("reject" as const), reason }),
  fc.constant({ type: "heartbeat" as const }),
  fc.constant({ type: "info-req" as const }),
  fc.record({ type: fc.constant("info" as const), view: fc.option(view, { nil: null }) }),
  fc.constant({ type: "join-req" as const }),
  fc.record({ type: fc.constant("join-reject" as const), reason }),
  fc.record({ type: fc.constant("view" as const), view }),
  fc.constant({ type: "leave" as const }),
  fc.record({ type: fc.constant("merge-req" as const), view }),
  fc.record({ type: fc.constant("data" as const), payload: fc.uint8Array({ maxLength: 200 }) }),
  fc.record({
    type: fc.constant("auth-hello" as const),
    version: fc.integer({ min: 0, max: 255 }),
    cluster: ident,
    member,
    nonce: bytes32,
  }),
  fc.record({ type: fc.constant("auth-challenge" as const), member, nonce: bytes32 }),
  fc.record({ type: fc.constant("auth-proof" as const), proof: bytes32 }),
  fc.record({ type: fc.constant("auth-ack" as const), proof: bytes32 }),
);

/** Decoded frames compare structurally; DATA payloads become plain arrays for toEqual. */
function plain(f: ClusterFrame): unknown {
  return f.type === "data" ? { type: "data", payload: [...f.payload] } : f;
}

function decodeOrTypedError(body: Uint8Array): void {
  try {
    decodeFrame(body);
  } catch (err) {
    if (!(err instanceof ClusterCodecError)) throw err;
  }
}

describe("cluster codec", () => {
  const a: Member = {
    name: "nyc-1",
    site: "nyc",
    uuid: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    host: "10.0.0.7",
    port: 7800,
  };

  test("fixture: HELLO bytes are what the format says", () => {
    const buf = encodeFrame({ type: "hello", version: 1, cluster: "chat", member: a });
    const expected = Buffer.concat([
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([1, 1, 4]),
      Buffer.from("chat"),
      Buffer.from([5]),
      Buffer.from("nyc-1"),
      Buffer.from([3]),
      Buffer.from("nyc"),
      Buffer.from("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "hex"),
      Buffer.from([8]),
      Buffer.from("10.0.0.7"),
      Buffer.from([0x1e, 0x78]),
    ]);
    expected.writeInt32BE(expected.length - 4, 0);
    expect(buf.toString("hex")).toBe(expected.toString("hex"));
    expect(decodeFrame(buf.subarray(4))).toEqual({ type: "hello", version: 1, cluster: "chat", member: a });
  });

  test("round trip of every valid frame, also when fed split at every byte", () => {
    fc.assert(
      fc.property(
        fc.array(frame, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 7 }),
        (frames, step) => {
          const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
          const splitter = meshSplitter(1 << 16);
          const bodies: Buffer[] = [];
          const sink = { frame: (f: Buffer) => bodies.push(f.subarray(4)) };
          for (let i = 0; i < stream.length; i += step) splitter.push(stream.subarray(i, i + step), sink);
          expect(splitter.buffered).toBe(0);
          expect(bodies.map((b) => plain(decodeFrame(b)))).toEqual(frames.map(plain));
        },
      ),
      { numRuns: 300 },
    );
  });

  test("random bytes never throw anything but ClusterCodecError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => decodeOrTypedError(bytes)),
      { numRuns: 3000 },
    );
  });

  test("mutated valid frames never throw anything but ClusterCodecError", () => {
    fc.assert(
      fc.property(
        frame,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (f, flips, cut) => {
          const body = Buffer.from(encodeFrame(f).subarray(4));
          for (const [pos, v] of flips) body[pos % body.length] = v;
          decodeOrTypedError(body);
          decodeOrTypedError(body.subarray(0, cut % (body.length + 1)));
        },
      ),
      { numRuns: 3000 },
    );
  });

  test("typed errors for the classic bad inputs", () => {
    const code = (body: Uint8Array) => {
      try {
        decodeFrame(body);
      } catch (err) {
        return (err as ClusterCodecError).code;
      }
      return "ok";
    };
    expect(code(new Uint8Array([]))).toBe("TRUNCATED");
    expect(code(new Uint8Array([99]))).toBe("BAD_TYPE");
    expect(code(new Uint8Array([4, 0]))).toBe("TRAILING");
    // VIEW claiming 65535 members in a few bytes: refused before allocating anything.
    expect(code(new Uint8Array([9, 0, 0, 0, 1, 0xff, 0xff, 1, 2, 3]))).toBe("BAD_FIELD");
    // Invalid UTF-8 in a name.
    const hello = Buffer.from(
      encodeFrame({ type: "hello", version: 1, cluster: "c", member: a }).subarray(4),
    );
    hello[3] = 0xff;
    expect(code(hello)).toBe("BAD_FIELD");
    // Same member twice in a view.
    const dup = encodeFrame({ type: "view", view: makeView(1, [a]) }).subarray(4);
    const twice = Buffer.from(dup);
    twice.writeUInt16BE(2, 5);
    expect(code(Buffer.concat([twice, dup.subarray(7)]))).toBe("BAD_FIELD");
  });

  // The attack: a VIEW with seq 2^32-1 ended in an uncaught RangeError (seq + 1 cannot be
  // encoded). Seq outside 1..MAX_VIEW_SEQ and oversized counts are refused by the decoder.
  test("view seq outside 1..MAX_VIEW_SEQ and counts over MAX_VIEW_MEMBERS are BAD_FIELD", () => {
    const body = Buffer.from(encodeFrame({ type: "view", view: makeView(5, [a]) }).subarray(4));
    const withSeq = (seq: number) => {
      const b = Buffer.from(body);
      b.writeUInt32BE(seq, 1);
      return b;
    };
    expect(decodeFrame(withSeq(MAX_VIEW_SEQ))).toMatchObject({ view: { id: { seq: MAX_VIEW_SEQ } } });
    for (const seq of [0, MAX_VIEW_SEQ + 1, 0xfffffffe, 0xffffffff]) {
      expect(() => decodeFrame(withSeq(seq))).toThrow(/view seq/);
    }
    const many = Buffer.from(body);
    many.writeUInt16BE(MAX_VIEW_MEMBERS + 1, 5);
    expect(() => decodeFrame(Buffer.concat([many, Buffer.alloc(30 * 1100)]))).toThrow(/exceeds/);
    // The encoder refuses what the decoder would (a RangeError, for code that builds bad views).
    expect(() => encodeFrame({ type: "view", view: makeView(0, [a]) })).toThrow(RangeError);
    expect(() => encodeFrame({ type: "view", view: makeView(Number.NaN, [a]) })).toThrow(RangeError);
  });

  test("splitter refuses lengths outside 1..maxFrame without buffering them", () => {
    const sink = { frame: () => {} };
    const s = meshSplitter(1024);
    expect(() => s.push(Buffer.from([0, 0, 4, 1]), sink)).toThrow(ClusterCodecError);
    expect(s.buffered).toBe(0);
    expect(() => meshSplitter(1024).push(Buffer.from([0, 0, 0, 0]), sink)).toThrow(/outside 1\.\.1024/);
    // -5 is GRACEFUL_CLOSE on a router stream, a bad length on the mesh.
    expect(() => meshSplitter(1024).push(Buffer.from([0xff, 0xff, 0xff, 0xfb]), sink)).toThrow(/outside 1/);
    expect(() => meshSplitter(1024).push(Buffer.from([0xff, 0xff, 0xff, 0xff]), sink)).toThrow(
      ClusterCodecError,
    );
  });
});
