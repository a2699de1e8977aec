// One page of a key listing (`GET .../entries`): the `limit` smallest keys after a cursor, found in
// one pass with a bounded max-heap instead of sorting every key of the map for every page (a
// million-key map took about a second per page, with the node's event loop blocked meanwhile).
// Keys compare as JavaScript strings (UTF-16 code units), the order of the cursor `after`.

export interface KeyPage {
  /** At most `limit` keys, ascending. */
  readonly keys: string[];
  /** More keys follow the last one. */
  readonly more: boolean;
}

/** The `limit` (>= 1) smallest of `keys` that are greater than `after` (all when null). */
export function keyPage(keys: Iterable<string>, after: string | null, limit: number): KeyPage {
  // A max-heap of the limit + 1 smallest keys so far: its top is the largest of them.
  const cap = limit + 1;
  const heap: string[] = [];
  for (const k of keys) {
    if (after !== null && k <= after) continue;
    if (heap.length < cap) {
      heap.push(k);
      siftUp(heap, heap.length - 1);
    } else if (k < heap[0]!) {
      heap[0] = k;
      siftDown(heap, 0);
    }
  }
  heap.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const more = heap.length > limit;
  if (more) heap.length = limit;
  return { keys: heap, more };
}

function siftUp(h: string[], i: number): void {
  const x = h[i]!;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent]! >= x) break;
    h[i] = h[parent]!;
    i = parent;
  }
  h[i] = x;
}

function siftDown(h: string[], i: number): void {
  const x = h[i]!;
  const n = h.length;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && h[child + 1]! > h[child]!) child++;
    if (h[child]! <= x) break;
    h[i] = h[child]!;
    i = child;
  }
  h[i] = x;
}
