// Receiver side of the delivery guarantee: one window per origin (one incarnation of one sender)
// that turns the origin's lane towards our site into exactly-once, in-order delivery. Pure: no
// I/O, no timers; the channel feeds it envelopes and sends its reports.
//
// Rules (docs/DELIVERY.md):
// - deliver only lane seq = next; hold back later ones (bounded); drop earlier ones (duplicates);
// - the first envelope of an unknown origin sets next = its `low` (the oldest message the origin
//   still buffers for us): everything below was delivered by every member of our site's view
//   when it became stable, so a member without state for that origin was not one of them;
// - `low` above next (we are behind what the origin still keeps) moves next up to `low`, for
//   the same reason — and that range is reported as missed (`AcceptResult.missed`): it can only
//   happen to a member that was excluded from a primary view of our site while those messages
//   became stable (frozen, partitioned away), and the application is told, never left to guess.

/** Bounds of the receive windows. */
export interface ReceiveLimits {
  /** Out-of-order envelopes held per origin. @default 4096 */
  readonly maxHeldPerOrigin: number;
  /** Bytes held per origin. @default 16 MiB */
  readonly maxHeldBytesPerOrigin: number;
  /** Origins tracked at once; beyond it the longest idle one is forgotten. @default 4096 */
  readonly maxOrigins: number;
  /** Bytes held back over all origins. @default 64 MiB */
  readonly maxHeldBytesTotal: number;
}

export const DEFAULT_RECEIVE_LIMITS: ReceiveLimits = {
  maxHeldPerOrigin: 4096,
  maxHeldBytesPerOrigin: 16 * 1024 * 1024,
  maxOrigins: 4096,
  maxHeldBytesTotal: 64 * 1024 * 1024,
};

/** One origin's delivered position, as reported to the site masters. */
export interface Watermark {
  readonly site: string;
  readonly name: string;
  readonly incarnation: string;
  /** Every lane seq <= this one has been delivered here. */
  readonly seq: number;
}

export interface OriginRef {
  readonly site: string;
  readonly name: string;
  readonly incarnation: string;
}

export type AcceptOutcome = "delivered" | "held" | "duplicate" | "overflow";

/** Lane seqs an existing window skipped because the origin no longer keeps them (inclusive). */
export interface MissedRange {
  readonly origin: OriginRef;
  readonly from: number;
  readonly to: number;
}

export interface AcceptResult<T> {
  readonly outcome: AcceptOutcome;
  /** Items now deliverable, in order (empty unless outcome is "delivered" or a jump freed some). */
  readonly deliver: T[];
  /** Set when this envelope's `low` made the window skip messages it never got. */
  readonly missed?: MissedRange;
}

interface OriginWindow<T> {
  readonly ref: OriginRef;
  next: number;
  readonly held: Map<number, { item: T; size: number }>;
  heldBytes: number;
  lastHeard: number;
}

export interface ReceiveStats {
  readonly origins: number;
  readonly held: number;
  readonly heldBytes: number;
  readonly duplicates: number;
  readonly overflows: number;
  /** Lane messages skipped by jumps to a higher `low` (each also reported as a MissedRange). */
  readonly missed: number;
}

export class ReceiveWindows<T> {
  readonly #limits: ReceiveLimits;
  readonly #windows = new Map<string, OriginWindow<T>>();
  readonly #dirty = new Set<string>();
  #duplicates = 0;
  #overflows = 0;
  #heldBytesTotal = 0;
  #missed = 0;

  constructor(limits: Partial<ReceiveLimits> = {}) {
    this.#limits = { ...DEFAULT_RECEIVE_LIMITS, ...limits };
  }

  /** Takes lane envelope `seq` (with the origin's `low`) from `origin`. */
  accept(origin: OriginRef, seq: number, low: number, item: T, size: number, now: number): AcceptResult<T> {
    let w = this.#windows.get(origin.incarnation);
    if (!w) {
      this.#forgetOtherIncarnations(origin);
      this.#makeRoom();
      w = { ref: origin, next: Math.max(1, low), held: new Map(), heldBytes: 0, lastHeard: now };
      this.#windows.set(origin.incarnation, w);
    }
    w.lastHeard = now;
    const deliver: T[] = [];
    let missed: MissedRange | undefined;
    // Behind what the origin still keeps: those messages became stable without us (see above).
    if (low > w.next) missed = this.#jump(w, low, deliver);
    const result = (outcome: AcceptOutcome): AcceptResult<T> =>
      missed ? { outcome, deliver, missed } : { outcome, deliver };
    if (seq < w.next) {
      this.#duplicates++;
      // Re-report: the origin retransmits because it has not heard that we have it.
      this.#dirty.add(origin.incarnation);
      return result(deliver.length > 0 ? "delivered" : "duplicate");
    }
    if (seq === w.next) {
      deliver.push(item);
      w.next++;
      this.#drain(w, deliver);
      this.#dirty.add(origin.incarnation);
      return result("delivered");
    }
    if (w.held.has(seq)) {
      this.#duplicates++;
      return result(deliver.length > 0 ? "delivered" : "duplicate");
    }
    if (
      w.held.size >= this.#limits.maxHeldPerOrigin ||
      w.heldBytes + size > this.#limits.maxHeldBytesPerOrigin ||
      this.#heldBytesTotal + size > this.#limits.maxHeldBytesTotal
    ) {
      // Not kept: the origin still has it and retransmits it once the gap is filled.
      this.#overflows++;
      return result(deliver.length > 0 ? "delivered" : "overflow");
    }
    w.held.set(seq, { item, size });
    w.heldBytes += size;
    this.#heldBytesTotal += size;
    return result(deliver.length > 0 ? "delivered" : "held");
  }

