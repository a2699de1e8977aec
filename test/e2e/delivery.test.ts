// The checker of the streaming scenarios must itself catch every kind of violation (pure, no root).
import { checkStream, contractViolations, parseRecord } from "./delivery.js";

const arrivals = (ns: number[], step = 2) => ns.map((n, i) => ({ at: 1000 + i * step, n }));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test("a complete, in-order stream passes", () => {
  const c = checkStream(arrivals(range(1, 100)), 100);
  expect(c).toMatchObject({ received: 100, missing: 0, duplicates: 0, reordered: 0, maxGapMs: 2 });
  expect(contractViolations(new Map([["m", new Map([["s:x", c]])]]), 100)).toEqual([]);
});

test("missing, duplicated and reordered messages are each counted", () => {
  const ns = [...range(1, 10), ...range(15, 20), 20, 22, 21, ...range(23, 30)];
  const c = checkStream(arrivals(ns), 30);
  expect(c.missing).toBe(4);
  expect(c.missingRanges).toBe("11-14");
  expect(c.duplicates).toBe(1);
  expect(c.reordered).toBe(1);
  const v = contractViolations(new Map([["nyc-2", new Map([["sfc-3:sfc", c]])]]), 30);
  expect(v).toEqual(["nyc-2 <- sfc-3:sfc: 27/30 received, 4 missing (11-14), 1 duplicates, 1 out of order"]);
});

test("a tail that never came is missing, and the largest receive gap is found", () => {
  const a = [...arrivals(range(1, 5)), { at: 2000, n: 6 }];
  const c = checkStream(a, 8);
  expect(c.missingRanges).toBe("7-8");
  expect(c.maxGapMs).toBe(2000 - 1008);
  expect(c.maxGapBefore).toBe(6);
});

test("record files parse by sender; a malformed line is an error", () => {
  const r = parseRecord("5 nyc-5:nyc 1\n6 sfc-3:sfc 1\n7 nyc-5:nyc 2\n");
  expect(r.get("nyc-5:nyc")).toEqual([
    { at: 5, n: 1 },
    { at: 7, n: 2 },
  ]);
  expect(r.get("sfc-3:sfc")).toEqual([{ at: 6, n: 1 }]);
  expect(() => parseRecord("5 nyc-5 1\n")).toThrow(/line 1 is malformed/);
});
