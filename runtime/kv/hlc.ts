// Hybrid logical clock: a stamp is (wall, logical), wall = ms since the epoch from the injected
// clock, logical = a counter that orders events within one millisecond (and events stamped while
// the local clock lags behind a stamp already seen). Stamps compare wall first, then logical.
//
// tick() for a local event returns a stamp strictly greater than every stamp this clock returned
// or observed before. observe() merges a remote stamp without creating an event: the clock never
// moves backwards, and the next tick() is above the remote stamp. A remote stamp whose wall is more
// than maxDriftMs ahead of our physical clock is refused (CLOCK_DRIFT): a broken or hostile peer
// must not drag every clock of the system into the future.
//
// Logical overflow: when the counter would exceed MAX_LOGICAL (65535 events in one millisecond, or
// a lagging clock), the wall part advances by 1 ms and the counter restarts at 0; the stamp stays
// strictly increasing and runs at most a few ms ahead of physical time.
import { ConfigError } from "../../contract/errors.js";
import { KvError } from "./errors.js";

export interface Hlc {
  /** Milliseconds since the epoch, an integer 0..MAX_WALL. */
  readonly wall: number;
  /** 0..MAX_LOGICAL. */
  readonly logical: number;
}

export const MAX_LOGICAL = 0xffff;
/** Largest wall part (2^53 - 1: exact in a double, and 8 bytes on the wire). */
export const MAX_WALL = Number.MAX_SAFE_INTEGER;
/** Default `maxDriftMs` of HybridClock. */
export const DEFAULT_MAX_DRIFT_MS = 60_000;

export const ZERO_HLC: Hlc = Object.freeze({ wall: 0, logical: 0 });

export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return 0;
}

/** True for integers in range (a stamp from the network is checked with this before use). */
export function isValidHlc(h: Hlc): boolean {
  return (
    Number.isSafeInteger(h.wall) &&
    h.wall >= 0 &&
    Number.isInteger(h.logical) &&
    h.logical >= 0 &&
    h.logical <= MAX_LOGICAL
  );
}

export interface HybridClockOptions {
  /** Physical clock, ms since the epoch. @default Date.now */
  readonly now?: () => number;
  /** How far ahead of `now()` a remote stamp may be. @default 60_000 */
  readonly maxDriftMs?: number;
}

export class HybridClock {
  readonly #now: () => number;
  readonly maxDriftMs: number;
  #wall = 0;
  #logical = 0;

  constructor(opts: HybridClockOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.maxDriftMs = opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (!(this.maxDriftMs >= 0))
      throw new ConfigError(`HybridClock option maxDriftMs must be >= 0 (got ${this.maxDriftMs})`);
  }

  /** The last stamp returned or observed (no new event). */
  current(): Hlc {
    return { wall: this.#wall, logical: this.#logical };
  }

  /** A stamp for a local event, strictly greater than every one before. */
  tick(): Hlc {
    const now = this.#physical();
    if (now > this.#wall) {
      this.#wall = now;
      this.#logical = 0;
    } else if (this.#logical < MAX_LOGICAL) {
      this.#logical++;
    } else {
      this.#wall++;
      this.#logical = 0;
    }
    return { wall: this.#wall, logical: this.#logical };
  }

  /**
   * Merges a remote stamp. Throws KvError BAD_FRAME for a malformed stamp and CLOCK_DRIFT when
   * `remote.wall > now + maxDriftMs`; the clock is unchanged then.
   */
  observe(remote: Hlc): void {
    if (!isValidHlc(remote))
      throw new KvError("BAD_FRAME", `malformed HLC stamp (wall ${remote.wall}, logical ${remote.logical})`);
    const now = this.#physical();
    if (remote.wall > now + this.maxDriftMs)
      throw new KvError(
        "CLOCK_DRIFT",
        `remote stamp ${remote.wall} is ${remote.wall - now} ms ahead of the local clock (maxDriftMs ${this.maxDriftMs}): fix the peer's clock (NTP) or raise maxDriftMs`,
      );
    if (compareHlc(remote, { wall: this.#wall, logical: this.#logical }) > 0) {
      this.#wall = remote.wall;
      this.#logical = remote.logical;
    }
  }

  #physical(): number {
    const t = Math.floor(this.#now());
    return Number.isFinite(t) && t > 0 ? Math.min(t, MAX_WALL) : 0;
  }
}
