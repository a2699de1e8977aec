// Anti-entropy sessions between two stores, through the real codec, without a network: what is
// transferred when 1 % of 100k keys differ, a corrupt chunk rejected and asked for again, a
// replica that never answers.
import { describe, expect, test } from "@jest/globals";
import { decodeKvMessage, encodeKvMessage, type KvMessage } from "../../runtime/kv/codec.js";
import { leafOf } from "../../runtime/kv/digest.js";
import { KvError } from "../../runtime/kv/errors.js";
import { HybridClock } from "../../runtime/kv/hlc.js";
import { MapStore } from "../../runtime/kv/store.js";
import { answerSync, isSyncRequest, SyncSession } from "../../runtime/kv/sync.js";

const clockAt = (t: { now: number }) => new HybridClock({ now: () => t.now });

function pair() {
  const t = { now: 1_700_000_000_000 };
  const a = new MapStore({ site: "nyc", member: "nyc-1", clock: clockAt(t), now: () => t.now });
  const b = new MapStore({ site: "sfc", member: "sfc-1", clock: clockAt(t), now: () => t.now });
  return { t, a, b };
}

/**
 * A session of `a` pulling from `b`, every message through encode/decode. `tamper` may change the
 * bytes of an answer on its way (a corrupt chunk is then dropped, as KvService drops it).
 */
function session(
  a: MapStore,
  b: MapStore,
  t: { now: number },
  o: {
    tamper?: (bytes: Buffer, m: KvMessage) => Buffer;
    silent?: boolean;
    /** Drops LEAF_DIFF_REQ unanswered, as a replica from before it does (an unknown kind). */
    old?: boolean;
    hashesPerRequest?: number;
  } = {},
) {
  const wire = (m: KvMessage) => decodeKvMessage(encodeKvMessage(m));
  let dropped = 0;
  const asked = { leafDiff: 0, leaf: 0 };
  let s: SyncSession;
  const deliverToA = (m: KvMessage) => {
    const bytes = o.tamper ? o.tamper(encodeKvMessage(m), m) : encodeKvMessage(m);
    try {
      s.onMessage(decodeKvMessage(bytes), t.now);
    } catch (err) {
      if (!(err instanceof KvError && err.code === "BAD_FRAME")) throw err;
      dropped++;
    }
  };
  s = new SyncSession({
    session: 7,
    map: "m",
    store: a,
    peer: {
      send: async (m) => {
        const req = wire(m);
        if (o.silent) return;
        if (req.type === "leaf-diff-req") asked.leafDiff++;
        if (req.type === "leaf-req") asked.leaf++;
        if (o.old && req.type === "leaf-diff-req") return;
        if (isSyncRequest(req))
          queueMicrotask(() => {
            for (const ans of answerSync(b, req, 64 * 1024)) deliverToA(ans);
          });
      },
    },
    apply: (e) => a.apply(e) !== null,
    push: async (entries) => {
      for (const e of wire({ type: "update", map: "m", batch: 0, entries }).type === "update" ? entries : [])
        b.apply(e);
    },
    stepTimeoutMs: 1000,
    ...(o.hashesPerRequest === undefined ? {} : { hashesPerRequest: o.hashesPerRequest }),
    now: t.now,
  });
  return { s, dropped: () => dropped, asked };
}

