// Router options: typed, documented defaults, validated once with messages that name the option.
import { ConfigError } from "../../contract/errors.js";
import { ROUTER_HTTP_PORT, ROUTER_PORT } from "../../contract/ports.js";
import type { AllowGroups } from "../../contract/router-args.js";
import { DEFAULT_MAX_FRAME } from "../protocol/types.js";

/** TLS material (file paths) for the router's listening socket. */
export interface RouterTlsOptions {
  /** PEM certificate chain of the router. */
  readonly certFile: string;
  /** PEM private key of the router. */
  readonly keyFile: string;
  /** PEM CA bundle used to verify client certificates. Required with `clientAuth`. */
  readonly caFile?: string;
  /** Refuse clients without a certificate signed by `caFile`. @default false */
  readonly clientAuth?: boolean;
  /**
   * Period of the check of the three files for new content (rotation without restart); 0 = never
   * reload. @default DEFAULT_TLS_RELOAD_INTERVAL_MS (10 s)
   */
  readonly reloadIntervalMs?: number;
  /**
   * With `clientAuth`: when reloaded material's CA bundle no longer trusts the certificate an
   * open connection authenticated with (its CA was removed), close that connection; it must
   * reconnect with a certificate the new bundle accepts. @default true
   */
  readonly closeUntrustedOnReload?: boolean;
}

export interface RouterOptions {
  /** TCP port of the gossip protocol; 0 = ephemeral. @default 12001 */
  readonly port?: number;
  /** Address to listen on. @default "0.0.0.0" */
  readonly bind?: string;
  /** Port of the /healthz + /metrics HTTP server; 0 = ephemeral, null = no HTTP server. @default 9000 */
  readonly httpPort?: number | null;
  /** Largest accepted frame body in bytes. @default DEFAULT_MAX_FRAME (10 MiB) */
  readonly maxFrame?: number;
  /** Send SUSPECT(group, member) to the remaining members when a connection is lost. @default true */
  readonly suspect?: boolean;
  /**
   * Idle timeout: close connections silent for this many ms (not even a heartbeat); 0 = never.
   * Our tunnel clients heartbeat every 10 s; JGroups TUNNEL clients only with `heartbeat_interval`
   * set (it is 0 by default): run those with their heartbeat on, or with 0 here.
   * @default DEFAULT_EXPIRY_MS (35000)
   */
  readonly expiryMs?: number;
  /** Output bytes queued for one connection above which its senders are paused. @default 4 MiB */
  readonly maxQueueBytes?: number;
  /** A receiver that stays over `maxQueueBytes` this long is disconnected. @default 10000 */
  readonly slowTimeoutMs?: number;
  /**
   * A receiver over `maxQueueBytes` for this long stops pausing its senders: multicast frames to
   * it are dropped (counted) until it drains, so one stuck member cannot stall a group for
   * `slowTimeoutMs`; unicast senders stay paused. @default DEFAULT_CONGESTION_GRACE_MS (1000)
   */
  readonly congestionGraceMs?: number;
  /** TLS on the gossip port; plain TCP when absent. */
  readonly tls?: RouterTlsOptions;
  /**
   * Token mode: directory with one file per site (name = site, content = token); every client
   * must send an AUTH frame first. Not with `tls.clientAuth` (the certificate is the identity).
   * @default none (open mode unless `tls.clientAuth`)
   */
  readonly authTokens?: string;
  /** Which site identities may use which groups. @default every identity, every group */
  readonly allowGroups?: AllowGroups;
  /** Registrations one site identity may hold, all its connections together. @default 16384 */
  readonly maxRegistrationsPerIdentity?: number;
  /** Open connections (TCP, TLS handshakes included); clamped to the open-file limit. @default 10000 */
  readonly maxConnections?: number;
  /** Open connections from one source address (IPv6: one /64). @default 256 */
  readonly maxConnectionsPerAddress?: number;
  /**
   * A TLS handshake not finished within this many ms: the socket is destroyed. Node's own
   * `handshakeTimeout` (120 s) still ends longer ones, as a TLS error. @default 10000
   */
  readonly tlsHandshakeTimeoutMs?: number;
  /** A connection that completed no frame within this many ms of being accepted is closed. @default 10000 */
  readonly firstFrameTimeoutMs?: number;
  /** A frame must be complete within this many ms of its first byte (slowloris). @default 30000 */
  readonly frameTimeoutMs?: number;
  /**
   * Bytes all connections together may hold in reassembly buffers (frames received in part);
   * over it, the connection holding the most is closed. Per connection the bound is `maxFrame`.
   * @default 64 MiB
   */
  readonly maxPartialBytes?: number;
  /** Groups the router holds; REGISTERs that would create more are refused. @default 10000 */
  readonly maxGroups?: number;
  /** Registrations the router holds (all connections); more are refused. @default 25000 */
  readonly maxRegistrations?: number;
  /** Longest group name a REGISTER may carry, in characters. @default 256 */
  readonly maxGroupNameLength?: number;
  /** Longest logical name a REGISTER may carry, in characters. @default 256 */
  readonly maxLogicalNameLength?: number;
  /** Groups with their own `relay_router_registrations{group}` series (the largest); 0 = none. @default 20 */
  readonly metricsGroups?: number;
}

