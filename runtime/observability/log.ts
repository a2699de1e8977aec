import { type Logger, pino } from "pino";

/**
 * JSON logs (pino) on stderr, so stdout stays free for command output (`relay dump`, chat).
 * Level from LOG_LEVEL (default info).
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino(
    { name, level: process.env["LOG_LEVEL"] ?? "info", base: { ...bindings } },
    pino.destination(2),
  );
}

export type { Logger };
