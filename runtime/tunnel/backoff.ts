// Reconnect delays: exponential with a ceiling and downward jitter, so that clients which lost the
// same router at the same moment do not all come back in the same millisecond.

export interface BackoffPolicy {
  /** Delay before the first reconnect attempt, ms. */
  readonly initialMs: number;
  /** Ceiling for the delay, ms. Jitter only ever shortens a delay, so this is a true maximum. */
  readonly maxMs: number;
  /** Fraction (0..1) of the delay that is randomised: the delay lies in [(1 - jitter) * d, d]. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000, jitter: 0.2 };

/**
 * Delay before reconnect attempt `attempt` (1-based): initialMs * 2^(attempt-1), capped at maxMs,
 * then reduced by up to `jitter` of itself. `random` returns a number in [0, 1).
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^30 already exceeds any sane ceiling; capping the exponent keeps the arithmetic finite.
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(n - 1, 30));
  return Math.round(base * (1 - policy.jitter * random()));
}
