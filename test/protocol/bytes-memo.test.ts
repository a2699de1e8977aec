// BytesMemo: what short byte strings decode to, remembered in a few slots; a hit is checked byte
// by byte (a slot shared by several keys never returns another key's value), a decode that throws
// leaves nothing behind, and nothing grows with the input.
import { expect, test } from "@jest/globals";
import fc from "fast-check";
import { BytesMemo } from "../../runtime/protocol/bytes-memo.js";

const text = (b: Uint8Array, s: number, e: number) => Buffer.from(b.subarray(s, e)).toString("latin1");

test("property: the memo returns what decoding returns, whatever keys share its slots", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 12 }), { minLength: 1, maxLength: 400 }), (keys) => {
      const memo = new BytesMemo<string>(8);
      let decodes = 0;
      const decode = (b: Uint8Array, s: number, e: number) => {
        decodes++;
        return text(b, s, e);
      };
      for (let round = 0; round < 2; round++)
        for (const k of keys) {
          // The key in the middle of a larger buffer, as frames hold them.
          const buf = Buffer.concat([Buffer.from([1, 2, 3]), k, Buffer.from([4])]);
          expect(memo.get(buf, 3, 3 + k.length, decode)).toBe(text(k, 0, k.length));
        }
      expect(decodes).toBeLessThanOrEqual(keys.length * 2);
    }),
    { numRuns: 200 },
  );
});

test("repeated keys are decoded once; a throwing decode is not remembered; long keys are never kept", () => {
  const memo = new BytesMemo<string>(64, 4);
  let decodes = 0;
  const decode = (b: Uint8Array, s: number, e: number) => {
    decodes++;
    return text(b, s, e);
  };
  const nyc = Buffer.from("nyc");
  for (let i = 0; i < 100; i++) expect(memo.get(nyc, 0, 3, decode)).toBe("nyc");
  expect(decodes).toBe(1);
  const long = Buffer.from("longer-than-four");
  memo.get(long, 0, long.length, decode);
  memo.get(long, 0, long.length, decode);
  expect(decodes).toBe(3);
  const bad = Buffer.from("bad");
  const failing = () => {
    throw new Error("not text");
  };
  expect(() => memo.get(bad, 0, 3, failing)).toThrow("not text");
  expect(memo.get(bad, 0, 3, decode)).toBe("bad");
  expect(() => new BytesMemo(48)).toThrow(/power of two/);
});
