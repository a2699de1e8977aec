// Periodic judgements of silence (heartbeat timeouts, expiry, retransmission by timeout, sync step
// timeouts) must run after the event loop has polled the sockets. Timers run before the poll: after
// a stall of the process (a GC pause, a starved CPU, SIGSTOP) an overdue timer that judged at once
// would condemn peers whose frames wait unread in the socket buffers. Every such timer in the
// runtime goes through everyAfterPoll.

/** A stall longer than this between queuing and running means the loop has not polled since. */
const STALL_MS = 20;

/**
 * Runs `fn` in the check phase (setImmediate), i.e. after the poll of the loop's current turn. If
 * the loop was blocked between queuing and running (the stall began in this very turn, after the
 * poll), it waits for one more poll: the second run is unconditional, so it is never starved.
 */
export function afterPoll(fn: () => void, now: () => number = performance.now.bind(performance)): void {
  const queuedAt = now();
  setImmediate(() => {
    if (now() - queuedAt > STALL_MS) setImmediate(fn);
    else fn();
  });
}

/** setInterval whose callback runs through afterPoll. Returns the interval (clearInterval stops it). */
export function everyAfterPoll(fn: () => void, intervalMs: number): NodeJS.Timeout {
  return setInterval(() => afterPoll(fn), intervalMs);
}
