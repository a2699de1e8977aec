// Public surface of the router client (JGroups TUNNEL equivalent). See docs/TUNNEL.md.
export { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
export { TunnelClient, type TunnelEvents, type TunnelMessage, type TunnelSuspect } from "./client.js";
export { TunnelError, type TunnelErrorCode } from "./errors.js";
export { Heartbeat, type HeartbeatTarget } from "./heartbeat.js";
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_PENDING_BYTES,
  type PemSource,
  type ResolvedTunnelOptions,
  type TunnelOptions,
  type TunnelTlsOptions,
} from "./options.js";
export { PendingQueue } from "./pending-queue.js";
export type { DownReason, RouterSnapshot, RouterState, TunnelSnapshot, TunnelStatusEvent } from "./status.js";
