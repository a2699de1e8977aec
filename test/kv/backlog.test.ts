// The backlog of one backup site with an injected clock: coalescing, honest lag, batches in
// flight, acks, requeue after a lost path, the budget (refuse, never drop), isAcked.
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import { BackupBacklog, MAX_BATCH_ID } from "../../runtime/kv/backlog.js";
import { type Entry, entryBytes } from "../../runtime/kv/entry.js";
import { KvError } from "../../runtime/kv/errors.js";
import { compareVersions } from "../../runtime/kv/version.js";

let seq = 0;
/** A write of `key`; each call is newer than the previous one. */
function w(key: string, size = 10, tomb = false): Entry {
  seq++;
  return {
    key,
    value: tomb ? null : new Uint8Array(size),
    version: { hlc: { wall: 1000 + seq, logical: 0 }, site: "nyc", member: "nyc-1" },
  };
}

function harness(maxBytes = 1_000_000, maxKeys = 1000) {
  const t = { now: 50_000 };
  const log = new BackupBacklog({ maxBytes, maxKeys, now: () => t.now });
  return { t, log };
}

describe("BackupBacklog", () => {
  test("empty: nothing pending, no lag, take returns no batch", () => {
    const { log } = harness();
    expect([log.pendingKeys, log.pendingBytes, log.oldestPendingMs()]).toEqual([0, 0, null]);
    expect(log.take(1000)).toEqual({ batch: 0, entries: [] });
  });

  test("coalesces per key; the lag is the age of the oldest unacknowledged change", () => {
    const { log, t } = harness();
    const a1 = w("a");
    log.add(a1);
    t.now += 100;
    log.add(w("b"));
    t.now += 100;
    const a2 = w("a", 20);
    log.add(a2); // replaces a1, keeps a1's time
    expect(log.pendingKeys).toBe(2);
    expect(log.pendingBytes).toBe(entryBytes(a2) + entryBytes(w("b")));
    expect(log.oldestPendingMs()).toBe(200);
    const { batch, entries } = log.take(1_000_000);
    expect(entries.map((e) => e.key)).toEqual(["a", "b"]);
    expect(entries[0]).toBe(a2);
    t.now += 50;
    expect(log.oldestPendingMs()).toBe(250); // in flight is still unacknowledged
    log.ack(batch);
    expect([log.pendingKeys, log.pendingBytes, log.oldestPendingMs()]).toEqual([0, 0, null]);
    expect(log.isAcked(a1)).toBe(true);
    expect(log.isAcked(a2)).toBe(true);
  });

  test("take respects maxBytes (but always sends one entry) and takes oldest first", () => {
    const { log, t } = harness();
    const big = w("big", 500);
    for (const k of ["k1", "k2", "k3"]) {
      log.add(w(k, 10));
      t.now += 1;
    }
    log.add(big);
    const one = entryBytes(w("k1", 10));
    const first = log.take(2 * one);
    expect(first.entries.map((e) => e.key)).toEqual(["k1", "k2"]);
    const second = log.take(one);
    expect(second.entries.map((e) => e.key)).toEqual(["k3"]);
    const third = log.take(1);
    expect(third.entries).toEqual([big]);
    expect(new Set([first.batch, second.batch, third.batch]).size).toBe(3);
    expect(log.batchesInFlight).toBe(3);
    expect(log.queued).toBe(0);
  });

  test("a key changed while in flight stays pending and is not acknowledged by the older batch", () => {
    const { log, t } = harness();
    const a1 = w("a");
    log.add(a1);
    const b1 = log.take(1000);
    t.now += 10;
    const a2 = w("a");
    log.add(a2);
    expect(log.pendingKeys).toBe(1);
    expect(log.queued).toBe(1);
    log.ack(b1.batch);
    expect(log.isAcked(a1)).toBe(true);
    expect(log.isAcked(a2)).toBe(false);
    expect(log.oldestPendingMs()).toBe(0); // a2's own change is the oldest unacknowledged now
    const b2 = log.take(1000);
    expect(b2.entries).toEqual([a2]);
    log.ack(b2.batch);
    expect(log.isAcked(a2)).toBe(true);
  });

  test("requeue and requeueAll put batches back, oldest first; a newer pending entry wins", () => {
    const { log, t } = harness();
    log.add(w("a"));
    t.now += 10;
    log.add(w("b"));
    t.now += 10;
    log.add(w("c"));
    const b1 = log.take(entryBytes(w("a")) * 2); // a, b
    const b2 = log.take(1000); // c
    t.now += 10;
    const b3 = w("b");
    log.add(b3); // b changed again while in flight
    log.requeueAll();
    expect(log.batchesInFlight).toBe(0);
    expect(log.pendingKeys).toBe(3);
    expect(log.oldestPendingMs()).toBe(30);
    const again = log.take(1_000_000);
    expect(again.entries.map((e) => e.key)).toEqual(["a", "b", "c"]);
    expect(again.entries[1]).toBe(b3);
    log.ack(b1.batch); // settled by the requeue: ignored
    log.ack(b2.batch);
    expect(log.pendingKeys).toBe(3);
    log.requeue(again.batch);
    expect(log.take(1_000_000).entries.map((e) => e.key)).toEqual(["a", "b", "c"]);
  });

  test("over budget: BACKLOG_FULL, nothing recorded, nothing dropped; wouldFit tells in advance", () => {
    const one = entryBytes(w("x"));
    const { log } = harness(3 * one, 2);
    log.add(w("a"));
    log.add(w("b"));
    expect(log.wouldFit(one)).toBe(false); // a third key
    let err: unknown;
    try {
      log.add(w("c"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe("BACKLOG_FULL");
    expect((err as KvError).message).toMatch(/maxKeys 2/);
    log.add(w("a")); // coalescing into a pending key still fits
    expect(() => log.add(w("a", 1000))).toThrow(/maxBytes/);
    expect(log.pendingKeys).toBe(2);
    const sent = log.take(1_000_000);
    expect(sent.entries.map((e) => e.key)).toEqual(["a", "b"]);
    log.ack(sent.batch);
    expect(log.wouldFit(one)).toBe(true);
    log.add(w("c"));
  });

  test("an ack of a newer batch also settles an older batch of the same key", () => {
    const { log, t } = harness();
    const a1 = w("a");
    log.add(a1);
    const b1 = log.take(1000);
    t.now += 10;
    log.add(w("a"));
    const b2 = log.take(1000);
    log.ack(b2.batch);
    expect([log.pendingKeys, log.pendingBytes, log.oldestPendingMs()]).toEqual([0, 0, null]);
    log.ack(b1.batch); // late ack of the older one: nothing left to settle
    expect(log.pendingBytes).toBe(0);
    expect(log.isAcked(a1)).toBe(true);
  });

  test("batch ids wrap around after MAX_BATCH_ID and skip ids still in flight", () => {
    const log = new BackupBacklog({
      maxBytes: 1_000_000,
      maxKeys: 100,
      now: () => 0,
      firstBatch: MAX_BATCH_ID - 1,
    });
    const ids: number[] = [];
    for (const k of ["a", "b", "c"]) {
      log.add(w(k));
      ids.push(log.take(1).batch);
    }
    expect(ids).toEqual([MAX_BATCH_ID - 1, MAX_BATCH_ID, 1]);
  });

  test("isAcked and forget", () => {
    const { log } = harness();
    const a = w("a");
    expect(log.isAcked(a)).toBe(false);
    log.add(a);
    log.ack(log.take(100).batch);
    expect(log.isAcked(a)).toBe(true);
    expect(log.isAcked(w("a"))).toBe(false); // a newer write of a
    log.forget("a");
    expect(log.isAcked(a)).toBe(false);
  });

  test("property: lag and pending keys match a model of unacknowledged changes whatever the order of takes, acks, requeues and writes; everything drains", () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant("add" as const), key: fc.constantFrom("a", "b", "c") }),
      fc.record({ op: fc.constant("take" as const), bytes: fc.integer({ min: 1, max: 200 }) }),
      fc.record({ op: fc.constant("ack" as const), pick: fc.nat() }),
      fc.record({ op: fc.constant("requeue" as const), pick: fc.nat() }),
      fc.record({ op: fc.constant("requeueAll" as const) }),
      fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 100 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const { log, t } = harness();
        const latest = new Map<string, Entry>();
        // Model: every change not yet covered by an ack (an ack of version v covers the key's changes <= v).
        const unacked: { e: Entry; at: number }[] = [];
        const inFlight: { batch: number; entries: Entry[] }[] = [];
        const settle = (b: { batch: number; entries: Entry[] }) => {
          for (const e of b.entries)
            for (let i = unacked.length - 1; i >= 0; i--)
              if (unacked[i]!.e.key === e.key && compareVersions(unacked[i]!.e.version, e.version) <= 0)
                unacked.splice(i, 1);
        };
        for (const o of ops) {
          if (o.op === "add") {
            const e = w(o.key);
            log.add(e);
            latest.set(o.key, e);
            unacked.push({ e, at: t.now });
          } else if (o.op === "take") {
            const b = log.take(o.bytes);
            if (b.batch) inFlight.push(b);
          } else if (o.op === "ack" && inFlight.length) {
            const [b] = inFlight.splice(o.pick % inFlight.length, 1);
            log.ack(b!.batch);
            settle(b!);
          } else if (o.op === "requeue" && inFlight.length) {
            const [b] = inFlight.splice(o.pick % inFlight.length, 1);
            log.requeue(b!.batch);
          } else if (o.op === "requeueAll") {
            inFlight.length = 0;
            log.requeueAll();
          } else if (o.op === "tick") t.now += o.ms;
          // The lag is exactly the age of the oldest change no ack covers; the keys are those of such changes.
          const oldest = Math.min(...unacked.map((u) => u.at));
          expect(log.oldestPendingMs()).toBe(unacked.length ? t.now - oldest : null);
          expect(log.pendingKeys).toBe(new Set(unacked.map((u) => u.e.key)).size);
        }
        // Drain: send and ack everything.
        for (const b of inFlight) log.requeue(b.batch);
        for (let b = log.take(1000); b.batch; b = log.take(1000)) log.ack(b.batch);
        expect([log.pendingKeys, log.pendingBytes, log.oldestPendingMs()]).toEqual([0, 0, null]);
        for (const e of latest.values()) expect(log.isAcked(e)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
