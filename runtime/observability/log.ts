import { type DestinationStream, type Logger, pino } from "pino";
import { ConfigError } from "../../contract/errors.js";

/**
 * Log bytes Node may hold for a stderr reader that does not keep up (a full pipe makes Node queue
 * writes in memory) before lines are dropped instead: logging must never grow without bound.
 */
const MAX_QUEUED_LOG_BYTES = 4 * 1024 * 1024;

/**
 * Where every logger of the process writes: process.stderr, guarded. pino's own destination
 * (sonic-boom) retries a failed write in a loop when the process exits, so a broken stderr pipe
 * (the reader was killed) froze `relay router` inside its SIGTERM handler. Here a write error
 * only ends logging: the process keeps running and stops normally.
 */
class StderrDestination implements DestinationStream {
  #broken = false;
  #dropped = 0;

  constructor() {
    process.stderr.on("error", () => {
      this.#broken = true;
    });
  }

  write(line: string): void {
    const err = process.stderr;
    if (this.#broken || err.destroyed) return;
    if (err.writableLength > MAX_QUEUED_LOG_BYTES) {
      this.#dropped++;
      return;
    }
    if (this.#dropped > 0) {
      const note = { level: 40, time: Date.now(), dropped: this.#dropped, msg: "log lines dropped" };
      this.#dropped = 0;
      err.write(`${JSON.stringify(note)}\n`);
    }
    err.write(line);
  }
}

let destination: StderrDestination | null = null;

/**
 * JSON logs (pino) on stderr, so stdout stays free for command output (`relay dump`, chat).
 * Level from LOG_LEVEL (default info).
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  destination ??= new StderrDestination();
  return pino({ name, level: logLevel(), base: { ...bindings } }, destination);
}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** LOG_LEVEL, checked: a ConfigError naming the variable instead of pino's own message. */
export function logLevel(): (typeof LEVELS)[number] {
  const v = process.env["LOG_LEVEL"]?.trim() || "info";
  const level = LEVELS.find((l) => l === v);
  if (!level) throw new ConfigError(`LOG_LEVEL: "${v.slice(0, 32)}" is not one of ${LEVELS.join(", ")}`);
  return level;
}

export type { Logger };
