// The errors RelayChannel documents. Every one extends CodedError (contract/errors.ts): a stable
// code (usable as a metric label) and the cause it was mapped from.
import { CodedError } from "../../contract/errors.js";
import { ClusterError } from "../cluster/errors.js";

export type RelayErrorCode =
  | "NOT_CONNECTED"
  | "CLOSED"
  | "UNKNOWN_MEMBER"
  | "PAYLOAD_TOO_LARGE"
  | "BAD_DESTINATION"
  /** The send buffer of unstable cross-site messages is full: wait for "drain" (or use sendAsync). */
  | "BUFFER_FULL";

export class RelayError extends CodedError<RelayErrorCode> {
  override readonly name = "RelayError";
}

const FROM_CLUSTER: Record<ClusterError["code"], RelayErrorCode> = {
  NOT_STARTED: "NOT_CONNECTED",
  NOT_JOINED: "NOT_CONNECTED",
  CLOSED: "CLOSED",
  NOT_A_MEMBER: "UNKNOWN_MEMBER",
  TOO_LARGE: "PAYLOAD_TOO_LARGE",
  BUFFER_FULL: "BUFFER_FULL",
};

/**
 * The site cluster refuses a message atomically (nothing written) with a ClusterError; callers of
 * RelayChannel.send get it as the documented RelayError with the matching code.
 */
export function toRelayError(err: unknown): unknown {
  return err instanceof ClusterError
    ? new RelayError(FROM_CLUSTER[err.code], err.message, { cause: err })
    : err;
}
