// Merge after a partition: a coordinator's discovery rounds find members in another view of the
// same cluster and send that view's coordinator a MERGE_REQ; the coordinator that sorts first
// absorbs the other view (view-rules.ts mergeViews).
import type { Logger } from "../observability/log.js";
import { encodeFrame } from "./codec.js";
import type { ViewOwner } from "./join.js";
import type { LinkPool } from "./link-pool.js";
import { makeView, memberKey, type View, viewHas } from "./member.js";
import type { Prober } from "./probe.js";
import { compareForMerge, mergeViews, nextSeq, owesExclusionNotice } from "./view-rules.js";

/** What the merge needs, besides the views. */
export interface MergeOwner extends ViewOwner {
  /** This member's memberKey. */
  readonly key: string;
  /** In a view (the probes of a member that is still joining belong to its join). */
  joined(): boolean;
  /** A member of our view follows another coordinator: suspect it (see discoveryRound). */
  stray(key: string): void;
}

export class Merger {
  readonly #owner: MergeOwner;
  readonly #links: LinkPool;
  readonly #probes: Prober;
  readonly #log: Logger;
  #discovering = false;
  /** Members of our view whose last probe answer named another coordinator. */
  #strays = new Set<string>();

  constructor(owner: MergeOwner, links: LinkPool, probes: Prober, log: Logger) {
    this.#owner = owner;
    this.#links = links;
    this.#probes = probes;
    this.#log = log;
  }

  /** One discovery round (one at a time): a coordinator asks every other view it finds to merge. */
  async discoveryRound(): Promise<void> {
    // Only a coordinator probes: a member's probe answers count as signs of life, and would keep a
    // peer that left our view for another one "heard" forever (it stops heartbeating us, so it is
    // suspected, and whoever is then oldest coordinates and merges).
    if (this.#discovering || !this.#owner.joined() || !this.#owner.coordinated()) return;
    this.#discovering = true;
    try {
      const found = await this.#probes.probeAll();
      const mine = this.#owner.coordinated();
      if (!mine) return;
      const asked = new Set<string>();
      const answered = new Map(found.map((p) => [memberKey(p.member), p.view]));
      const viewOf = (key: string) => answered.get(key);
      const strays = new Set<string>();
      let caughtUp = false;
      for (const p of found) {
        const other = p.view;
        if (!other) continue;
        const key = memberKey(p.member);
        if (viewHas(mine, key) && other.id.coordinator !== this.#owner.key) {
          // A member of our view that reports another coordinator's view no longer follows ours
          // (we froze and it went on, or a forged view moved it). When that view still lists us,
          // its heartbeats keep it alive here, and we ignore merges with members of our view:
          // suspect it when it says so twice in a row, then the views merge normally.
          if (this.#strays.has(key)) {
            this.#log.warn(
              { member: key, its: other.id.coordinator, itsSeq: other.id.seq },
              "a member of our view follows another coordinator: suspecting it",
            );
            this.#owner.stray(key);
          } else strays.add(key);
          continue;
        }
        if (viewHas(mine, key) && other.id.seq > mine.id.seq && !caughtUp) {
          // "Our" view with a higher seq than any we made: forged (an unauthenticated peer handed
          // over to us). Our views would look older to that member forever: re-issue ours above it.
          caughtUp = true;
          const seq = nextSeq(other.id.seq);
          if (seq !== null) {
            this.#log.warn(
              { member: key, itsSeq: other.id.seq, seq },
              "a member is ahead of our view: re-issuing it",
            );
            this.#owner.broadcast(makeView(seq, mine.members));
            return;
          }
        }
        if (owesExclusionNotice(mine, this.#owner.key, memberKey(p.member), other, viewOf)) {
          // It believes it is in a view whose coordinator has since moved on without it (it froze
          // through the change, or missed it), and it keeps hearing our probes, so it would wait
          // forever. Our view tells it it is excluded: it starts alone and merges back.
          this.#log.info(
            { member: memberKey(p.member), its: other.id.seq },
            "telling a member it was excluded",
          );
          this.#links.write(this.#links.link(p.member), encodeFrame({ type: "view", view: mine }));
          continue;
        }
        if (other.id.coordinator === this.#owner.key) continue;
        if (viewHas(mine, other.id.coordinator) || viewHas(mine, memberKey(p.member))) continue;
        if (asked.has(other.id.coordinator)) continue;
        asked.add(other.id.coordinator);
        this.#log.info(
          { other: other.id.coordinator, otherSeq: other.id.seq, otherSize: other.members.length },
          "found another view of this cluster: merging",
        );
        this.#askToMerge(other, mine);
      }
      this.#strays = strays;
    } finally {
      this.#discovering = false;
    }
  }

  /**
   * A coordinator received another coordinator's view. The view whose coordinator sorts first
   * absorbs the other (mergeViews); a losing receiver answers with its own view so the winner
   * merges, whichever side discovered the other first.
   */
  onRequest(other: View): void {
    const mine = this.#owner.coordinated();
    if (!mine) return;
    if (other.id.coordinator === this.#owner.key || viewHas(mine, other.id.coordinator)) return;
    if (compareForMerge(mine, other) < 0) {
      const merged = mergeViews(mine, other);
      if (!merged) {
        this.#log.error(
          { seq: mine.id.seq, otherSeq: other.id.seq, other: other.id.coordinator },
          "cannot merge: view sequence or size exhausted",
        );
        return;
      }
      this.#log.info(
        { seq: merged.id.seq, size: merged.members.length, absorbed: other.id.coordinator },
        "merging views",
      );
      this.#owner.broadcast(merged);
    } else {
      this.#askToMerge(other, mine);
    }
  }

  /** MERGE_REQ with our view, to the coordinator of `other`. */
  #askToMerge(other: View, mine: View): void {
    this.#links.write(this.#links.link(other.members[0]!), encodeFrame({ type: "merge-req", view: mine }));
  }
}
