// The merge laws (property-tested with fast-check) for the default last-writer-wins and for a
// custom merge, and replicas that converge whatever the delivery order and duplication.
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import { compareBytes, type Entry, lastWriterWins, type MergeFn } from "../../runtime/kv/entry.js";
import { HybridClock } from "../../runtime/kv/hlc.js";
import { MapStore } from "../../runtime/kv/store.js";
import { compareVersions, type Version, versionKey } from "../../runtime/kv/version.js";

/** A custom merge: the longer value wins (a tombstone is shortest), then the higher version. */
const largestValue: MergeFn = (key, local, remote) => {
  const a = local.value?.length ?? -1;
  const b = remote.value?.length ?? -1;
  if (a !== b) return b > a ? remote : local;
  return lastWriterWins(key, local, remote);
};

/** Another: the greatest value bytes win (a tombstone is least), then the higher version. */
const greatestBytes: MergeFn = (key, local, remote) => {
  if (local.value === null || remote.value === null) {
    if (local.value !== remote.value) return local.value === null ? remote : local;
    return lastWriterWins(key, local, remote);
  }
  const c = compareBytes(local.value, remote.value);
  return c === 0 ? lastWriterWins(key, local, remote) : c < 0 ? remote : local;
};

const MERGES: [string, MergeFn][] = [
  ["lastWriterWins", lastWriterWins],
  ["largestValue", largestValue],
  ["greatestBytes", greatestBytes],
];

const versionArb: fc.Arbitrary<Version> = fc.record({
  // A small domain, so equal stamps (and equal sites) are frequent and the tie-breaks are exercised.
  hlc: fc.record({ wall: fc.integer({ min: 0, max: 3 }), logical: fc.integer({ min: 0, max: 2 }) }),
  site: fc.constantFrom("nyc", "sfc", "\uffff", "\u{1d11e}"),
  member: fc.constantFrom("m1", "m2"),
});
const valueArb = fc.option(fc.uint8Array({ maxLength: 3 }), { freq: 4, nil: null });

/** Writes of some keys; every write has its own version (a version names one write). */
function writesArb(keys: readonly string[], maxLength: number): fc.Arbitrary<Entry[]> {
  return fc
    .uniqueArray(fc.tuple(versionArb, fc.constantFrom(...keys), valueArb), {
      minLength: 1,
      maxLength,
      selector: ([v]) => versionKey(v),
    })
    .map((ws) => ws.map(([version, key, value]) => ({ key, value, version })));
}

/** The same write: merge results are compared by version (a merge returns one of its inputs). */
function same(a: Entry, b: Entry): boolean {
  return compareVersions(a.version, b.version) === 0;
}

/** Replicas applying the same writes in any order, with duplicates, end identical. */
function convergence(merge: MergeFn) {
  const keys = ["a", "b", "c"];
  const scenario = writesArb(keys, 30).chain((writes) =>
    fc.tuple(
      fc.constant(writes),
      // Three replicas, each with its own delivery: a permutation plus some duplicates.
      fc.array(
        fc.tuple(
          fc.shuffledSubarray(writes, { minLength: writes.length, maxLength: writes.length }),
          fc.array(fc.constantFrom(...writes), { maxLength: 10 }),
          fc.array(fc.nat(), { maxLength: 10 }),
        ),
        { minLength: 3, maxLength: 3 },
      ),
    ),
  );
  return fc.property(scenario, ([writes, deliveries]) => {
    const replicas = deliveries.map(([order, dups, at], i) => {
      const store = new MapStore({
        site: "test",
        member: `r${i}`,
        clock: new HybridClock({ now: () => 1000 }),
        merge,
        now: () => 1000,
      });
      const seq = [...order];
      dups.forEach((d, j) => {
        seq.splice((at[j] ?? 0) % (seq.length + 1), 0, d);
      });
      for (const e of seq) store.apply(e);
      return store;
    });
    // The expected winner of each key: the merge of all its writes, in any order.
    for (const key of keys) {
      const ofKey = writes.filter((w) => w.key === key);
      const expected = ofKey.length ? ofKey.reduce((x, y) => merge(key, x, y)) : undefined;
      for (const r of replicas) {
        const got = r.get(key);
        if (!expected) expect(got).toBeUndefined();
        else {
          expect(got && same(got, expected)).toBe(true);
          expect(got!.value).toEqual(expected.value);
        }
      }
    }
    const roots = replicas.map((r) => r.digest().root());
    expect(new Set(roots).size).toBe(1);
    expect(new Set(replicas.map((r) => r.size)).size).toBe(1);
    expect(new Set(replicas.map((r) => r.tombstones)).size).toBe(1);
  });
}

describe.each(MERGES)("merge laws: %s", (_name, merge) => {
  const three = writesArb(["k"], 3).filter((w) => w.length === 3);

  test("returns one of its inputs, deterministically (also for copies)", () => {
    fc.assert(
      fc.property(three, ([a, b]) => {
        const w = merge("k", a!, b!);
        expect(w === a || w === b).toBe(true);
        const copy = (e: Entry): Entry => ({ ...e, version: { ...e.version, hlc: { ...e.version.hlc } } });
        expect(same(merge("k", copy(a!), copy(b!)), w)).toBe(true);
      }),
    );
  });

  test("commutative, associative, idempotent", () => {
    fc.assert(
      fc.property(three, ([a, b, c]) => {
        expect(same(merge("k", a!, b!), merge("k", b!, a!))).toBe(true);
        expect(same(merge("k", merge("k", a!, b!), c!), merge("k", a!, merge("k", b!, c!)))).toBe(true);
        expect(merge("k", a!, a!)).toBe(a);
      }),
    );
  });

  test("replicas applying the same writes in any order, with duplicates, end identical", () => {
    fc.assert(convergence(merge), { numRuns: 200 });
  });
});

test("the convergence check catches a merge that is not order-independent (first arrival wins)", () => {
  const firstArrival: MergeFn = (_key, local) => local;
  expect(() => fc.assert(convergence(firstArrival), { numRuns: 200 })).toThrow(/Property failed/);
});
