// How views change: pure functions, one per membership event, so the rules are easy to read and test.
import { MAX_VIEW_MEMBERS, MAX_VIEW_SEQ, validViewSeq } from "./codec.js";
import { ClusterError } from "./errors.js";
import { compareMembers, type Member, makeView, memberKey, type View, viewHas } from "./member.js";

/**
 * The sequence number of a view that follows views `seqs` (their max + 1), or null when it would
 * exceed MAX_VIEW_SEQ: no view can follow, and the callers make none rather than one that cannot
 * be encoded (2^31 view changes: out of reach of a real site).
 */
export function nextSeq(...seqs: number[]): number | null {
  const next = Math.max(...seqs) + 1;
  return validViewSeq(next) ? next : null;
}

/**
 * The coordinator admits a joiner: appended at the end (youngest). An older incarnation with the
 * same name and site is dropped, since a restarted pod reuses its name but not its uuid. Null
 * when no view can follow (sequence exhausted, or MAX_VIEW_MEMBERS reached).
 */
export function viewWithJoiner(view: View, joiner: Member): View | null {
  const key = memberKey(joiner);
  if (view.members.some((m) => memberKey(m) === key)) return view;
  const kept = view.members.filter((m) => !(m.name === joiner.name && m.site === joiner.site));
  const seq = nextSeq(view.id.seq);
  if (seq === null || kept.length >= MAX_VIEW_MEMBERS) return null;
  return makeView(seq, [...kept, joiner]);
}

/**
 * A view without the given members (left or suspected); null when nobody would remain or no view
 * can follow (sequence exhausted).
 */
export function viewWithout(view: View, gone: ReadonlySet<string>): View | null {
  const kept = view.members.filter((m) => !gone.has(memberKey(m)));
  if (kept.length === view.members.length) return view;
  const seq = nextSeq(view.id.seq);
  return kept.length === 0 || seq === null ? null : makeView(seq, kept);
}

/**
 * Which of two views survives a merge: the one whose coordinator sorts first (compareMembers).
 * Returns negative when `a` wins.
 */
export function compareForMerge(a: View, b: View): number {
  return compareMembers(a.members[0]!, b.members[0]!);
}

/**
 * Merges the losing view into the winning one: the winner's members keep their order, the
 * loser's members not already present are appended in their order. No member is lost. The
 * sequence number exceeds both, so every member of both views accepts the result.
 */
export function mergeViews(winner: View, loser: View): View | null {
  const seen = new Set(winner.members.map((m) => memberKey(m)));
  const added = loser.members.filter((m) => !seen.has(memberKey(m)));
  const seq = nextSeq(winner.id.seq, loser.id.seq);
  if (seq === null || winner.members.length + added.length > MAX_VIEW_MEMBERS) return null;
  return makeView(seq, [...winner.members, ...added]);
}

/** True when `next` should replace `current` at a member (higher sequence numbers win). */
export function supersedes(next: View, current: View | null): boolean {
  return current === null || next.id.seq > current.id.seq;
}

/**
 * Whether a member in view `current` may install `next` from its coordinator (besides a higher
 * seq). Only three kinds of coordinator may change a member's view:
 * - its own coordinator;
 * - a member of its view taking over, which happens only once every member older than it is gone
 *   from the new view (the coordinator and the next oldest crashed or froze);
 * - a merge winner, whose view keeps every member of ours.
 * Anyone else is a stale coordinator — typically one that froze, missed the views installed
 * without it, and woke up removing members one by one from the view it remembers. Installing its
 * views would split the site behind its back; it merges back through discovery instead.
 */
export function acceptsView(current: View | null, next: View): boolean {
  if (current === null) return true;
  if (next.id.coordinator === current.id.coordinator) return true;
  const keys = current.members.map((m) => memberKey(m));
  const rank = keys.indexOf(next.id.coordinator);
  const nextKeys = new Set(next.members.map((m) => memberKey(m)));
  if (rank > 0 && keys.slice(0, rank).every((k) => !nextKeys.has(k))) return true;
  return keys.every((k) => nextKeys.has(k));
}

/**
 * A view from a coordinator that has our coordinator among its members but not us: our
 * coordinator went on without us (we froze through that view change or missed it). Acting on it
 * is always safe — we start alone and merge back — so it is accepted from a coordinator we would
 * not otherwise follow.
 */
