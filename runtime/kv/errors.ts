// The one error of the replicated-map core. `code` is stable: callers branch on it, metrics use it
// as a label, and the kv wire format carries it in an Error message.
import { CodedError } from "../../contract/errors.js";
import type { Version } from "./version.js";

export type KvErrorCode =
  /** A key longer than maxKeyBytes (UTF-8), or one that is not well-formed Unicode. */
  | "KEY_TOO_LARGE"
  | "BAD_KEY"
  /** A value longer than maxValueBytes. */
  | "VALUE_TOO_LARGE"
  /** A new key in a store that already holds maxEntries entries (tombstones included). */
  | "TOO_MANY_ENTRIES"
  /** Bytes from the network (or a text form) that are not a well-formed kv message. */
  | "BAD_FRAME"
  /** A remote stamp further ahead of our clock than maxDriftMs. */
  | "CLOCK_DRIFT"
  /** compareAndSet found another version than the expected one (`current` says which). */
  | "VERSION_MISMATCH"
  /** The cross-site backlog of a map is over its budget: the write is refused, never dropped. */
  | "BACKLOG_FULL"
  | "TIMEOUT"
  | "UNKNOWN_MAP"
  | "CLOSED";

/** Every code, e.g. to validate one received in an Error message. */
export const KV_ERROR_CODES: readonly KvErrorCode[] = [
  "KEY_TOO_LARGE",
  "BAD_KEY",
  "VALUE_TOO_LARGE",
  "TOO_MANY_ENTRIES",
  "BAD_FRAME",
  "CLOCK_DRIFT",
  "VERSION_MISMATCH",
  "BACKLOG_FULL",
  "TIMEOUT",
  "UNKNOWN_MAP",
  "CLOSED",
];

export function isKvErrorCode(s: string): s is KvErrorCode {
  return (KV_ERROR_CODES as readonly string[]).includes(s);
}

export class KvError extends CodedError<KvErrorCode> {
  override readonly name = "KvError";
  /** VERSION_MISMATCH only: the version found (null: the key is absent or deleted). */
  readonly current: Version | null | undefined;

  constructor(
    code: KvErrorCode,
    message: string,
    options?: { readonly cause?: unknown; readonly current?: Version | null },
  ) {
    super(code, message, options);
    this.current = options?.current;
  }
}
