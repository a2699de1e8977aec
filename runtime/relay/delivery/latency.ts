// Cross-site delivery latency as the origin sees it: from send() (an Outgoing's createdAt) to the
// Stable report of its destination site that frees it from the send buffer. The send path is hot,
// so nothing here calls prom-client per message: `record` is a bucket search over a fixed, short
// bound list plus two integer increments; the Prometheus histogram is built from these counters at
// scrape time (`histogramSamples`). Cardinality is bounded by `maxSites`.

/** Upper bounds of the buckets, seconds (cumulative `le` in Prometheus; +Inf is implicit). */
export const STABLE_LATENCY_BUCKETS_S: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** One destination site's counters. `counts[i]` = observations in bucket i (not cumulative). */
export class LatencyCounts {
  /** Bounds in ms, so `record` compares integers of the same unit as the clock. */
  readonly #boundsMs: readonly number[];
  /** One per bound, plus the +Inf bucket at the end. */
  readonly counts: number[];
  sumMs = 0;
  count = 0;

  constructor(boundsMs: readonly number[]) {
    this.#boundsMs = boundsMs;
    this.counts = new Array<number>(boundsMs.length + 1).fill(0);
  }

  /** One message became stable `ms` after it was sent. */
  record(ms: number): void {
    const b = this.#boundsMs;
    let i = 0;
    while (i < b.length && ms > b[i]!) i++;
    this.counts[i]!++;
    this.sumMs += ms;
    this.count++;
  }
}

/** Per-site latency counters, at most `maxSites` sites (the others are not recorded, and counted). */
export class StableLatency {
  readonly boundsS: readonly number[];
  readonly #boundsMs: readonly number[];
  readonly #sites = new Map<string, LatencyCounts>();
  readonly #maxSites: number;
  /** Messages of sites beyond `maxSites` (not in any histogram). */
  unrecorded = 0;

  constructor(maxSites = 64, boundsS: readonly number[] = STABLE_LATENCY_BUCKETS_S) {
    for (let i = 0; i < boundsS.length; i++) {
      if (!(boundsS[i]! > 0) || (i > 0 && boundsS[i]! <= boundsS[i - 1]!)) {
        throw new Error("latency bucket bounds must be positive and increasing");
      }
    }
    this.boundsS = boundsS;
    this.#boundsMs = boundsS.map((s) => s * 1000);
    this.#maxSites = maxSites;
  }

  /** The counters of `site` (created on first use), or null past the site bound. Once per report. */
  forSite(site: string): LatencyCounts | null {
    let c = this.#sites.get(site);
    if (!c) {
      if (this.#sites.size >= this.#maxSites) return null;
      c = new LatencyCounts(this.#boundsMs);
      this.#sites.set(site, c);
    }
    return c;
  }

  /** Sites with counters, sorted. */
  sites(): string[] {
    return [...this.#sites.keys()].sort();
  }

  /** Cumulative buckets (`le` as Prometheus writes it), sum in seconds and count of one site. */
  histogramSamples(site: string): {
    buckets: { le: string; value: number }[];
    sumS: number;
    count: number;
  } | null {
    const c = this.#sites.get(site);
    if (!c) return null;
    let acc = 0;
    const buckets = this.boundsS.map((le, i) => {
      acc += c.counts[i]!;
      return { le: String(le), value: acc };
    });
    buckets.push({ le: "+Inf", value: c.count });
    return { buckets, sumS: c.sumMs / 1000, count: c.count };
  }
}
