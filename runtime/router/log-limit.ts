// Log lines that hostile input can trigger (refused connections, timeouts, refused REGISTERs): at
// most one line per key per interval, with the number of lines suppressed since the last one, so
// a flood costs a counter, not a log pipeline. Keys are fixed reason names, never remote input,
// so the map stays as small as the set of reasons.
import type { Logger } from "../observability/log.js";

export const LOG_INTERVAL_MS = 1_000;

export class RateLimitedLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(log: Logger, intervalMs = LOG_INTERVAL_MS) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    this.#write("warn", key, fields, msg);
  }

  info(key: string, fields: Record<string, unknown>, msg: string): void {
    this.#write("info", key, fields, msg);
  }

  #write(level: "warn" | "info", key: string, fields: Record<string, unknown>, msg: string): void {
    if (!this.#log.isLevelEnabled(level)) return;
    const now = Date.now();
    const entry = this.#last.get(key);
    if (entry && now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return;
    }
    this.#log[level]({ ...fields, ...(entry?.suppressed ? { suppressed: entry.suppressed } : {}) }, msg);
    this.#last.set(key, { at: now, suppressed: 0 });
  }
}

/** At most `max` characters of a name that came off the wire, for a log line. */
export function clip(text: string | null, max = 64): string | null {
  if (text === null || text.length <= max) return text;
  return `${text.slice(0, max)}…(${text.length} chars)`;
}
