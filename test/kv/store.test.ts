// One replica of a map (MapStore) with an injected clock: local writes, limits, compare-and-set,
// replicated entries, tombstones and their collection, change events, watch resume.
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import { ConfigError } from "../../contract/errors.js";
import { BackupBacklog } from "../../runtime/kv/backlog.js";
import { entryHash, leafOf } from "../../runtime/kv/digest.js";
import { type Entry, lastWriterWins } from "../../runtime/kv/entry.js";
import { KvError } from "../../runtime/kv/errors.js";
import { HybridClock } from "../../runtime/kv/hlc.js";
import { type ChangeOrigin, MapStore } from "../../runtime/kv/store.js";
import { compareVersions, type Version } from "../../runtime/kv/version.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined | null) => (b ? new TextDecoder().decode(b) : b);

function harness(
  opts: { site?: string; member?: string; limits?: ConstructorParameters<typeof MapStore>[0]["limits"] } = {},
) {
  const t = { now: 1_000_000 };
  const clock = new HybridClock({ now: () => t.now, maxDriftMs: 60_000 });
  const store = new MapStore({
    site: opts.site ?? "nyc",
    member: opts.member ?? "nyc-1",
    clock,
    now: () => t.now,
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  const changes: [string, string | null, ChangeOrigin][] = [];
  store.on("change", (e, origin) => changes.push([e.key, e.value ? text(e.value)! : null, origin]));
  return { t, clock, store, changes };
}

function error(fn: () => unknown): KvError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KvError) return err;
    throw err;
  }
  throw new Error("expected a KvError");
}

function remote(key: string, value: string | null, wall: number, site = "sfc", member = "sfc-1"): Entry {
  return {
    key,
    value: value === null ? null : bytes(value),
    version: { hlc: { wall, logical: 0 }, site, member },
  };
}

describe("MapStore: local writes", () => {
  test("put, get, getValue, delete and the counts", () => {
    const { store, t, changes } = harness();
    const a = store.put("a", bytes("1"));
    expect(a.version).toEqual({ hlc: { wall: t.now, logical: 0 }, site: "nyc", member: "nyc-1" });
    store.put("b", bytes("2"));
    const a2 = store.put("a", bytes("3"));
    expect(compareVersions(a2.version, a.version)).toBe(1);
    expect(text(store.getValue("a"))).toBe("3");
    expect(store.size).toBe(2);

    t.now += 5;
    const tomb = store.delete("a")!;
    expect(tomb.value).toBeNull();
    expect(tomb.deletedAt).toBe(t.now);
    expect(store.get("a")).toBe(tomb);
    expect(store.getValue("a")).toBeUndefined();
    expect(store.delete("a")).toBeNull(); // already deleted
    expect(store.delete("zz")).toBeNull(); // absent
    expect([store.size, store.tombstones]).toEqual([1, 1]);
    expect([...store.entries()].map((e) => e.key)).toEqual(["b"]);
    expect(changes).toEqual([
      ["a", "1", "local"],
      ["b", "2", "local"],
      ["a", "3", "local"],
      ["a", null, "local"],
    ]);
  });

  test("entries(prefix) lists live entries under a prefix", () => {
    const { store } = harness();
    for (const k of ["user/1", "user/2", "order/1", "user/3"]) store.put(k, bytes(k));
    store.delete("user/2");
    expect([...store.entries("user/")].map((e) => e.key)).toEqual(["user/1", "user/3"]);
    expect([...store.entries()].length).toBe(3);
  });

  test("limits: keys, values and entries are refused with errors that say what to fix", () => {
    const { store } = harness({ limits: { maxKeyBytes: 8, maxValueBytes: 4, maxEntries: 3 } });
    let e = error(() => store.put("é".repeat(5), bytes("x")));
    expect([e.code, e.message]).toEqual(["KEY_TOO_LARGE", "key of 10 bytes exceeds maxKeyBytes 8"]);
    e = error(() => store.put("k", bytes("12345")));
    expect([e.code, e.message]).toEqual(["VALUE_TOO_LARGE", "value of 5 bytes exceeds maxValueBytes 4"]);
    expect(error(() => store.put("\ud800", bytes("x"))).code).toBe("BAD_KEY");
    store.put("a", bytes("1"));
    store.put("b", bytes("1"));
    store.put("c", bytes("1"));
    store.delete("c"); // tombstones count
    e = error(() => store.put("d", bytes("1")));
    expect(e.code).toBe("TOO_MANY_ENTRIES");
    expect(e.message).toMatch(/maxEntries 3/);
    expect(error(() => store.apply(remote("d", "1", 1_000_000))).code).toBe("TOO_MANY_ENTRIES");
    store.put("a", bytes("2")); // an existing key still changes
    expect(store.size + store.tombstones).toBe(3);
  });

  test("compareAndSet: expected version, absent (null), and the current version in the error", () => {
    const { store } = harness();
    const a = store.compareAndSet("a", null, bytes("1"));
    let e = error(() => store.compareAndSet("a", null, bytes("2")));
    expect(e.code).toBe("VERSION_MISMATCH");
    expect(e.current).toEqual(a.version);
    const a2 = store.compareAndSet("a", a.version, bytes("2"));
    e = error(() => store.compareAndSet("a", a.version, bytes("3"))); // stale expectation
    expect(e.current).toEqual(a2.version);
    expect(e.message).toMatch(/is at version .* expected /);
    const tomb = store.compareAndSet("a", a2.version, null); // a CAS delete
    expect(tomb.value).toBeNull();
    e = error(() => store.compareAndSet("a", a2.version, bytes("4")));
    expect(e.current).toBeNull();
    expect(text(store.compareAndSet("a", null, bytes("5")).value)).toBe("5"); // deleted counts as absent
  });
});

