// Liveness of one router connection, kept apart from sockets so it can be tested with fake timers.
// Every `intervalMs` it sends a HEARTBEAT (the router answers each one); if nothing at all has been
// received for `timeoutMs`, it reports the connection dead. Any received byte counts as life, so a
// busy connection costs no extra work beyond one timestamp per read.
import { afterPoll } from "../after-poll.js";

/** What the heartbeat needs from its connection. */
export interface HeartbeatTarget {
  /** Write one HEARTBEAT frame. */
  sendHeartbeat(): void;
  /** Nothing was received for `silentMs` (>= timeoutMs): close the connection and reconnect. */
  timedOut(silentMs: number): void;
}

export class Heartbeat {
  readonly #target: HeartbeatTarget;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #defer: (fn: () => void) => void;
  #timer: NodeJS.Timeout | null = null;
  #lastSeen = 0;

  /**
   * intervalMs 0 disables both the heartbeats and the timeout. `defer` runs each tick after the
   * event loop's poll (afterPoll; tests with fake timers pass one that runs it at once).
   */
  constructor(
    target: HeartbeatTarget,
    intervalMs: number,
    timeoutMs: number,
    now: () => number = Date.now,
    defer: (fn: () => void) => void = afterPoll,
  ) {
    this.#target = target;
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#now = now;
    this.#defer = defer;
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  start(): void {
    this.stop();
    this.#lastSeen = this.#now();
    if (this.#intervalMs <= 0) return;
    // Judged after the loop has polled the sockets (afterPoll): after a stall of this process the
    // overdue timer runs before what the router sent meanwhile is read.
    this.#timer = setInterval(() => this.#defer(() => this.#tick()), this.#intervalMs);
    this.#timer.unref();
  }

  /** Call on every read from the connection. */
  received(): void {
    this.#lastSeen = this.#now();
  }

  stop(): void {
    if (this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #tick(): void {
    if (this.#timer === null) return; // stopped while this tick waited for the poll
    const silent = this.#now() - this.#lastSeen;
    if (silent >= this.#timeoutMs) {
      this.stop();
      this.#target.timedOut(silent);
      return;
    }
    this.#target.sendHeartbeat();
  }
}
