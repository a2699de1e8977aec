// Site-master side of the delivery guarantee: the members of our site report how far they have
// delivered each origin; an origin's message is stable here once every member of the current view
// has delivered it. Pure: the channel feeds it reports and views and sends what it returns.
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
  readonly #origins = new Map<string, OriginStability>();
  readonly #pending = new Set<string>();
  #members: string[] = [];

  constructor(repeatMs = DEFAULT_STABLE_REPEAT_MS, maxOrigins = DEFAULT_MAX_TRACKED_ORIGINS) {
    this.#repeatMs = repeatMs;
    this.#maxOrigins = maxOrigins;
  }

  /** The current view (member keys). Reports of members that left are forgotten. */
  setMembers(keys: readonly string[]): void {
    this.#members = [...keys];
    const keep = new Set(keys);
    for (const k of this.#reports.keys()) if (!keep.has(k)) this.#reports.delete(k);
    // A member left: what it held back no longer counts, so every origin may have become stable.
    for (const k of this.#origins.keys()) this.#pending.add(k);
  }

  /** A member's report. */
  report(member: string, marks: readonly Watermark[], now: number): void {
    if (!this.#members.includes(member)) return;
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

  /** Lowest delivered seq of `incarnation` over the current view, or undefined if someone has not reported. */
  stableOf(incarnation: string): number | undefined {
    if (this.#members.length === 0) return undefined;
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