describe("options", () => {
  test("bad options are ConfigErrors naming the option", () => {
    const clock = new HybridClock();
    expect(() => new MapStore({ site: "", member: "m", clock })).toThrow(
      /MapStore options site and member: site must be/,
    );
    expect(() => new MapStore({ site: "s", member: "m".repeat(256), clock })).toThrow(ConfigError);
    expect(() => new MapStore({ site: "s", member: "m", clock, limits: { maxEntries: 0 } })).toThrow(
      /limits.maxEntries must be an integer >= 1/,
    );
    expect(() => new HybridClock({ maxDriftMs: -1 })).toThrow(ConfigError);
    expect(() => new BackupBacklog({ maxBytes: 1.5, maxKeys: 1 })).toThrow(/BackupBacklog option maxBytes/);
  });
});

describe("MapStore: replicated entries", () => {
  test("apply merges by version, returns the stored entry or null for older and duplicate ones", () => {
    const { store, t, changes } = harness();
    const local = store.put("k", bytes("local"));
    expect(store.apply(remote("k", "old", t.now - 10))).toBeNull();
    const newer = remote("k", "new", t.now + 10);
    expect(store.apply(newer)?.value).toEqual(bytes("new"));
    expect(store.apply(newer)).toBeNull(); // duplicate
    expect(text(store.getValue("k"))).toBe("new");
    expect(changes.map((c) => c[2])).toEqual(["local", "remote"]);
    // The clock observed the remote stamp: the next local write is above it.
    expect(compareVersions(store.put("k", bytes("x")).version, newer.version)).toBe(1);
    expect(compareVersions(local.version, newer.version)).toBe(-1);
  });

  test("a remote tombstone gets deletedAt = local time of application; absent keys keep it", () => {
    const { store, t } = harness();
    t.now += 7;
    const stored = store.apply(remote("gone", null, t.now - 100))!;
    expect(stored.deletedAt).toBe(t.now);
    expect(store.tombstones).toBe(1);
    expect(store.get("gone")?.value).toBeNull();
  });

  test("apply validates like network input: limits, version, clock drift; the store is unchanged", () => {
    const { store, t } = harness({ limits: { maxKeyBytes: 4, maxValueBytes: 4 } });
    expect(error(() => store.apply(remote("toolong", "1", t.now))).code).toBe("KEY_TOO_LARGE");
    expect(error(() => store.apply(remote("k", "12345", t.now))).code).toBe("VALUE_TOO_LARGE");
    expect(error(() => store.apply(remote("k", "1", t.now, ""))).code).toBe("BAD_FRAME");
    expect(error(() => store.apply(remote("k", "1", -1))).code).toBe("BAD_FRAME");
    const bad = {
      key: "k",
      value: bytes("1"),
      version: { hlc: { wall: 1, logical: 1e6 }, site: "s", member: "m" },
    };
    expect(error(() => store.apply(bad)).code).toBe("BAD_FRAME");
    const e = error(() => store.apply(remote("k", "1", t.now + 60_001)));
    expect(e.code).toBe("CLOCK_DRIFT");
    expect(store.size + store.tombstones).toBe(0);
    expect(store.put("k", bytes("1")).version.hlc.wall).toBe(t.now); // the clock was not dragged ahead
  });

  test("a custom merge may keep the stored entry, for local writes too", () => {
    const t = { now: 1000 };
    const longer = (k: string, a: Entry, b: Entry) =>
      (a.value?.length ?? -1) === (b.value?.length ?? -1)
        ? lastWriterWins(k, a, b)
        : (b.value?.length ?? -1) > (a.value?.length ?? -1)
          ? b
          : a;
    const store = new MapStore({
      site: "nyc",
      member: "m",
      clock: new HybridClock({ now: () => t.now }),
      merge: longer,
    });
    const first = store.put("k", bytes("long value"));
    expect(store.put("k", bytes("short"))).toBe(first); // the merge kept the longer one
    expect(store.apply(remote("k", "x", 2000))).toBeNull();
    expect(store.apply(remote("k", "a longer value", 900))?.value).toEqual(bytes("a longer value"));
  });
});

