// Property tests: valid values round-trip; arbitrary and mutated bytes never throw anything but
// ProtocolError. Run counts are kept small for CI; bench/fuzz-protocol.mjs runs millions.
import fc from "fast-check";
import {
  decodeBody,
  decodeRouteHeader,
  encodeBody,
  encodeFrame,
  FrameSplitter,
  ProtocolError,
} from "../../runtime/protocol/index.js";
import { applyMutation, arbGossipData, arbMutation, referenceSplit } from "./arbitraries.js";
import { GRACEFUL_CLOSE_HEX, loadCaptures } from "./captures.js";

const RUNS = 2000;

/** Runs fn; anything thrown other than a ProtocolError fails the property. */
function onlyProtocolErrors<T>(fn: () => T): T | ProtocolError {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
}

const captureBodies = [...loadCaptures().values()]
  .flat()
  .filter((f) => f.hex !== GRACEFUL_CLOSE_HEX)
  .map((f) => f.bytes.subarray(4));

test("every valid GossipData round-trips through encodeBody/decodeBody", () => {
  fc.assert(
    fc.property(arbGossipData, (d) => {
      const body = encodeBody(d);
      const back = decodeBody(body);
      expect(back).toEqual(d);
      expect(encodeBody(back).equals(body)).toBe(true);
      const frame = encodeFrame(d);
      expect(frame.readInt32BE(0)).toBe(body.length);
      expect(frame.subarray(4).equals(body)).toBe(true);
      expect(decodeRouteHeader(body)).toEqual({ type: d.type, group: d.group, addr: d.addr });
    }),
    { numRuns: RUNS },
  );
});

test("frames of valid GossipData split out of any chunking of their stream", () => {
  fc.assert(
    fc.property(
      fc.array(arbGossipData, { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
      (items, sizes) => {
        const frames = items.map(encodeFrame);
        const stream = Buffer.concat(frames);
        const got: Buffer[] = [];
        const s = new FrameSplitter();
        let off = 0;
        for (let i = 0; off < stream.length; i++) {
          const n = sizes[i % sizes.length]!;
          s.push(stream.subarray(off, off + n), {
            frame: (f) => got.push(Buffer.from(f)),
            gracefulClose: () => {},
          });
          off += n;
        }
        expect(got.map((f) => f.toString("hex"))).toEqual(frames.map((f) => f.toString("hex")));
        expect(got.map((f) => decodeBody(f.subarray(4)))).toEqual(items);
        expect(s.buffered).toBe(0);
      },
    ),
    { numRuns: RUNS / 4 },
  );
});

test("random bytes: decodeBody and decodeRouteHeader throw only ProtocolError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 7 }), (bytes, type) => {
      // Half the inputs get a valid type byte so that the decoder goes deeper than byte 0.
      if (bytes.length > 0 && bytes[0]! & 1) bytes[0] = type;
      const d = onlyProtocolErrors(() => decodeBody(bytes));
      const h = onlyProtocolErrors(() => decodeRouteHeader(bytes));
      if (!(d instanceof ProtocolError)) {
        // Whatever is accepted re-encodes to something that decodes to the same value, and the
        // route header of an accepted body agrees with the full decode.
        expect(decodeBody(encodeBody(d))).toEqual(d);
        expect(h).toEqual({ type: d.type, group: d.group, addr: d.addr });
      }
    }),
    { numRuns: RUNS },
  );
});

test("mutated capture bodies: only ProtocolError, and accepted ones re-encode stably", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: captureBodies.length - 1 }),
      fc.array(arbMutation, { minLength: 1, maxLength: 3 }),
      (index, mutations) => {
        let body: Uint8Array = captureBodies[index]!;
        for (const m of mutations) body = applyMutation(body, m);
        const d = onlyProtocolErrors(() => decodeBody(body));
        const h = onlyProtocolErrors(() => decodeRouteHeader(body));
        if (!(d instanceof ProtocolError)) {
          expect(decodeBody(encodeBody(d))).toEqual(d);
          expect(h).toEqual({ type: d.type, group: d.group, addr: d.addr });
        }
      },
    ),
    { numRuns: RUNS },
  );
});

test("random streams: the splitter throws only ProtocolError and agrees with a reference splitter", () => {
  const lengths = fc.oneof(
    fc.integer({ min: 0, max: 40 }),
    fc.constantFrom(-5, -1, -6, 0x7fffffff, -0x80000000, 1025),
  );
  const streamArb = fc
    .array(fc.tuple(lengths, fc.uint8Array({ maxLength: 40 })), { maxLength: 8 })
    .map((parts) => {
      const bufs: Buffer[] = [];
      for (const [len, bytes] of parts) {
        const p = Buffer.alloc(4);
        p.writeInt32BE(len, 0);
        bufs.push(p, Buffer.from(bytes));
      }
      return Buffer.concat(bufs);
    });
  fc.assert(
    fc.property(
      streamArb,
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }),
      (stream, sizes) => {
        const expected = referenceSplit(stream, 1024);
        const got: string[] = [];
        const s = new FrameSplitter(1024);
        const sink = {
          frame: (f: Buffer) => got.push(f.toString("hex")),
          gracefulClose: () => got.push("close"),
        };
        let error: string | null = null;
        let off = 0;
        for (let i = 0; off < stream.length && error === null; i++) {
          const n = sizes[i % sizes.length]!;
          const r = onlyProtocolErrors(() => s.push(stream.subarray(off, off + n), sink));
          if (r instanceof ProtocolError) error = r.code;
          off += n;
        }
        expect({ frames: got, error, buffered: error ? 0 : s.buffered }).toEqual(expected);
      },
    ),
    { numRuns: RUNS },
  );
});
