// Commander option parsers shared by the `relay` commands: integers, ports and durations, each
// checked against explicit bounds so a typo is a one-line usage error, never a NaN or a huge
// allocation further down.
import { InvalidArgumentError } from "commander";

const DIGITS = /^\d+$/;
/** A duration: whole milliseconds, optionally with an `ms` or `s` unit (`1500`, `1500ms`, `2s`). */
const DURATION = /^(\d+)(ms|s)?$/;

/** A commander argument parser for an integer in [min, max]. */
export function intArg(what: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const text = value.trim();
    const n = DIGITS.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} must be an integer between ${min} and ${max}.`);
    }
    return n;
  };
}

/** A TCP port; 0 (let the system pick) only when `allowEphemeral`. */
export function portArg(what: string, { allowEphemeral = true } = {}): (value: string) => number {
  return intArg(what, allowEphemeral ? 0 : 1, 65535);
}

/** A duration in milliseconds in [minMs, maxMs]; accepts `1500`, `1500ms` and `2s`. */
export function durationArg(what: string, minMs: number, maxMs: number): (value: string) => number {
  return (value: string) => {
    const m = DURATION.exec(value.trim());
    const n = m ? Number(m[1]) * (m[2] === "s" ? 1000 : 1) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < minMs || n > maxMs) {
      throw new InvalidArgumentError(
        `${what} must be a duration between ${minMs} and ${maxMs} ms (e.g. 1500, 1500ms or 2s).`,
      );
    }
    return n;
  };
}

/** Longest timer Node accepts (setTimeout clamps anything larger to 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
