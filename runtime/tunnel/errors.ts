import { CodedError } from "../../contract/errors.js";

// Errors the tunnel client throws or rejects with. Codes are stable: callers branch on them and
// metrics use them as labels.

export type TunnelErrorCode =
  /** No router is registered and the pending queue already holds maxPendingBytes. */
  | "TUNNEL_QUEUE_FULL"
  /** A payload larger than the routers accept (the frame limit). */
  | "TUNNEL_PAYLOAD_TOO_LARGE"
  /** The client was closed. */
  | "TUNNEL_CLOSED"
  /** No router is registered (for requests that need an answer, e.g. getMembers). */
  | "TUNNEL_NO_ROUTER"
  /** The router connection carrying a request went down before the answer came. */
  | "TUNNEL_ROUTER_DOWN"
  /** A request or wait did not complete in time. */
  | "TUNNEL_TIMEOUT";

/** Bad options are a ConfigError (code BAD_OPTION), not a TunnelError. */
export class TunnelError extends CodedError<TunnelErrorCode> {
  override readonly name = "TunnelError";
}
