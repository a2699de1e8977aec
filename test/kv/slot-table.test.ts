// SlotTable (runtime/kv/slot-table.ts): a store's entries in parallel arrays. Growth keeps every
// field, removed slots are reused (a store that writes and collects forever stays its size), and
// each leaf lists exactly its slots.
import { expect, test } from "@jest/globals";
import type { Entry } from "../../runtime/kv/entry.js";
import { NO_SLOT, SlotTable } from "../../runtime/kv/slot-table.js";

const entry = (key: string): Entry => ({
  key,
  value: new Uint8Array([1]),
  version: { hlc: { wall: 1, logical: 0 }, site: "nyc", member: "nyc-1" },
});
const leafOfKey = (i: number) => i % 7;
const hashOf = (i: number) => (BigInt(i) << 40n) | 0xffn;

test("growth keeps every slot's entry, leaf and hash", () => {
  const t = new SlotTable(7);
  for (let i = 0; i < 1000; i++) t.add(`k${i}`, entry(`k${i}`), leafOfKey(i), hashOf(i));
  expect(t.size).toBe(1000);
  expect(t.capacity).toBe(1024);
  for (let i = 0; i < 1000; i++) {
    const s = t.find(`k${i}`);
    expect([t.entry(s).key, t.leafOf(s), t.hash(s)]).toEqual([`k${i}`, leafOfKey(i), hashOf(i)]);
  }
  expect(t.find("absent")).toBe(NO_SLOT);
  const inLeaf3: string[] = [];
  t.forEachInLeaf(3, (s) => inLeaf3.push(t.entry(s).key));
  expect(inLeaf3.sort()).toEqual(
    Array.from({ length: 1000 }, (_, i) => i)
      .filter((i) => leafOfKey(i) === 3)
      .map((i) => `k${i}`)
      .sort(),
  );
});

test("removed slots are reused: keys written and removed forever keep the table its size", () => {
  const t = new SlotTable(7);
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) t.add(`r${round}/${i}`, entry(`r${round}/${i}`), leafOfKey(i), hashOf(i));
    for (const [key, slot] of t.slots()) t.remove(key, slot); // removing while iterating
    expect(t.size).toBe(0);
  }
  expect(t.capacity).toBe(128);
  for (let leaf = 0; leaf < 7; leaf++) t.forEachInLeaf(leaf, () => expect("a slot").toBe("none"));
});