describe("SyncSession", () => {
  /** Two stores of 100k keys; 500 keys newer in a, 500 newer in b (written while they could not talk). */
  function diverged() {
    const { t, a, b } = pair();
    const value = Buffer.alloc(100, 1);
    for (let i = 0; i < 100_000; i++) {
      const e = a.put(`key-${i}`, value);
      b.apply(e);
    }
    expect(a.digest().root()).toBe(b.digest().root());
    t.now += 1000;
    for (let i = 0; i < 1000; i += 2) a.put(`key-${i * 97}`, Buffer.from("a"));
    for (let i = 1; i < 1000; i += 2) b.put(`key-${i * 97}`, Buffer.from("b"));
    return { t, a, b };
  }

  test("1 % of 100k keys differ: both replicas end identical, and only the differing keys move", async () => {
    const { t, a, b } = diverged();
    const { s, asked } = session(a, b, t);
    s.start();
    const r = await s.result;
    expect(a.digest().root()).toBe(b.digest().root());
    const text = (v: Uint8Array | undefined) => Buffer.from(v ?? []).toString();
    expect(text(a.getValue("key-0"))).toBe("a");
    expect(text(b.getValue("key-0"))).toBe("a");
    expect(text(a.getValue("key-97"))).toBe("b");
    process.stdout.write(
      `sync of 100k keys, 1,000 differing: ${r.bucketsDiffering} buckets differ, received ${r.entriesReceived}, applied ${r.entriesApplied}, sent ${r.entriesSent}\n`,
    );
    // Only the 1,000 differing keys move (whole leaves, ~1.5 keys each, moved ~2.4x that): b's
    // entry of each of them comes to a (the 500 newer ones win), and a's 500 newer ones go back.
    // b's newer entries are not pushed back to it.
    expect(asked.leaf).toBe(0);
    expect(r.entriesReceived).toBe(1000);
    expect(r.entriesApplied).toBe(500);
    expect(r.entriesSent).toBe(500);
  });

  test("a replica from before LEAF_DIFF_REQ (drops it): the session falls back to whole leaves and converges", async () => {
    const { t, a, b } = diverged();
    const { s, asked } = session(a, b, t, { old: true });
    s.start();
    for (let i = 0; i < 100 && !s.finished; i++) {
      await new Promise((r) => setImmediate(r));
      if (asked.leafDiff > 0 && asked.leaf === 0) {
        t.now += 1001;
        s.expire(t.now);
      }
    }
    const r = await s.result;
    expect(asked.leafDiff).toBe(1); // asked once, then whole leaves for the rest of the session
    expect(asked.leaf).toBeGreaterThan(0);
    expect(r.retries).toBe(1);
    expect(r.entriesApplied).toBe(500);
    expect(r.entriesReceived).toBeGreaterThan(1000); // whole leaves: the equal keys sharing them too
    expect(a.digest().root()).toBe(b.digest().root());
  });

  test("a group's leaves over the hash budget go in several requests; a leaf alone over it, whole", async () => {
    const { t, a, b } = pair();
    // 3,000 keys on both sides, every one at another version on b (at most 2 share a leaf), and
    // 4 more keys in the leaf of "k0": 5 entries there, over a budget of 4 hashes per request.
    const crowded = [...Array(400_000).keys()].map((i) => `c${i}`).filter((k) => leafOf(k) === leafOf("k0"));
    expect(crowded.length).toBe(4);
    const keys = [...[...Array(3000).keys()].map((i) => `k${i}`), ...crowded];
    for (const k of keys) a.put(k, Buffer.from("a"));
    t.now += 1000;
    for (const k of keys) b.put(k, Buffer.from("b"));
    const { s, asked } = session(a, b, t, { hashesPerRequest: 4 });
    s.start();
    const r = await s.result;
    expect(a.digest().root()).toBe(b.digest().root());
    expect(Buffer.from(a.getValue("k1") ?? [])).toEqual(Buffer.from("b"));
    expect(asked.leafDiff).toBeGreaterThan(3000 / 4 / 2);
    expect(asked.leaf).toBe(1); // the crowded leaf, whole
    expect(r.entriesApplied).toBe(3004);
    expect(r.entriesSent).toBe(0); // b won every key: nothing of a's goes back
  });

  test("equal replicas: one digest each way and nothing else", async () => {
    const { t, a, b } = pair();
    for (let i = 0; i < 100; i++) b.apply(a.put(`k${i}`, Buffer.from([i])));
    const { s } = session(a, b, t);
    s.start();
    expect(await s.result).toEqual(
      expect.objectContaining({ equal: true, entriesReceived: 0, entriesSent: 0 }),
    );
  });

  test("a corrupt chunk is rejected (checksum) and the leaves are asked for again", async () => {
    const { t, a, b } = pair();
    for (let i = 0; i < 2000; i++) b.put(`k${i}`, Buffer.alloc(200, i % 256));
    let corrupted = 0;
    const { s, dropped } = session(a, b, t, {
      tamper: (bytes, m) => {
        if (m.type !== "bucket-res" || corrupted > 0) return bytes;
        corrupted++;
        const c = Buffer.from(bytes);
        c[Math.floor(c.length / 2)]! ^= 0xff;
        return c;
      },
    });
    s.start();
    // The corrupt chunk is dropped; the step times out and is requested again.
    for (let i = 0; i < 50 && !s.finished; i++) {
      await new Promise((r) => setImmediate(r));
      if (dropped() > 0) {
        t.now += 1001;
        s.expire(t.now);
      }
    }
    const r = await s.result;
    expect(dropped()).toBe(1);
    expect(r.retries).toBeGreaterThanOrEqual(1);
    expect(a.size).toBe(2000);
    expect(a.digest().root()).toBe(b.digest().root());
  });

  test("a replica that never answers: TIMEOUT after the retries, nothing changed", async () => {
    const { t, a, b } = pair();
    b.put("k", Buffer.from("v"));
    const { s } = session(a, b, t, { silent: true });
    s.start();
    for (let i = 0; i < 5; i++) {
      t.now += 1001;
      s.expire(t.now);
    }
    const err = await s.result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe("TIMEOUT");
    expect(a.size).toBe(0);
  });
});
