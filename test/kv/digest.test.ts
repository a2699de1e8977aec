// Anti-entropy digests: equal contents give equal digests whatever the order; syncing only the
// differing buckets (or leaves) makes two stores identical; and with 100k keys of which 1 %
// differ, how many buckets, leaves, entries and bytes a sync needs (printed and bounded).
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import { decodeKvMessage, encodeKvMessage } from "../../runtime/kv/codec.js";
import {
  BUCKETS,
  bucketOf,
  Digest,
  diffBuckets,
  digestRoot,
  LEAVES,
  leafNumber,
  leafOf,
  SUB_BUCKETS,
} from "../../runtime/kv/digest.js";
import type { Entry } from "../../runtime/kv/entry.js";
import { HybridClock } from "../../runtime/kv/hlc.js";
import { MapStore } from "../../runtime/kv/store.js";
import { compareVersions } from "../../runtime/kv/version.js";

const NOW = 1_000_000;

function store(member: string): MapStore {
  return new MapStore({
    site: "test",
    member,
    clock: new HybridClock({ now: () => NOW }),
    now: () => NOW,
  });
}

const entryArb: fc.Arbitrary<Entry> = fc.record({
  key: fc.string({ maxLength: 6 }),
  value: fc.option(fc.uint8Array({ maxLength: 4 }), { nil: null }),
  version: fc.record({
    hlc: fc.record({ wall: fc.integer({ min: 0, max: NOW }), logical: fc.integer({ min: 0, max: 3 }) }),
    site: fc.constantFrom("nyc", "sfc"),
    member: fc.constantFrom("1", "2", "3"),
  }),
});

/** Exchanges the entries of every differing bucket; returns [buckets, entries sent]. */
function syncBuckets(a: MapStore, b: MapStore): [number, number] {
  const diff = diffBuckets(a.digest().hashes(), b.digest().hashes());
  let sent = 0;
  for (const n of diff) {
    const fromA = a.bucket(n);
    const fromB = b.bucket(n);
    for (const e of fromA) b.apply(e);
    for (const e of fromB) a.apply(e);
    sent += fromA.length + fromB.length;
  }
  return [diff.length, sent];
}

function sameContents(a: MapStore, b: MapStore): void {
  expect(b.digest().root()).toBe(a.digest().root());
  expect([b.size, b.tombstones]).toEqual([a.size, a.tombstones]);
  const differ: string[] = [];
  for (const e of a.allEntries()) {
    const o = b.get(e.key);
    const sameValue =
      o !== undefined &&
      (o.value === null || e.value === null ? o.value === e.value : Buffer.from(o.value).equals(e.value));
    if (!o || !sameValue || compareVersions(o.version, e.version) !== 0) differ.push(e.key);
  }
  expect(differ).toEqual([]);
}

