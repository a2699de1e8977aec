// Site-master side of the delivery guarantee: takes the members' reports (Acks, each bound to the
// view it was sent from), decides with the primary-view rule whether our view may certify at all,
// and hands out the Stable positions to send. Only a primary view whose members have all reported
// from it certifies (docs/DELIVERY.md, "Partitions and frozen members"). Pure: no I/O, no timers.
import { memberKey, type View } from "../../cluster/member.js";
import type { Logger } from "../../observability/log.js";
import { PrimaryViewTracker } from "./primary-view.js";
import type { Watermark } from "./receive-window.js";
import { StabilityTracker } from "./stability.js";

export class StabilityCertifier {
  readonly #stability = new StabilityTracker();
  readonly #primary = new PrimaryViewTracker();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Whether our current view is primary (may certify). */
  get primary(): boolean {
    return this.#primary.primary;
  }

  /** Our site's view changed; `own` when we computed it (we are its coordinator). */
  onView(view: View, own: boolean, tag: string): void {
    const wasPrimary = this.#primary.primary;
    if (!this.#primary.observe(view, own) && wasPrimary) {
      this.#log.warn(
        { members: view.members.length, lastPrimary: this.#primary.lastPrimary.length },
        "our view is not primary (a minority of the last primary view): no stability reported from it",
      );
    }
    this.#stability.setMembers(
      view.members.map((m) => memberKey(m)),
      tag,
    );
  }

  /** A member's report (ours included), sent from the view tagged `tag`. */
  report(member: string, marks: readonly Watermark[], now: number, tag: string): void {
    this.#stability.report(member, marks, now, tag);
  }

  /** The Stable positions to send now: none unless our view is primary and fully reported. */
  take(now: number): Watermark[] {
    if (!this.#primary.primary) return [];
    if (this.#stability.complete) this.#primary.confirm();
    return this.#stability.take(now);
  }

  /** Forgets origins not heard of since `before`. */
  forgetIdle(before: number): void {
    this.#stability.forgetIdle(before);
  }
}
