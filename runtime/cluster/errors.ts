import { CodedError } from "../../contract/errors.js";

/** A LocalCluster call that cannot be honoured. `code` is stable (usable as a metric label). */
export type ClusterErrorCode =
  | "NOT_STARTED"
  | "NOT_JOINED"
  | "CLOSED"
  | "NOT_A_MEMBER"
  | "TOO_LARGE"
  | "BUFFER_FULL";

export class ClusterError extends CodedError<ClusterErrorCode> {
  override readonly name = "ClusterError";
}
