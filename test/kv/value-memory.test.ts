// A replica keeps the values it decodes from the network for as long as their keys live. A value
// that is a view into shared memory (Node's 8 KiB buffer pool, or the message it came in) keeps
// all of that memory alive: with one cold key among many overwrites of a hot key, each kept
// value held a whole pool slab, ~80 times its own bytes. Counted without the GC: the distinct
// ArrayBuffers behind the values a store holds, against the values' own bytes.
import { expect, test } from "@jest/globals";
import { decodeKvMessage, encodeKvMessage } from "../../runtime/kv/codec.js";
import type { Entry } from "../../runtime/kv/entry.js";
import { HybridClock } from "../../runtime/kv/hlc.js";
import { MapStore } from "../../runtime/kv/store.js";
import { bytesCodec } from "../../runtime/kv/value-codec.js";

function retainedBytes(entries: Iterable<Entry>): { own: number; retained: number } {
  const buffers = new Set<ArrayBufferLike>();
  let own = 0;
  for (const e of entries) {
    if (e.value === null) continue;
    own += e.value.length;
    buffers.add(e.value.buffer);
  }
  let retained = 0;
  for (const b of buffers) retained += b.byteLength;
  return { own, retained };
}

test.each([100, 1000])(
  "values of %i bytes applied from update messages hold only their own bytes",
  (size) => {
    const writer = new MapStore({ site: "nyc", member: "nyc-2", clock: new HybridClock() });
    const replica = new MapStore({ site: "sfc", member: "sfc-1", clock: new HybridClock() });
    for (let i = 0; i < 500; i++) {
      // One new key, then the hot key overwritten 40 times, in one batch.
      const batch = [writer.put(`cold/${i}`, new Uint8Array(size).fill(i % 251))];
      for (let j = 0; j < 40; j++) batch.push(writer.put("hot", new Uint8Array(size)));
      const m = decodeKvMessage(encodeKvMessage({ type: "update", map: "m", batch: i + 1, entries: batch }));
      if (m.type !== "update") throw new Error(`decoded a ${m.type}`);
      for (const e of m.entries) replica.apply(e);
    }
    expect(replica.size).toBe(501);
    expect(replica.getValue("cold/7")).toEqual(new Uint8Array(size).fill(7));
    const { own, retained } = retainedBytes(replica.allEntries());
    expect(own).toBe(501 * size);
    expect(retained).toBe(own); // each value in a buffer of its own size
  },
);

test("bytesCodec hands the map bytes of its own and the caller a copy of what it stores", () => {
  const mine = Buffer.from("a small value"); // a slice of Node's 8 KiB pool
  const stored = bytesCodec.encode(mine);
  mine.fill(0); // the caller reuses its buffer after put
  expect(Buffer.from(stored).toString()).toBe("a small value");
  expect(stored.buffer.byteLength).toBe(stored.length);
  const read = bytesCodec.decode(stored);
  read.fill(0); // the caller changes what get returned
  expect(Buffer.from(stored).toString()).toBe("a small value");
});
