// The state of one router connection and the status events the client emits about it.
import type { RouterEndpoint } from "../../contract/initial-hosts.js";

/**
 * One router connection's life: `idle` (before start()) -> `connecting` (TCP/TLS handshake) ->
 * `registering` (REGISTER + a HEARTBEAT probe written, waiting for the router's first frame) ->
 * `registered` (the router has processed our REGISTER: frames are sent through it) -> on any
 * failure `reconnecting` (waiting out the backoff) -> `connecting` … `closing` / `closed` only
 * after close().
 */
export type RouterState =
  | "idle"
  | "connecting"
  | "registering"
  | "registered"
  | "reconnecting"
  | "closing"
  | "closed";

/** Why a connection ended. Stable codes (log field, metric label). */
export type DownReason =
  /** TCP connect, TLS handshake or registration did not finish within connectTimeoutMs. */
  | "connect-timeout"
  /** The socket failed (refused, reset, DNS failure, TLS alert…); see `message`. */
  | "socket-error"
  /** The router ended the connection (EOF or its GRACEFUL_CLOSE marker). */
  | "router-closed"
  /** Nothing received for heartbeatTimeoutMs. */
  | "heartbeat-timeout"
  /** The router sent bytes that are not a valid frame. */
  | "decode-error";

/** Status events, one discriminated union (subscribe with `client.on("status", …)`). */
export type TunnelStatusEvent =
  /** The router confirmed our registration (first connect or after a reconnect). */
  | { readonly type: "router-up"; readonly router: RouterEndpoint; readonly reconnects: number }
  /** A registered connection was lost; sends move to another registered router or queue. */
  | {
      readonly type: "router-down";
      readonly router: RouterEndpoint;
      readonly reason: DownReason;
      readonly message: string;
    }
  /** An attempt to connect/register failed before the router was up (refused, TLS rejected…). */
  | {
      readonly type: "connect-failed";
      readonly router: RouterEndpoint;
      readonly reason: DownReason;
      readonly message: string;
      readonly attempt: number;
    }
  /** A reconnect is scheduled in `delayMs`. */
  | {
      readonly type: "reconnecting";
      readonly router: RouterEndpoint;
      readonly attempt: number;
      readonly delayMs: number;
    }
  /** The client was closed; no more events follow. */
  | { readonly type: "closed" };

/** One router connection, as returned by `TunnelClient.status()`. */
export interface RouterSnapshot {
  readonly endpoint: RouterEndpoint;
  readonly state: RouterState;
  /** When the connection entered `state` (ms since the epoch). */
  readonly since: number;
  /** Completed reconnects (router-up events after the first). */
  readonly reconnects: number;
  readonly framesIn: number;
  readonly framesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Bytes written but not yet flushed to the kernel. */
  readonly bufferedBytes: number;
  /** The last failure, if any. */
  readonly lastError: { readonly reason: DownReason; readonly message: string; readonly at: number } | null;
}

/** The whole client, as returned by `TunnelClient.status()`. */
export interface TunnelSnapshot {
  readonly routers: readonly RouterSnapshot[];
  /** Frames waiting for any router to register. */
  readonly pendingFrames: number;
  readonly pendingBytes: number;
  /** The router that sends currently go through, or null. */
  readonly current: RouterEndpoint | null;
}
