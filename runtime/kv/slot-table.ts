// Where a store keeps its entries: one slot per key, the slot's fields in parallel arrays, and the
// slots of each digest leaf linked in a list. Pure: no I/O.
//
// Why arrays and not an object per key: a replica keeps every entry for as long as its key lives,
// and every object a write leaves behind is copied by V8's young-generation GC (twice: once to the
// survivor space, once out of it) before it settles in the old generation. An object per key with
// its digest hash as a BigInt was two of the ~nine such objects per write; here a key costs its
// index in a Map (a small integer: no object) and 24 bytes in arrays (bench/kv-store.mjs).
import type { Entry } from "./entry.js";

/** No slot (a list's end, a key that is absent). */
export const NO_SLOT = -1;

const INITIAL_CAPACITY = 64;

export class SlotTable {
  readonly #leaves: number;
  /** key -> slot. Insertion order is the iteration order. */
  readonly #index = new Map<string, number>();
  #entries: (Entry | undefined)[] = [];
  #hashes = new BigUint64Array(INITIAL_CAPACITY);
  #leafOf = new Uint32Array(INITIAL_CAPACITY);
  /** The other slots of the same leaf: a doubly linked list from #heads[leaf]. */
  #next = new Int32Array(INITIAL_CAPACITY);
  #prev = new Int32Array(INITIAL_CAPACITY);
  /** The first slot of each leaf (allocated with the first entry). */
  #heads: Int32Array | undefined;
  /** Slots freed by remove(), reused before the table grows. */
  readonly #free: number[] = [];
  #used = 0;

  /** `leaves`: how many digest leaves there are (leaf numbers are 0..leaves-1). */
  constructor(leaves: number) {
    this.#leaves = leaves;
  }

  get size(): number {
    return this.#index.size;
  }

  /** Slots the arrays have room for (freed slots are reused before they grow). */
  get capacity(): number {
    return this.#hashes.length;
  }

  /** The slot of `key`, or NO_SLOT. */
  find(key: string): number {
    return this.#index.get(key) ?? NO_SLOT;
  }

  entry(slot: number): Entry {
    return this.#entries[slot]!;
  }

  hash(slot: number): bigint {
    return this.#hashes[slot]!;
  }

  leafOf(slot: number): number {
    return this.#leafOf[slot]!;
  }

  /** Stores a key that has no slot; returns its slot. */
  add(key: string, entry: Entry, leaf: number, hash: bigint): number {
    const slot = this.#free.pop() ?? this.#grow();
    this.#index.set(key, slot);
    this.#entries[slot] = entry;
    this.#hashes[slot] = hash;
    this.#leafOf[slot] = leaf;
    this.#heads ??= new Int32Array(this.#leaves).fill(NO_SLOT);
    const first = this.#heads[leaf]!;
    this.#next[slot] = first;
    this.#prev[slot] = NO_SLOT;
    if (first !== NO_SLOT) this.#prev[first] = slot;
    this.#heads[leaf] = slot;
    return slot;
  }

  /** A new entry (and its hash) for the key of `slot`. */
  replace(slot: number, entry: Entry, hash: bigint): void {
    this.#entries[slot] = entry;
    this.#hashes[slot] = hash;
  }

  /** Forgets `key`, whose slot is `slot`. */
  remove(key: string, slot: number): void {
    this.#index.delete(key);
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev !== NO_SLOT) this.#next[prev] = next;
    else this.#heads![this.#leafOf[slot]!] = next;
    if (next !== NO_SLOT) this.#prev[next] = prev;
    this.#entries[slot] = undefined;
    this.#free.push(slot);
  }

  /** Every [key, slot], in insertion order; removing the current key while iterating is allowed. */
  slots(): IterableIterator<[string, number]> {
    return this.#index.entries();
  }

  /** The slots of digest leaf `leaf`, passed to `visit`. */
  forEachInLeaf(leaf: number, visit: (slot: number) => void): void {
    if (!this.#heads) return;
    for (let s = this.#heads[leaf]!; s !== NO_SLOT; s = this.#next[s]!) visit(s);
  }

  /** A new slot at the end, the arrays doubled when full. */
  #grow(): number {
    const slot = this.#used++;
    if (slot === this.#hashes.length) {
      const n = this.#hashes.length * 2;
      this.#hashes = grown(this.#hashes, new BigUint64Array(n));
      this.#leafOf = grown(this.#leafOf, new Uint32Array(n));
      this.#next = grown(this.#next, new Int32Array(n));
      this.#prev = grown(this.#prev, new Int32Array(n));
    }
    return slot;
  }
}

function grown<T extends BigUint64Array | Uint32Array | Int32Array>(old: T, into: T): T {
  into.set(old as never);
  return into;
}