export function isExclusionNotice(current: View | null, next: View, self: string): boolean {
  return current !== null && !viewHas(next, self) && viewHas(next, current.id.coordinator);
}

/**
 * Whether a coordinator (`self`, in view `mine`) should send a probed member our view as an
 * exclusion notice (see isExclusionNotice). The member is not in our view and believes it is in
 * `its`, coordinated either by us (we moved on without it) or by a member of our view that itself
 * reports being in our view (`viewOf`: its probe answer this round; it merged into ours or handed
 * over to us). A coordinator merely still *listed* in our view does not count: when we froze and
 * have not yet removed the members that went on without us, they are not excluded — we are stale,
 * and telling them so would break up the site's primary view.
 */
export function owesExclusionNotice(
  mine: View,
  self: string,
  probed: string,
  its: View,
  viewOf: (key: string) => View | null | undefined,
): boolean {
  if (viewHas(mine, probed)) return false;
  const coordinator = its.id.coordinator;
  if (coordinator === self) return true;
  return viewHas(mine, coordinator) && viewOf(coordinator)?.id.coordinator === self;
}

/**
 * Who a message goes to: `to` = null is every member but us (and us with `multicastToSelf`),
 * our own key is only us, any other key one member of the view (a ClusterError if it is none).
 */
export function sendTargets(
  view: View,
  to: string | null,
  self: string,
  multicastToSelf: boolean,
): { readonly targets: Member[]; readonly toSelf: boolean } {
  if (to === null)
    return { targets: view.members.filter((m) => memberKey(m) !== self), toSelf: multicastToSelf };
  if (to === self) return { targets: [], toSelf: true };
  const m = view.members.find((x) => memberKey(x) === to);
  if (!m) throw new ClusterError("NOT_A_MEMBER", `${to} is not a member of view ${view.id.seq}`);
  return { targets: [m], toSelf: false };
}

/**
 * Whether `sender` may send `next`: a view comes from its own coordinator, or from our
 * coordinator handing over as it leaves (its view without itself, taken over by a member of our
 * view). So the coordinator of any view we install is the peer that sent it over a connection
 * whose handshake it completed (authenticated, with a cluster secret), or a member of our view:
 * a peer cannot name a stranger coordinator, nor forge an exclusion notice from our coordinator.
 */
export function fromItsCoordinator(current: View | null, next: View, sender: string): boolean {
  if (sender === next.id.coordinator) return true;
  return (
    current !== null &&
    current.id.coordinator === sender &&
    !viewHas(next, sender) &&
    viewHas(current, next.id.coordinator)
  );
}

/** Why a view is unusable whoever sent it (a wire-valid view can still be one), or null. */
export function invalidView(next: View, site: string): string | null {
  if (!validViewSeq(next.id.seq)) return `seq ${next.id.seq} outside 1..${MAX_VIEW_SEQ}`;
  if (next.members.length === 0 || next.members.length > MAX_VIEW_MEMBERS) return "size out of range";
  if (next.id.coordinator !== memberKey(next.members[0]!)) return "coordinator is not its first member";
  const foreign = next.members.find((m) => m.site !== site);
  if (foreign) return `member ${memberKey(foreign)} of site "${foreign.site}"`;
  if (new Set(next.members.map((m) => memberKey(m))).size !== next.members.length) return "a member twice";
  return null;
}

/** What a member does with a view its peer sent (see acceptsView and isExclusionNotice). */
export type ViewDecision =
  | "invalid"
  | "not-from-coordinator"
  | "older"
  | "stale-coordinator"
  | "not-for-us"
  | "excluded"
  | "install";

/**
 * `sender` (memberKey of the peer the view came from) and `site` (ours) are checked first:
 * invalidView, fromItsCoordinator. Total: any view and sender yield a decision.
 */
export function decideView(
  current: View | null,
  next: View,
  self: string,
  joined: boolean,
  sender: string,
  site: string,
): ViewDecision {
  if (invalidView(next, site) !== null) return "invalid";
  if (!fromItsCoordinator(current, next, sender)) return "not-from-coordinator";
  if (!supersedes(next, current)) return "older";
  if (joined && !acceptsView(current, next) && !isExclusionNotice(current, next, self))
    return "stale-coordinator";
  if (!viewHas(next, self)) return joined ? "excluded" : "not-for-us";
  return "install";
}
