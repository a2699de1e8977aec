// One page of a key listing: the limit smallest keys after a cursor (a bounded heap, one pass).
import { expect, test } from "@jest/globals";
import fc from "fast-check";
import { keyPage } from "../../runtime/kv/page.js";

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

test("property: a page is the limit smallest keys after the cursor, and more says whether any follow", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.string({ unit: "grapheme", maxLength: 6 }), { maxLength: 60 }),
      fc.option(fc.string({ maxLength: 6 }), { nil: null }),
      fc.integer({ min: 1, max: 20 }),
      (keys, after, limit) => {
        const expected = keys.filter((k) => after === null || k > after).sort(byString);
        const page = keyPage(keys, after, limit);
        expect(page.keys).toEqual(expected.slice(0, limit));
        expect(page.more).toBe(expected.length > limit);
      },
    ),
    { numRuns: 500 },
  );
});

test("property: following the cursor lists every key once, in order", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.string({ maxLength: 5 }), { maxLength: 80 }),
      fc.integer({ min: 1, max: 7 }),
      (keys, limit) => {
        const seen: string[] = [];
        let after: string | null = null;
        for (let pages = 0; pages <= keys.length + 1; pages++) {
          const page = keyPage(keys, after, limit);
          seen.push(...page.keys);
          if (!page.more) break;
          after = page.keys[page.keys.length - 1]!;
        }
        expect(seen).toEqual([...keys].sort(byString));
      },
    ),
  );
});

test("200,000 keys: pages of 1,000 follow each other to the last key", () => {
  const keys = Array.from({ length: 200_000 }, (_, i) => `user/${(i * 7919) % 200_000}`);
  const sorted = [...keys].sort(byString);
  let after: string | null = null;
  for (let p = 0; p < 3; p++) {
    const page = keyPage(keys, after, 1000);
    expect(page.keys).toEqual(sorted.slice(p * 1000, (p + 1) * 1000));
    expect(page.more).toBe(true);
    after = page.keys[999]!;
  }
  const last = keyPage(keys, sorted[sorted.length - 2]!, 1000);
  expect(last).toEqual({ keys: [sorted[sorted.length - 1]], more: false });
});
