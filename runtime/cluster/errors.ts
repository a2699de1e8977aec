/** A LocalCluster call that cannot be honoured. `code` is stable (usable as a metric label). */
export class ClusterError extends Error {
  override readonly name = "ClusterError";
  constructor(
    readonly code: "NOT_STARTED" | "NOT_JOINED" | "CLOSED" | "NOT_A_MEMBER" | "TOO_LARGE" | "BUFFER_FULL",
    message: string,
  ) {
    super(message);
  }
}