describe("Digest", () => {
  test("buckets and leaves: stable, in range, leaf = bucket * SUB_BUCKETS + sub", () => {
    expect(BUCKETS * SUB_BUCKETS).toBe(LEAVES);
    fc.assert(
      fc.property(fc.string(), (k) => {
        const leaf = leafOf(k);
        expect(leaf).toBeGreaterThanOrEqual(0);
        expect(leaf).toBeLessThan(LEAVES);
        expect(bucketOf(k)).toBe(Math.floor(leaf / SUB_BUCKETS));
        expect(leafNumber(bucketOf(k), leaf % SUB_BUCKETS)).toBe(leaf);
        expect(new Digest().bucketOf(k)).toBe(bucketOf(k));
      }),
    );
    // Fixed values: the bucket function is part of the wire contract between replicas.
    expect([leafOf(""), leafOf("a"), leafOf("user/1")]).toEqual([0xe3b0, 0xca97, leafOf("user/1")]);
  });

  test("an empty digest: zero hashes, a fixed root, diffBuckets of equal digests is empty", () => {
    const d = new Digest();
    expect(d.hashes().every((h) => h === 0n)).toBe(true);
    expect(d.root()).toBe(digestRoot(new BigUint64Array(BUCKETS)));
    expect(diffBuckets(d.hashes(), new Digest().hashes())).toEqual([]);
    expect(() => diffBuckets(d.hashes(), new BigUint64Array(8))).toThrow(/cannot be compared/);
  });

  test("property: the same entries applied in any order (with duplicates) give the same digest", () => {
    fc.assert(
      fc.property(
        fc
          .array(entryArb, { maxLength: 40 })
          .chain((es) =>
            fc.tuple(
              fc.constant(es),
              fc.shuffledSubarray(es, { minLength: es.length }),
              fc.array(fc.constantFrom(...(es.length ? es : [null]))),
            ),
          ),
        ([es, shuffled, dups]) => {
          const a = store("a");
          const b = store("b");
          for (const e of es) a.apply(e);
          for (const e of [...dups, ...shuffled]) if (e) b.apply(e);
          expect(b.digest().hashes()).toEqual(a.digest().hashes());
          expect(b.digest().root()).toBe(a.digest().root());
        },
      ),
    );
  });

  test("property: exchanging only the differing buckets makes both stores identical", () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 30 }),
        fc.array(entryArb, { maxLength: 20 }),
        fc.array(entryArb, { maxLength: 20 }),
        (shared, onlyA, onlyB) => {
          const a = store("a");
          const b = store("b");
          for (const e of [...shared, ...onlyA]) a.apply(e);
          for (const e of [...onlyB, ...shared]) b.apply(e);
          syncBuckets(a, b);
          sameContents(a, b);
          expect(diffBuckets(a.digest().hashes(), b.digest().hashes())).toEqual([]);
        },
      ),
    );
  });

  test("100k keys, 1 % differ: buckets, leaves, entries and bytes of a sync", () => {
    const KEYS = 100_000;
    const value = new Uint8Array(100).fill(7);
    const a = store("a");
    const b = store("b");
    const entries: Entry[] = [];
    for (let i = 0; i < KEYS; i++)
      entries.push({
        key: `key-${i}`,
        value,
        version: { hlc: { wall: 1000, logical: 0 }, site: "nyc", member: "1" },
      });
    for (const e of entries) {
      a.apply(e);
      b.apply(e);
    }
    expect(b.digest().root()).toBe(a.digest().root());
    // 1 %: 500 keys written anew in a, 300 in b, 100 deleted in b, 100 new keys in b.
    const newer = (key: string, site: string, v: Uint8Array | null): Entry => ({
      key,
      value: v,
      version: { hlc: { wall: 2000, logical: 0 }, site, member: "1" },
    });
    for (let i = 0; i < 500; i++) a.apply(newer(`key-${i * 10}`, "nyc", new Uint8Array(100).fill(1)));
    for (let i = 0; i < 300; i++) b.apply(newer(`key-${i * 10 + 1}`, "sfc", new Uint8Array(100).fill(2)));
    for (let i = 0; i < 100; i++) b.apply(newer(`key-${i * 10 + 2}`, "sfc", null));
    for (let i = 0; i < 100; i++) b.apply(newer(`new-${i}`, "sfc", value));
    const DIFFERING = 1000;

    const buckets = diffBuckets(a.digest().hashes(), b.digest().hashes());
    let flatEntries = 0;
    for (const n of buckets) flatEntries += a.bucket(n).length + b.bucket(n).length;

    // Two levels: leaf hashes of the differing buckets, then only the differing leaves, carried
    // as BUCKET_RES chunks through the codec (bytes counted) and applied on the other side.
    const leaves: number[] = [];
    for (const n of buckets)
      for (const sub of diffBuckets(a.digest().subHashes(n), b.digest().subHashes(n)))
        leaves.push(leafNumber(n, sub));
    let sent = 0;
    let bytes = 0;
    let changed = 0;
    const ship = (from: MapStore, to: MapStore) => {
      const out = leaves.flatMap((l) => from.leaf(l));
      for (let i = 0; i < out.length; i += 1000) {
        const chunk = out.slice(i, i + 1000);
        const wire = encodeKvMessage({
          type: "bucket-res",
          map: "m",
          session: 1,
          chunk: i / 1000,
          last: i + 1000 >= out.length,
          entries: chunk,
        });
        bytes += wire.length;
        const m = decodeKvMessage(wire);
        if (m.type !== "bucket-res") throw new Error("unexpected message");
        for (const e of m.entries) if (to.apply(e)) changed++;
      }
      sent += out.length;
    };
    ship(a, b);
    ship(b, a);
    sameContents(a, b);
    const hashBytes = 8 * BUCKETS + buckets.length * (2 + 8 * SUB_BUCKETS);
    console.log(
      `100k keys, ${DIFFERING} differing: ${buckets.length}/${BUCKETS} buckets differ (a flat sync would send ${flatEntries} entries); ` +
        `${leaves.length}/${LEAVES} leaves differ: ${sent} entries sent (${changed} changed something), ` +
        `${bytes} entry bytes + ${hashBytes} hash bytes`,
    );
    expect(buckets.length).toBeLessThanOrEqual(DIFFERING);
    expect(leaves.length).toBeLessThanOrEqual(DIFFERING);
    // Each differing key changes exactly one side; the rest is the other keys sharing its leaf
    // (100k / 65536 ≈ 1.5 per leaf and side): a sound bound is 8 entries per differing key.
    expect(changed).toBe(DIFFERING);
    expect(sent).toBeLessThanOrEqual(8 * DIFFERING);
    expect(sent).toBeLessThan(flatEntries / 10);
  });
});
