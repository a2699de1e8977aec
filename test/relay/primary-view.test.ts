// The primary-view rule (docs/DELIVERY.md, "Partitions"): only a view that keeps a majority of the
// last primary view (or exactly half with its oldest member) may certify stability, so the two
// sides of a split site can never both tell a sender to drop a message.
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import { isPrimarySuccessor, PrimaryViewTracker } from "../../runtime/relay/delivery/primary-view.js";
import { view } from "../helpers/views.js";

describe("primary views", () => {
  test("a frozen site master that wakes up alone is not primary; the majority that went on is", () => {
    const all = view(1, [1, 2, 3, 4, 5]);
    const frozen = new PrimaryViewTracker();
    const others = new PrimaryViewTracker();
    expect(frozen.observe(all)).toBe(true);
    expect(others.observe(all)).toBe(true);
    // nyc-1 and nyc-2 stopped: 3, 4, 5 go on (3 of 5) ...
    expect(others.observe(view(2, [3, 4, 5]))).toBe(true);
    // ... and when 1 and 2 wake up they suspect the others: 2 of 5 is a minority.
    expect(frozen.observe(view(2, [1, 2]))).toBe(false);
    expect(frozen.primary).toBe(false);
    // The merge is primary on both sides, whoever coordinates it.
    expect(frozen.observe(view(3, [1, 2, 3, 4, 5]))).toBe(true);
    expect(others.observe(view(3, [3, 4, 5, 1, 2]))).toBe(true);
  });

  test("a coordinator that wakes from a freeze cannot walk itself into primary one removal at a time", () => {
    const t = new PrimaryViewTracker();
    t.observe(view(1, [1, 2, 3, 4, 5]), true);
    t.confirm(); // everyone reported from the view of 5
    // It suspects the others one by one; nobody installs these views, so none is confirmed.
    expect(t.observe(view(2, [1, 2, 3, 4]), true)).toBe(true); // still a majority of the 5 ...
    expect(t.observe(view(3, [1, 2, 3]), true)).toBe(true);
    expect(t.observe(view(4, [1, 2]), true)).toBe(false); // ... but 2 of 5 is not
    expect(t.observe(view(5, [1]), true)).toBe(false);
    expect(t.lastPrimary).toHaveLength(5);
  });

  test("a coordinator's own view becomes the reference once its members confirm it", () => {
    const t = new PrimaryViewTracker();
    t.observe(view(1, [1, 2, 3, 4, 5]), true);
    t.confirm();
    t.observe(view(2, [1, 2, 3]), true);
    t.confirm();
    expect(t.observe(view(3, [1, 2]), true)).toBe(true); // 2 of 3 now
  });

  test("members leaving one at a time keep the view primary down to one member", () => {
    const t = new PrimaryViewTracker();
    t.observe(view(1, [1, 2, 3, 4, 5]));
    for (const [seq, ids] of [
      [2, [2, 3, 4, 5]],
      [3, [3, 4, 5]],
      [4, [4, 5]],
      [5, [4]],
    ] as const) {
      expect(t.observe(view(seq, [...ids]))).toBe(true);
    }
    expect(t.lastPrimary).toHaveLength(1);
  });

  test("an even split: the half with the oldest member of the last primary view wins", () => {
    expect(isPrimarySuccessor(["a", "b", "c", "d"], ["a", "b"])).toBe(true);
    expect(isPrimarySuccessor(["a", "b", "c", "d"], ["c", "d"])).toBe(false);
    expect(isPrimarySuccessor(["a", "b"], ["b"])).toBe(false);
    expect(isPrimarySuccessor(["a", "b"], ["a", "x"])).toBe(true);
  });

  test("property: two disjoint views are never both primary successors of the same view", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        (ids, side) => {
          const last = ids.map(String);
          const left = last.filter((_, i) => side[i]);
          const right = last.filter((_, i) => !side[i]);
          return !(isPrimarySuccessor(last, left) && isPrimarySuccessor(last, right));
        },
      ),
    );
  });
});
