// The one bounded poll of the tests: check a condition (or a probe) every few milliseconds until
// it holds, and fail with "timed out after N ms waiting for <what>" when it does not in time.

export interface WaitOptions {
  /** How long to keep polling; 5000 ms unless given. */
  readonly timeoutMs?: number;
  /** The pause between two checks; 10 ms unless given (more for costly checks). */
  readonly intervalMs?: number;
  /** Extra text for the timeout error (after a newline), e.g. what the screen or the logs show. */
  readonly onTimeout?: () => string;
}

/** Polls `probe` until it returns something other than undefined, and resolves with that value. */
export async function waitForValue<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  { timeoutMs = 5_000, intervalMs = 10, onTimeout }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const message = `timed out after ${timeoutMs} ms waiting for ${what}`;
      throw new Error(onTimeout ? `${message}\n${onTimeout()}` : message);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls `cond` until it is true. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  options?: WaitOptions,
): Promise<void> {
  await waitForValue(what, async () => ((await cond()) ? true : undefined), options);
}