describe("MapStore: tombstones and resume", () => {
  test("collectTombstones removes stable tombstones older than the grace period", () => {
    const { store, t } = harness();
    for (const k of ["a", "b", "c", "d"]) store.put(k, bytes(k));
    store.delete("a");
    store.delete("b");
    t.now += 1000;
    store.delete("c");
    const rootBefore = store.digest().root();
    const stable = (e: Entry) => e.key !== "b"; // b not yet acknowledged by every backup site
    expect(store.collectTombstones(stable, 500)).toBe(1); // a (b unstable, c too young)
    expect(store.get("a")).toBeUndefined();
    expect(store.get("b")?.value).toBeNull();
    expect(store.tombstones).toBe(2);
    expect(store.digest().root()).not.toBe(rootBefore);
    t.now += 500;
    expect(store.collectTombstones(() => true, 500)).toBe(2);
    expect([store.size, store.tombstones]).toEqual([1, 0]);
    // The digest is that of a store that only ever held d.
    const fresh = harness().store;
    fresh.apply(store.get("d")!);
    expect(fresh.digest().root()).toBe(store.digest().root());
  });

  test("changedSince lists entries after a version in version order, tombstones included", () => {
    const { store, t } = harness();
    const seen: Version[] = [];
    for (let i = 0; i < 5; i++) {
      t.now += 1;
      seen.push(store.put(`k${i}`, bytes(String(i))).version);
    }
    store.apply(remote("r", "x", t.now - 3)); // stamped like k1, but "sfc" > "nyc": just after it
    t.now += 1;
    store.delete("k0");
    const after = store.changedSince(seen[1]!);
    expect(after.map((e) => e.key)).toEqual(["r", "k2", "k3", "k4", "k0"]);
    expect(store.changedSince(null).length).toBe(6);
    expect(store.changedSince(store.get("k0")!.version)).toEqual([]);
  });
});

/** Four keys whose entries share one digest leaf (the store keeps a list per leaf). */
function keysOfOneLeaf(): string[] {
  const byLeaf = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const key = `k${i}`;
    const leaf = leafOf(key);
    const keys = byLeaf.get(leaf) ?? [];
    keys.push(key);
    byLeaf.set(leaf, keys);
    if (keys.length === 4) return keys;
  }
}

describe("MapStore: digest kept incrementally", () => {
  test("entries of one leaf: collected one by one in every order, the leaf lists exactly the rest", () => {
    const keys = keysOfOneLeaf();
    const leaf = leafOf(keys[0]!);
    const orders = (xs: string[]): string[][] =>
      xs.length <= 1 ? [xs] : xs.flatMap((x) => orders(xs.filter((y) => y !== x)).map((o) => [x, ...o]));
    for (const order of orders(keys)) {
      const { store } = harness();
      for (const k of keys) store.put(k, bytes(k));
      const left = new Set(keys);
      for (const k of order) {
        store.delete(k);
        expect(store.collectTombstones((e) => e.key === k, 0)).toBe(1);
        left.delete(k);
        expect(new Set(store.leaf(leaf).map((e) => e.key))).toEqual(left);
        expect(store.leafHashed(leaf).length).toBe(left.size);
      }
      for (const k of keys) store.put(k, bytes("again")); // the emptied leaf takes entries again
      expect(new Set(store.leaf(leaf).map((e) => e.key))).toEqual(new Set(keys));
    }
  });

  test.each([
    ["keys of different leaves", ["a", "b", "c", "d"]],
    ["keys of one leaf", keysOfOneLeaf()],
  ])("property: the digest equals that of a store built from the final entries alone (%s)", (_, keys) => {
    const key = fc.constantFrom(...keys);
    const op = fc.oneof(
      fc.record({ op: fc.constant("put" as const), key, v: fc.string() }),
      fc.record({ op: fc.constant("del" as const), key }),
      fc.record({ op: fc.constant("gc" as const) }),
      fc.record({
        op: fc.constant("remote" as const),
        key,
        dt: fc.integer({ min: -5, max: 5 }),
        tomb: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { store, t } = harness();
        for (const o of ops) {
          t.now += 1;
          if (o.op === "put") store.put(o.key, bytes(o.v));
          else if (o.op === "del") store.delete(o.key);
          else if (o.op === "gc") store.collectTombstones(() => true, 0);
          else store.apply(remote(o.key, o.tomb ? null : "r", t.now + o.dt));
        }
        const rebuilt = harness().store;
        for (const e of store.allEntries()) rebuilt.apply(e);
        expect(rebuilt.digest().root()).toBe(store.digest().root());
        expect(rebuilt.digest().hashes()).toEqual(store.digest().hashes());
        let inBuckets = 0;
        for (let b = 0; b < 1024; b++) inBuckets += store.bucket(b).length;
        expect(inBuckets).toBe(store.size + store.tombstones);
        // Each leaf lists exactly the stored entries of its keys, with their hashes.
        for (const leaf of new Set(keys.map(leafOf))) {
          const stored = [...store.allEntries()].filter((e) => leafOf(e.key) === leaf);
          const listed = store.leafHashed(leaf);
          expect(new Set(store.leaf(leaf))).toEqual(new Set(stored));
          expect(new Set(listed.map((l) => l.entry))).toEqual(new Set(stored));
          for (const l of listed) expect(l.hash).toBe(entryHash(l.entry));
        }
      }),
    );
  });
});
