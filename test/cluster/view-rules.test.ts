// Which coordinator may change a member's view (acceptsView): its own, one taking over after every
// older member is gone, or a merge winner keeping all of the member's view — never a stale
// coordinator that froze and wakes up removing members from the view it remembers.
import { expect, test } from "@jest/globals";
import { memberKey } from "../../runtime/cluster/member.js";
import {
  acceptsView,
  decideView,
  isExclusionNotice,
  mergeViews,
  owesExclusionNotice,
  sendTargets,
} from "../../runtime/cluster/view-rules.js";
import { member, view } from "../helpers/views.js";

test("our own coordinator, including when it excludes us", () => {
  expect(acceptsView(view(3, [1, 2, 3]), view(4, [1, 2, 3, 4]))).toBe(true);
  expect(acceptsView(view(3, [1, 2, 3]), view(4, [1, 2]))).toBe(true);
});

test("a member taking over once every older member is gone", () => {
  expect(acceptsView(view(3, [1, 2, 3, 4]), view(4, [2, 3, 4]))).toBe(true);
  expect(acceptsView(view(3, [1, 2, 3, 4]), view(4, [3, 4]))).toBe(true);
  expect(acceptsView(view(3, [1, 2, 3, 4]), view(4, [3, 1, 4]))).toBe(false); // 1 is older than 3
});

test("a merge winner whose view keeps all of ours", () => {
  const ours = view(5, [4, 5, 3, 2]);
  expect(acceptsView(ours, mergeViews(view(2, [1]), ours))).toBe(true);
});

test("a stale coordinator that froze: its shrinking views are refused", () => {
  // nyc-1 froze; 4, 5, 3, 2 went on with nyc-4 as coordinator. nyc-1 wakes up with a high seq.
  const ours = view(7, [4, 5, 3, 2]);
  expect(acceptsView(ours, view(9, [1, 5, 3, 2]))).toBe(false);
  expect(acceptsView(ours, view(10, [1, 3, 2]))).toBe(false);
  expect(acceptsView(null, view(10, [1, 3, 2]))).toBe(true); // nothing installed yet (joining)
});

test("an exclusion notice: our coordinator went on without us", () => {
  const ours = view(6, [4, 5, 2]); // we (nyc-2) froze while nyc-4 ran this view
  const theirs = view(9, [3, 4, 5]); // nyc-4 is now in nyc-3's view, without us
  expect(acceptsView(ours, theirs)).toBe(false);
  expect(isExclusionNotice(ours, theirs, memberKey(member(2)))).toBe(true);
  // A view that keeps us, or that our coordinator is not part of, is no such notice.
  expect(isExclusionNotice(ours, view(9, [3, 4, 2]), memberKey(member(2)))).toBe(false);
  expect(isExclusionNotice(ours, view(9, [1, 3]), memberKey(member(2)))).toBe(false);
});

test("exclusion notices are owed only by a coordinator that the member's coordinator follows", () => {
  const key = (i: number) => memberKey(member(i));
  // nyc-3 merged into nyc-1's view; nyc-4 froze through that and still believes in nyc-3's view.
  const mine = view(9, [1, 2, 3, 5]);
  const its = view(6, [3, 4, 5]);
  const probes = new Map([[key(3), mine]]);
  expect(owesExclusionNotice(mine, key(1), key(4), its, (k) => probes.get(k))).toBe(true);
  // We moved on without it ourselves.
  expect(owesExclusionNotice(mine, key(1), key(4), view(6, [1, 4]), () => undefined)).toBe(true);
  // We (nyc-1) froze and woke up still listing nyc-3, which went on with 3, 4, 5 without us: nyc-4
  // is not excluded, we are stale. Telling it so once split the primary side (CI, delivery-freeze).
  const stale = new Map([[key(3), its]]);
  expect(owesExclusionNotice(mine, key(1), key(4), its, (k) => stale.get(k))).toBe(false);
  expect(owesExclusionNotice(mine, key(1), key(4), its, () => undefined)).toBe(false); // no answer
  expect(owesExclusionNotice(mine, key(1), key(5), its, (k) => probes.get(k))).toBe(false); // a member
});

test("decideView: older, stale coordinator, excluded, not for us (joining), install", () => {
  const self = memberKey(member(2));
  const ours = view(6, [4, 5, 2]);
  expect(decideView(ours, view(5, [4, 5, 2, 3]), self, true)).toBe("older");
  expect(decideView(ours, view(9, [1, 5, 2]), self, true)).toBe("stale-coordinator");
  expect(decideView(ours, view(9, [3, 4, 5]), self, true)).toBe("excluded"); // an exclusion notice
  expect(decideView(ours, view(7, [4, 5]), self, true)).toBe("excluded"); // our coordinator dropped us
  expect(decideView(null, view(7, [4, 5]), self, false)).toBe("not-for-us");
  expect(decideView(ours, view(7, [4, 5, 2, 6]), self, true)).toBe("install");
});

test("sendTargets: everyone but us, only us, one member, or NOT_A_MEMBER", () => {
  const v = view(3, [1, 2, 3]);
  const self = memberKey(member(2));
  expect(sendTargets(v, null, self, false).targets.map((m) => m.name)).toEqual(["nyc-1", "nyc-3"]);
  expect(sendTargets(v, null, self, true).toSelf).toBe(true);
  expect(sendTargets(v, self, self, false)).toEqual({ targets: [], toSelf: true });
  expect(sendTargets(v, memberKey(member(3)), self, false).targets).toEqual([member(3)]);
  expect(() => sendTargets(v, memberKey(member(9)), self, false)).toThrow(/not a member/);
});
