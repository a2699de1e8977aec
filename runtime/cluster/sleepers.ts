// Timed waits of a member that its close() must be able to cut short: every sleep is registered,
// and wakeAll() ends them at once (the join loop and leave() then see the member closed).

export class Sleepers {
  readonly #sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();

  /** Resolves after `ms`, or at wakeAll(). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = {
        timer: setTimeout(() => {
          this.#sleepers.delete(s);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.#sleepers.add(s);
    });
  }

  /** Polls `cond` every 10 ms for at most `ms`, or until `stopped()`. */
  async waitFor(cond: () => boolean, ms: number, stopped: () => boolean): Promise<void> {
    const until = Date.now() + ms;
    while (!cond() && Date.now() < until && !stopped()) await this.sleep(10);
  }

  /** Ends every sleep now. */
  wakeAll(): void {
    for (const s of this.#sleepers) {
      clearTimeout(s.timer);
      s.wake();
    }
    this.#sleepers.clear();
  }
}