export const DEFAULT_ROUTER_PORT = ROUTER_PORT;
export const DEFAULT_HTTP_PORT = ROUTER_HTTP_PORT;
export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SLOW_TIMEOUT_MS = 10_000;
/** Registrations one site identity may hold on one router (see policy.ts). */
export const DEFAULT_MAX_REGISTRATIONS_PER_IDENTITY = 16_384;
export const DEFAULT_CONGESTION_GRACE_MS = 1_000;
/** 3.5 heartbeats of our tunnel clients (10 s each). */
export const DEFAULT_EXPIRY_MS = 35_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256;
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_FIRST_FRAME_TIMEOUT_MS = 10_000;
export const DEFAULT_FRAME_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_PARTIAL_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_GROUPS = 10_000;
export const DEFAULT_MAX_REGISTRATIONS = 25_000;
export const DEFAULT_MAX_NAME_LENGTH = 256;
export const DEFAULT_METRICS_GROUPS = 20;
const MAX_MS = 2 ** 31 - 1;
/** Upper bound of --max-frame: the i32 length prefix cannot say more, and Node buffers stop at 2 GiB. */
export const MAX_MAX_FRAME = 0x7fffffff - 4;

/** Options with every default applied. */
export interface ResolvedRouterOptions {
  readonly port: number;
  readonly bind: string;
  readonly httpPort: number | null;
  readonly maxFrame: number;
  readonly suspect: boolean;
  readonly expiryMs: number;
  readonly maxQueueBytes: number;
  readonly slowTimeoutMs: number;
  readonly congestionGraceMs: number;
  readonly tls: RouterTlsOptions | null;
  /** How clients are identified: mtls (tls.clientAuth), token (authTokens) or open. */
  readonly authMode: "mtls" | "token" | "open";
  readonly authTokens: string | null;
  readonly allowGroups: AllowGroups | null;
  readonly maxRegistrationsPerIdentity: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly tlsHandshakeTimeoutMs: number;
  readonly firstFrameTimeoutMs: number;
  readonly frameTimeoutMs: number;
  readonly maxPartialBytes: number;
  readonly maxGroups: number;
  readonly maxRegistrations: number;
  readonly maxGroupNameLength: number;
  readonly maxLogicalNameLength: number;
  readonly metricsGroups: number;
}

function intIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** Applies defaults and validates; throws a ConfigError (code BAD_OPTION) naming the option on a bad value. */
export function resolveRouterOptions(o: RouterOptions = {}): ResolvedRouterOptions {
  const tls = o.tls ?? null;
  if (tls) {
    if (!tls.certFile || !tls.keyFile) throw new ConfigError("TLS needs both a certificate and a key file");
    if (tls.clientAuth && !tls.caFile) throw new ConfigError("TLS client authentication needs a CA file");
    if (tls.reloadIntervalMs !== undefined)
      intIn("tls.reloadIntervalMs", tls.reloadIntervalMs, 0, 2 ** 31 - 1);
  }
  const authTokens = o.authTokens ?? null;
  if (authTokens !== null && (typeof authTokens !== "string" || authTokens === "")) {
    throw new ConfigError("authTokens must be a directory path");
  }
  if (authTokens !== null && tls?.clientAuth) {
    throw new ConfigError(
      "authTokens and tls.clientAuth exclude each other: with client authentication the certificate is the identity",
    );
  }
  const httpPort = o.httpPort === undefined ? DEFAULT_HTTP_PORT : o.httpPort;
  const maxFrame = intIn("maxFrame", o.maxFrame ?? DEFAULT_MAX_FRAME, 16, MAX_MAX_FRAME);
  const maxConnections = intIn("maxConnections", o.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 1, 1_000_000);
  const perAddress = intIn(
    "maxConnectionsPerAddress",
    o.maxConnectionsPerAddress ?? Math.min(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, maxConnections),
    1,
    maxConnections,
  );
  // One frame of the largest size must fit, or large frames could never be received.
  const maxPartialBytes = intIn(
    "maxPartialBytes",
    o.maxPartialBytes ?? Math.max(DEFAULT_MAX_PARTIAL_BYTES, maxFrame + 4),
    maxFrame + 4,
    Number.MAX_SAFE_INTEGER,
  );
  const slowTimeoutMs = intIn("slowTimeoutMs", o.slowTimeoutMs ?? DEFAULT_SLOW_TIMEOUT_MS, 1, MAX_MS);
  return {
    port: intIn("port", o.port ?? DEFAULT_ROUTER_PORT, 0, 65535),
    bind: o.bind ?? "0.0.0.0",
    httpPort: httpPort === null ? null : intIn("httpPort", httpPort, 0, 65535),
    maxFrame,
    suspect: o.suspect ?? true,
    expiryMs: intIn("expiryMs", o.expiryMs ?? DEFAULT_EXPIRY_MS, 0, MAX_MS),
    maxQueueBytes: intIn("maxQueueBytes", o.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES, 1024, 2 ** 31 - 1),
    slowTimeoutMs,
    congestionGraceMs: intIn(
      "congestionGraceMs",
      o.congestionGraceMs ?? Math.min(DEFAULT_CONGESTION_GRACE_MS, slowTimeoutMs),
      1,
      slowTimeoutMs,
    ),
    tls,
    authMode: tls?.clientAuth ? "mtls" : authTokens !== null ? "token" : "open",
    authTokens,
    allowGroups: o.allowGroups ?? null,
    maxRegistrationsPerIdentity: intIn(
      "maxRegistrationsPerIdentity",
      o.maxRegistrationsPerIdentity ?? DEFAULT_MAX_REGISTRATIONS_PER_IDENTITY,
      1,
      2 ** 31 - 1,
    ),
    maxConnections,
    maxConnectionsPerAddress: perAddress,
    tlsHandshakeTimeoutMs: intIn(
      "tlsHandshakeTimeoutMs",
      o.tlsHandshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
      1,
      MAX_MS,
    ),
    firstFrameTimeoutMs: intIn(
      "firstFrameTimeoutMs",
      o.firstFrameTimeoutMs ?? DEFAULT_FIRST_FRAME_TIMEOUT_MS,
      0,
      MAX_MS,
    ),
    frameTimeoutMs: intIn("frameTimeoutMs", o.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS, 0, MAX_MS),
    maxPartialBytes,
    maxGroups: intIn("maxGroups", o.maxGroups ?? DEFAULT_MAX_GROUPS, 1, 10_000_000),
    maxRegistrations: intIn(
      "maxRegistrations",
      o.maxRegistrations ?? DEFAULT_MAX_REGISTRATIONS,
      1,
      10_000_000,
    ),
    maxGroupNameLength: intIn(
      "maxGroupNameLength",
      o.maxGroupNameLength ?? DEFAULT_MAX_NAME_LENGTH,
      1,
      maxFrame,
    ),
    maxLogicalNameLength: intIn(
      "maxLogicalNameLength",
      o.maxLogicalNameLength ?? DEFAULT_MAX_NAME_LENGTH,
      1,
      maxFrame,
    ),
    metricsGroups: intIn("metricsGroups", o.metricsGroups ?? DEFAULT_METRICS_GROUPS, 0, 10_000),
  };
}
