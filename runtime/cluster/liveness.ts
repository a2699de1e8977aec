// Liveness of the members of the installed view, kept apart from sockets so it can be tested with
// a fake clock (modelled on runtime/tunnel/heartbeat.ts): when we last heard from each member, and
// which members are suspected. Any frame from a member but probe traffic (INFO_REQ, INFO) counts
// as life; a member nothing was heard from for more than suspectTimeoutMs is overdue, and the
// owner decides whether to suspect it.
import { memberKey, type View, viewHas } from "./member.js";

export class Liveness {
  readonly #suspectTimeoutMs: number;
  readonly #now: () => number;
  readonly #lastHeard = new Map<string, number>();
  readonly #suspects = new Set<string>();

  constructor(suspectTimeoutMs: number, now: () => number = Date.now) {
    this.#suspectTimeoutMs = suspectTimeoutMs;
    this.#now = now;
  }

  /** The members suspected now (a view without them is what the oldest other member installs). */
  get suspects(): ReadonlySet<string> {
    return this.#suspects;
  }

  /**
   * A view was installed: a member that is new to it (not in `previous`) starts its clock now,
   * and members that are not in it are forgotten, suspicions included.
   */
  installed(view: View, previous: View | null): void {
    const now = this.#now();
    for (const m of view.members) {
      const k = memberKey(m);
      if (!this.#lastHeard.has(k) || !(previous && viewHas(previous, k))) this.#lastHeard.set(k, now);
    }
    for (const k of [...this.#suspects]) if (!viewHas(view, k)) this.#suspects.delete(k);
    for (const k of [...this.#lastHeard.keys()]) if (!viewHas(view, k)) this.#lastHeard.delete(k);
  }

  /** Something arrived from `key` (ignored for a member of no installed view). */
  heard(key: string): void {
    if (this.#lastHeard.has(key)) this.#lastHeard.set(key, this.#now());
  }

  /** How long nothing was heard from `key` when that is more than suspectTimeoutMs, else null. */
  overdue(key: string): number | null {
    const now = this.#now();
    const silent = now - (this.#lastHeard.get(key) ?? now);
    return silent > this.#suspectTimeoutMs ? silent : null;
  }

  isSuspected(key: string): boolean {
    return this.#suspects.has(key);
  }

  suspect(key: string): void {
    this.#suspects.add(key);
  }

  /** No longer suspected (heard from again, or admitted anew). */
  clear(key: string): void {
    this.#suspects.delete(key);
  }
}

/**
 * When the coordinator is suspected, the oldest member not suspected takes over (it installs the
 * view without the suspects). A member waiting for that successor times it: a successor that has
 * not done so `graceMs` after this member started waiting is not acting as the coordinator of our
 * view (it follows another view, e.g. one a stranger forged in open mode, or it froze), and is
 * suspected in turn, so that the waiting stops with this member taking over.
 */
export class TakeoverWatch {
  readonly #graceMs: number;
  readonly #now: () => number;
  #awaited: string | null = null;
  #since = 0;

  constructor(graceMs: number, now: () => number = Date.now) {
    this.#graceMs = graceMs;
    this.#now = now;
  }

  /**
   * `successor`: who this member waits for now (null: nobody). Returns it once it has been the
   * same successor for more than graceMs, else null.
   */
  overdue(successor: string | null): string | null {
    const now = this.#now();
    if (successor !== this.#awaited) {
      this.#awaited = successor;
      this.#since = now;
      return null;
    }
    return successor !== null && now - this.#since > this.#graceMs ? successor : null;
  }

  /** A view was installed: whoever we waited for, the wait starts over. */
  reset(): void {
    this.#awaited = null;
  }
}
