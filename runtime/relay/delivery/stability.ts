// Site-master side of the delivery guarantee: the members of our site report how far they have
// delivered each origin, and which view they have installed; an origin's message is stable here
// once every member of the current view has delivered it and reported from this very view (a
// report from a member that has not installed our view yet, or follows another coordinator, does
// not count). Pure: the channel feeds it reports and views and sends what it returns.
import type { Watermark } from "./receive-window.js";

/** How often an unchanged stable position is repeated to an origin that still asks (ms). */
export const DEFAULT_STABLE_REPEAT_MS = 500;
/** Origins tracked at once (the longest idle is forgotten beyond it). */
export const DEFAULT_MAX_TRACKED_ORIGINS = 4096;

interface OriginStability {
  readonly ref: Omit<Watermark, "seq">;
  sent: number;
  sentAt: number;
  touched: number;
}

export class StabilityTracker {
  readonly #repeatMs: number;
  readonly #maxOrigins: number;
  /** member key -> incarnation -> delivered seq */
  readonly #reports = new Map<string, Map<string, number>>();
  /** member key -> tag of the view its latest report came from */
  readonly #tags = new Map<string, string>();
  #view = "";
  readonly #origins = new Map<string, OriginStability>();
  readonly #pending = new Set<string>();
  #members: string[] = [];

  constructor(repeatMs = DEFAULT_STABLE_REPEAT_MS, maxOrigins = DEFAULT_MAX_TRACKED_ORIGINS) {
    this.#repeatMs = repeatMs;
    this.#maxOrigins = maxOrigins;
  }

  /** The current view (member keys, view tag). Reports of members that left are forgotten. */
  setMembers(keys: readonly string[], view = ""): void {
    this.#members = [...keys];
    this.#view = view;
    const keep = new Set(keys);
    for (const k of this.#reports.keys()) if (!keep.has(k)) this.#reports.delete(k);
    for (const k of this.#tags.keys()) if (!keep.has(k)) this.#tags.delete(k);
    // A member left: what it held back no longer counts, so every origin may have become stable.
    for (const k of this.#origins.keys()) this.#pending.add(k);
  }

  /** A member's report, sent from view `view` (its tag). */
  report(member: string, marks: readonly Watermark[], now: number, view = ""): void {
    if (!this.#members.includes(member)) return;
    this.#tags.set(member, view);
    let table = this.#reports.get(member);
    if (!table) {
      table = new Map();
      this.#reports.set(member, table);
    }
    for (const m of marks) {
      table.set(m.incarnation, m.seq);
      let o = this.#origins.get(m.incarnation);
      if (!o) {
        this.#makeRoom();
        o = {
          ref: { site: m.site, name: m.name, incarnation: m.incarnation },
          sent: 0,
          sentAt: 0,
          touched: now,
        };
        this.#origins.set(m.incarnation, o);
      }
      o.touched = now;
      this.#pending.add(m.incarnation);
    }
  }

  /** True when every member of the current view has reported from it. */
  get complete(): boolean {
    return this.#members.length > 0 && this.#members.every((k) => this.#tags.get(k) === this.#view);
  }

  /**
   * Lowest delivered seq of `incarnation` over the current view, or undefined if someone has not
   * reported it, or has not reported from the current view yet.
   */
  stableOf(incarnation: string): number | undefined {
    if (this.#members.length === 0 || !this.complete) return undefined;
    let min = Number.POSITIVE_INFINITY;
    for (const k of this.#members) {
      const seq = this.#reports.get(k)?.get(incarnation);
      if (seq === undefined) return undefined;
      if (seq < min) min = seq;
    }
    return min;
  }

  /**
   * Stable positions to send now: those that advanced, and those unchanged but asked about again
   * (a member re-reported, e.g. after a retransmission) once `repeatMs` passed.
   */
  take(now: number): Watermark[] {
    const out: Watermark[] = [];
    for (const inc of this.#pending) {
      const o = this.#origins.get(inc);
      const seq = this.stableOf(inc);
      if (!o || seq === undefined || seq === 0) continue;
      if (seq > o.sent || now - o.sentAt >= this.#repeatMs) {
        o.sent = Math.max(o.sent, seq);
        o.sentAt = now;
        out.push({ ...o.ref, seq });
      }
    }
    this.#pending.clear();
    return out;
  }

  /** Forgets origins not heard of since `before` (a sender gone for good). */
  forgetIdle(before: number): void {
    for (const [k, o] of this.#origins) {
      if (o.touched < before) this.#forget(k);
    }
  }

  get origins(): number {
    return this.#origins.size;
  }

  #forget(inc: string): void {
    this.#origins.delete(inc);
    this.#pending.delete(inc);
    for (const t of this.#reports.values()) t.delete(inc);
  }

  #makeRoom(): void {
    while (this.#origins.size >= this.#maxOrigins) {
      let oldest: string | undefined;
      let at = Number.POSITIVE_INFINITY;
      for (const [k, o] of this.#origins) {
        if (o.touched < at) {
          at = o.touched;
          oldest = k;
        }
      }
      if (oldest === undefined) return;
      this.#forget(oldest);
    }
  }
}
