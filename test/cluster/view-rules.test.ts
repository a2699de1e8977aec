// Which coordinator may change a member's view (acceptsView): its own, one taking over after every
// older member is gone, or a merge winner keeping all of the member's view — never a stale
// coordinator that froze and wakes up removing members from the view it remembers.
import { expect, test } from "@jest/globals";
import { encodeFrame, MAX_VIEW_SEQ } from "../../runtime/cluster/codec.js";
import { memberKey } from "../../runtime/cluster/member.js";
import {
  acceptsView,
  decideView,
  isExclusionNotice,
  mergeViews,
  nextSeq,
  owesExclusionNotice,
  sendTargets,
  viewWithJoiner,
  viewWithout,
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
  expect(acceptsView(ours, mergeViews(view(2, [1]), ours)!)).toBe(true);
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
  // Each view as its coordinator (members[0]) sends it.
  const decide = (cur: typeof ours | null, next: typeof ours, joined = true) =>
    decideView(cur, next, self, joined, next.id.coordinator, "nyc");
  expect(decide(ours, view(5, [4, 5, 2, 3]))).toBe("older");
  expect(decide(ours, view(9, [1, 5, 2]))).toBe("stale-coordinator");
  expect(decide(ours, view(9, [3, 4, 5]))).toBe("excluded"); // an exclusion notice
  expect(decide(ours, view(7, [4, 5]))).toBe("excluded"); // our coordinator dropped us
  expect(decide(null, view(7, [4, 5]), false)).toBe("not-for-us");
  expect(decide(ours, view(7, [4, 5, 2, 6]))).toBe("install");
});

// The attack (a fake member's VIEW made it coordinator) and its variants: a view counts
// only from its own coordinator (or ours handing over), and only when valid for our site.
test("decideView: a view relayed by another peer, forged notices, foreign members, bad seq", () => {
  const self = memberKey(member(2));
  const ours = view(6, [4, 5, 2]);
  const k = (i: number) => memberKey(member(i));
  // Member 9 sends a view naming 1 coordinator: refused, whoever 1 is.
  expect(decideView(ours, view(7, [1, 4, 5, 2]), self, true, k(9), "nyc")).toBe("not-from-coordinator");
  // A forged exclusion notice "from" our coordinator 4, sent by 9: refused.
  expect(decideView(ours, view(7, [4, 5]), self, true, k(9), "nyc")).toBe("not-from-coordinator");
  // Our coordinator 4 handing over as it leaves: the view without it, 5 takes over.
  expect(decideView(ours, view(7, [5, 2]), self, true, k(4), "nyc")).toBe("install");
  // ...but not to someone outside our view, and not by a member that is not our coordinator.
  expect(decideView(ours, view(7, [9, 5, 2]), self, true, k(4), "nyc")).toBe("not-from-coordinator");
  expect(decideView(ours, view(7, [4, 2]), self, true, k(5), "nyc")).toBe("not-from-coordinator");
  // A member of another site, a seq out of range: invalid whoever sends it.
  const foreign = { ...view(7, [4, 5, 2]), members: [...ours.members, { ...member(7), site: "sfc" }] };
  expect(decideView(ours, foreign, self, true, k(4), "nyc")).toBe("invalid");
  for (const seq of [0, -1, Number.NaN, 2 ** 31, 2 ** 32 - 1, 1.5, Number.POSITIVE_INFINITY]) {
    expect(decideView(ours, view(seq, [4, 5, 2]), self, true, k(4), "nyc")).toBe("invalid");
  }
  // Joining (no view yet): only a view's own coordinator counts.
  expect(decideView(null, view(3, [1, 2]), self, false, k(9), "nyc")).toBe("not-from-coordinator");
  expect(decideView(null, view(3, [1, 2]), self, false, k(1), "nyc")).toBe("install");
});

test("no view follows MAX_VIEW_SEQ: the rules return null instead of an unencodable view", () => {
  const top = view(MAX_VIEW_SEQ, [1, 2]);
  expect(nextSeq(MAX_VIEW_SEQ)).toBeNull();
  expect(nextSeq(3, 7)).toBe(8);
  expect(viewWithJoiner(top, member(3))).toBeNull();
  expect(viewWithout(top, new Set([memberKey(member(2))]))).toBeNull();
  expect(mergeViews(view(1, [0]), top)).toBeNull();
  expect(() => encodeFrame({ type: "view", view: top })).not.toThrow();
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
