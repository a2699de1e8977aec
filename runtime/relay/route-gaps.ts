// Failover gaps as a site master sees them: how long a route to a remote site stayed down, from
// the "route" event that took it down (after it had been up) to the one that brings it up again,
// while this member stays a site master. This is the time during which our site could not reach
// that site on the bridge (its site master crashed or moved, every router path was lost); messages
// sent meanwhile waited in the send buffers. Rare events, so a prom-client Histogram observes them
// directly. Bounded: at most `maxSites` sites are tracked.
import type { Histogram } from "prom-client";

/** Bounds of `relay_route_down_seconds`, seconds (failover is well under 1 s on a LAN). */
export const ROUTE_DOWN_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

export class RouteGaps {
  readonly #up = new Set<string>();
  readonly #downSince = new Map<string, number>();
  readonly #observe: (site: string, seconds: number) => void;
  readonly #maxSites: number;

  constructor(observe: (site: string, seconds: number) => void, maxSites = 64) {
    this.#observe = observe;
    this.#maxSites = maxSites;
  }

  /** A "route" event at `nowMs`. */
  route(site: string, up: boolean, nowMs: number): void {
    if (up) {
      const since = this.#downSince.get(site);
      if (since !== undefined) {
        this.#downSince.delete(site);
        this.#observe(site, Math.max(0, nowMs - since) / 1000);
      }
      if (this.#up.size < this.#maxSites || this.#up.has(site)) this.#up.add(site);
      return;
    }
    // Only a route seen up counts: the first "down" after start-up is no failover.
    if (this.#up.delete(site)) this.#downSince.set(site, nowMs);
  }

  /** We stopped (or started) acting as a site master: what we saw before does not carry over. */
  reset(): void {
    this.#up.clear();
    this.#downSince.clear();
  }

  /** Sites whose route is down since it was last seen up (for tests). */
  get pending(): number {
    return this.#downSince.size;
  }
}

/** Feeds a labelled `{site}` histogram. */
export function observeInto(h: Histogram<"site">): (site: string, seconds: number) => void {
  return (site, seconds) => h.observe({ site }, seconds);
}
