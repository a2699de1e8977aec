// Which of our site's views may certify stability (docs/DELIVERY.md, "Partitions"). A site master
// reports messages stable only from a *primary* view: one that holds a majority of the last
// primary view this member installed (exactly half counts when it keeps that view's oldest
// member). Two sides of a partition can never both be primary relative to the same view, so a
// minority side (a frozen site master that wakes up alone, half of a split site) never tells a
// sender to drop what the other side has not delivered. Pure: fed views, returns a verdict.
import { memberKey, type View } from "../../cluster/member.js";

export class PrimaryViewTracker {
  /** Keys of the last primary view known to be installed by its members, oldest first. */
  #last: readonly string[] | null = null;
  /** Our own (coordinator) view, primary but not yet confirmed by its members' reports. */
  #unconfirmed: readonly string[] | null = null;
  #primary = false;

  /**
   * Takes the view just installed and says whether it is primary.
   * - The first view a member sees is primary: a member that joins is admitted into the site's
   *   view by its coordinator, and one that starts alone has nothing to contradict it.
   * - A view from another coordinator (ours, one taking over, a merge winner: the cluster only
   *   installs those) becomes the reference for the next one when it is primary.
   * - A view we computed ourselves as coordinator becomes the reference only once every member
   *   has reported from it (`confirm`): a coordinator that froze and wakes up removing members one
   *   at a time from the view it remembers must not walk itself, view by view, into "primary".
   */
  observe(view: View, ownView = false): boolean {
    const keys = view.members.map((m) => memberKey(m));
    const last = this.#last;
    this.#unconfirmed = null;
    if (last === null) {
      this.#last = keys;
      this.#primary = true;
    } else if (isPrimarySuccessor(last, keys)) {
      this.#primary = true;
      if (ownView) this.#unconfirmed = keys;
      else this.#last = keys;
    } else {
      this.#primary = false;
    }
    return this.#primary;
  }

  /** Every member of the current view has reported from it: it is the reference from now on. */
  confirm(): void {
    if (this.#unconfirmed) this.#last = this.#unconfirmed;
    this.#unconfirmed = null;
  }

  /** Whether the current view is primary. */
  get primary(): boolean {
    return this.#primary;
  }

  /** Members of the reference view (oldest first). */
  get lastPrimary(): readonly string[] {
    return this.#last ?? [];
  }
}

/** True when `next` holds a majority of `last`, or exactly half of it including its oldest member. */
export function isPrimarySuccessor(last: readonly string[], next: readonly string[]): boolean {
  if (last.length === 0) return true;
  const nextSet = new Set(next);
  let kept = 0;
  for (const k of last) if (nextSet.has(k)) kept++;
  if (2 * kept > last.length) return true;
  return 2 * kept === last.length && nextSet.has(last[0]!);
}