  /**
   * A lane mark from `origin`: it keeps nothing below `low`. Only a window we already have moves
   * (a jump is a gap, as in accept); an unknown origin gets no state from a mark.
   */
  advance(origin: OriginRef, low: number, now: number): AcceptResult<T> {
    const w = this.#windows.get(origin.incarnation);
    const deliver: T[] = [];
    if (!w) return { outcome: "duplicate", deliver };
    w.lastHeard = now;
    if (low <= w.next) return { outcome: "duplicate", deliver };
    const missed = this.#jump(w, low, deliver);
    return { outcome: deliver.length > 0 ? "delivered" : "duplicate", deliver, missed };
  }

  /** Next lane seq expected from this incarnation (undefined when unknown). */
  nextOf(incarnation: string): number | undefined {
    return this.#windows.get(incarnation)?.next;
  }

  /** Watermarks changed since the last call (or all of them with `all`), and clears the dirty set. */
  takeReport(all = false): Watermark[] {
    const keys = all ? [...this.#windows.keys()] : [...this.#dirty];
    this.#dirty.clear();
    const out: Watermark[] = [];
    for (const k of keys) {
      const w = this.#windows.get(k);
      if (w) out.push({ ...w.ref, seq: w.next - 1 });
    }
    return out;
  }

  get hasReport(): boolean {
    return this.#dirty.size > 0;
  }

  /** Drops the state of every origin for which `keep` says false (e.g. a sender that left). */
  retain(keep: (ref: OriginRef, lastHeard: number) => boolean): number {
    let dropped = 0;
    for (const [k, w] of this.#windows) {
      if (!keep(w.ref, w.lastHeard)) {
        this.#drop(k, w);
        dropped++;
      }
    }
    return dropped;
  }

  stats(): ReceiveStats {
    let held = 0;
    for (const w of this.#windows.values()) held += w.held.size;
    return {
      origins: this.#windows.size,
      held,
      heldBytes: this.#heldBytesTotal,
      duplicates: this.#duplicates,
      overflows: this.#overflows,
      missed: this.#missed,
    };
  }

  #drain(w: OriginWindow<T>, out: T[]): void {
    for (;;) {
      const h = w.held.get(w.next);
      if (!h) return;
      this.#unhold(w, w.next, h.size);
      out.push(h.item);
      w.next++;
    }
  }

  /** Moves `w` up to `low` (> next): what lies between is missed; held ones from `low` on flow. */
  #jump(w: OriginWindow<T>, low: number, deliver: T[]): MissedRange {
    for (const [s, h] of w.held) if (s < low) this.#unhold(w, s, h.size);
    const missed = { origin: w.ref, from: w.next, to: low - 1 };
    this.#missed += low - w.next;
    w.next = low;
    this.#dirty.add(w.ref.incarnation);
    this.#drain(w, deliver);
    return missed;
  }

  #unhold(w: OriginWindow<T>, seq: number, size: number): void {
    w.held.delete(seq);
    w.heldBytes -= size;
    this.#heldBytesTotal -= size;
  }

  #drop(key: string, w: OriginWindow<T>): void {
    this.#heldBytesTotal -= w.heldBytes;
    this.#windows.delete(key);
    this.#dirty.delete(key);
  }

  /** A new incarnation of a sender means the old one is gone: its gaps will never be filled. */
  #forgetOtherIncarnations(origin: OriginRef): void {
    for (const [k, w] of this.#windows) {
      if (w.ref.site === origin.site && w.ref.name === origin.name && k !== origin.incarnation) {
        this.#drop(k, w);
      }
    }
  }

  #makeRoom(): void {
    while (this.#windows.size >= this.#limits.maxOrigins) {
      let oldest: string | undefined;
      let at = Number.POSITIVE_INFINITY;
      for (const [k, w] of this.#windows) {
        if (w.lastHeard < at) {
          at = w.lastHeard;
          oldest = k;
        }
      }
      if (oldest === undefined) return;
      this.#drop(oldest, this.#windows.get(oldest)!);
    }
  }
}
