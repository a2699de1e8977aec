// Whether the destination site of one of our lanes is reachable, since when it is not, and when
// it has been unreachable long enough to be declared gone. Pure: fed the lane, its route and the
// clock; the engine acts on the verdict (events, retransmission, dropping the backlog).
import type { RouteInfo } from "../control.js";
import type { LaneStats } from "./send-buffer.js";

export type LaneVerdict =
  /** Unreachable for goneMs: drop its backlog. */
  | { readonly kind: "gone"; readonly downMs: number }
  /** Just became unreachable (tell the application once). */
  | { readonly kind: "unreachable" }
  /** Reachable again after being unreachable: re-send everything. */
  | { readonly kind: "reachable" }
  /** Still unreachable: nothing to retransmit. */
  | { readonly kind: "down" }
  /** Reachable: retransmit what timed out. */
  | { readonly kind: "up" };

export class SiteReachability {
  /** site -> when we saw it unreachable first (ms) */
  readonly #since = new Map<string, number>();

  /**
   * @param neverSeenMs a lane whose site has no route at all is down once its oldest message is
   *   this old (the site never showed up on the bridge)
   * @param goneMs unreachable this long: gone
   */
  constructor(
    readonly neverSeenMs: number,
    readonly goneMs: number,
  ) {}

  /** Whether `site` is unreachable (since the "unreachable" verdict, until "reachable" or forget). */
  isUnreachable(site: string): boolean {
    return this.#since.has(site);
  }

  get anyUnreachable(): boolean {
    return this.#since.size > 0;
  }

  assess(lane: LaneStats, route: RouteInfo | undefined, now: number): LaneVerdict {
    const down =
      lane.messages > 0 &&
      (route ? !route.up : lane.oldestCreatedAt !== null && now - lane.oldestCreatedAt > this.neverSeenMs);
    const since = this.#since.get(lane.site);
    if (down && since !== undefined && now - since >= this.goneMs)
      return { kind: "gone", downMs: now - since };
    if (down && since === undefined) {
      this.#since.set(lane.site, now);
      return { kind: "unreachable" };
    }
    if (!down && since !== undefined && (route?.up || lane.messages === 0)) {
      this.#since.delete(lane.site);
      return { kind: "reachable" };
    }
    return route && !route.up ? { kind: "down" } : { kind: "up" };
  }

  forget(site: string): void {
    this.#since.delete(site);
  }
}
