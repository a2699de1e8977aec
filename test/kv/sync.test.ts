// Anti-entropy sessions between two stores, through the real codec, without a network: what is
// transferred when 1 % of 100k keys differ, a corrupt chunk rejected and asked for again, a
// replica that never answers.
import { describe, expect, test } from "@jest/globals";
import { decodeKvMessage, encodeKvMessage, type KvMessage } from "../../runtime/kv/codec.js";
import { KvError } from "../../runtime/kv/errors.js";
import { HybridClock } from "../../runtime/kv/hlc.js";
import { MapStore } from "../../runtime/kv/store.js";
import { answerSync, SyncSession } from "../../runtime/kv/sync.js";

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
  o: { tamper?: (bytes: Buffer, m: KvMessage) => Buffer; silent?: boolean } = {},
) {
  const wire = (m: KvMessage) => decodeKvMessage(encodeKvMessage(m));
  let dropped = 0;
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
        if (req.type === "digest-req" || req.type === "sub-digest-req" || req.type === "leaf-req")
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
    now: t.now,
  });
  return { s, dropped: () => dropped };
}

describe("SyncSession", () => {
  test("1 % of 100k keys differ: both replicas end identical, and only about what differs moves", async () => {
    const { t, a, b } = pair();
    const value = Buffer.alloc(100, 1);
    for (let i = 0; i < 100_000; i++) {
      const e = a.put(`key-${i}`, value);
      b.apply(e);
    }
    expect(a.digest().root()).toBe(b.digest().root());
    // 500 keys newer in a, 500 newer in b (written while they could not talk).
    t.now += 1000;
    for (let i = 0; i < 1000; i += 2) a.put(`key-${i * 97}`, Buffer.from("a"));
    for (let i = 1; i < 1000; i += 2) b.put(`key-${i * 97}`, Buffer.from("b"));
    const { s } = session(a, b, t);
    s.start();
    const r = await s.result;
    expect(a.digest().root()).toBe(b.digest().root());
    const text = (v: Uint8Array | undefined) => Buffer.from(v ?? []).toString();
    expect(text(a.getValue("key-0"))).toBe("a");
    expect(text(b.getValue("key-0"))).toBe("a");
    expect(text(a.getValue("key-97"))).toBe("b");
    // A leaf holds ~1.5 keys: about what differs moves each way, never the whole map.
    process.stdout.write(
      `sync of 100k keys, 1,000 differing: ${r.bucketsDiffering} buckets differ, received ${r.entriesReceived}, applied ${r.entriesApplied}, sent ${r.entriesSent}\n`,
    );
    expect(r.entriesApplied).toBe(500);
    expect(r.entriesReceived).toBeLessThan(3000);
    expect(r.entriesSent).toBeGreaterThanOrEqual(500);
    expect(r.entriesSent).toBeLessThan(3000);
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
