// TunnelClient options: types, documented defaults and validation at construction time.
import { readFileSync } from "node:fs";
import { ConfigError } from "../../contract/errors.js";
import type { RouterEndpoint } from "../../contract/initial-hosts.js";
import type { Logger } from "../observability/log.js";
import { MAX_AUTH_SITE_BYTES, MAX_TOKEN_BYTES } from "../protocol/auth.js";
import { type Address, DEFAULT_MAX_FRAME } from "../protocol/types.js";
import { isUuid } from "../protocol/uuid.js";
import { isPemText, type PemSource } from "../tls/material.js";
import { TlsReloader } from "../tls/watch.js";
import { type BackoffPolicy, DEFAULT_BACKOFF } from "./backoff.js";

export type { PemSource };

export interface TunnelTlsOptions {
  /** CA certificate(s) that sign the routers' certificates. @default the system CAs */
  readonly ca?: PemSource;
  /** Client certificate, for routers that require client auth. Needs `key`. @default none */
  readonly cert?: PemSource;
  /** Private key of `cert`. @default none */
  readonly key?: PemSource;
  /** Name checked against the router certificate (and sent as SNI). @default the router host */
  readonly servername?: string;
  /**
   * Where each (re)connect takes its material from: a reloader of ca/cert/key shared with its
   * owner (the relay node polls it and exports its metrics). @default one per client, built from
   * ca/cert/key and checked at every connect
   */
  readonly reloader?: TlsReloader;
}

export interface TunnelOptions {
  /** Routers to connect to, one connection each (see parseInitialHosts). At least one. */
  readonly routers: readonly RouterEndpoint[];
  /** The group (JGroups cluster name) to register in. */
  readonly group: string;
  /** Our logical address: a plain UUID, or a SiteUUID on the bridge. Also used to drop our own multicast copies. */
  readonly localAddr: Address;
  /** Logical name sent with REGISTER (shown by GET_MBRS / `relay dump`). @default null */
  readonly logicalName?: string | null;
  /** Physical address sent with REGISTER. @default null */
  readonly physicalAddr?: Address | null;
  /** TLS to the routers. @default plain TCP */
  readonly tls?: TunnelTlsOptions;
  /**
   * Token of our site for routers in token mode (`--auth-tokens`): sent as an AUTH frame right
   * after connecting, before REGISTER. Routers in open or mutual-TLS mode ignore it; a JGroups
   * router would close the connection (it has no such frame). @default none
   */
  readonly authToken?: { readonly site: string; readonly token: string };
  /** HEARTBEAT period per connection, ms; 0 = no heartbeats and no timeout. Well below the AWS NLB idle timeout (350 s). @default 10000 */
  readonly heartbeatIntervalMs?: number;
  /** Close and reconnect a connection that received nothing for this long, ms. @default 3 × heartbeatIntervalMs */
  readonly heartbeatTimeoutMs?: number;
  /** First reconnect delay, ms. @default 100 */
  readonly reconnectInitialMs?: number;
  /** Largest reconnect delay, ms (the delay doubles up to this). @default 5000 */
  readonly reconnectMaxMs?: number;
  /** Fraction of each delay that is randomised (0..1). @default 0.2 */
  readonly reconnectJitter?: number;
  /** Time allowed for TCP connect + TLS handshake + registration confirmation, ms. @default 5000 */
  readonly connectTimeoutMs?: number;
  /** Bound of the queue used while no router is registered, bytes. @default 4 MiB */
  readonly maxPendingBytes?: number;
  /** Largest frame body accepted from a router (and largest message sent). @default DEFAULT_MAX_FRAME (10 MiB) */
  readonly maxFrame?: number;
  /** Logger. @default createLogger("tunnel", { group }) */
  readonly logger?: Logger;
}

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export const HEARTBEAT_TIMEOUT_FACTOR = 3;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** Options with every default applied. */
export interface ResolvedTunnelOptions {
  readonly routers: readonly RouterEndpoint[];
  readonly group: string;
  readonly localAddr: Address;
  readonly logicalName: string | null;
  readonly physicalAddr: Address | null;
  readonly tls: TunnelTlsOptions | null;
  readonly authToken: { readonly site: string; readonly token: string } | null;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly backoff: BackoffPolicy;
  readonly connectTimeoutMs: number;
  readonly maxPendingBytes: number;
  readonly maxFrame: number;
}

function bad(option: string, problem: string): ConfigError {
  return new ConfigError(`TunnelClient option ${option} ${problem}`);
}

function int(option: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw bad(option, `must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function checkAddress(option: string, addr: unknown, allowed: readonly Address["kind"][]): void {
  if (typeof addr !== "object" || addr === null || !("kind" in addr)) {
    throw bad(option, 'must be an Address object ({ kind: "uuid", uuid } …)');
  }
  const a = addr as Address;
  if (!allowed.includes(a.kind)) {
    throw bad(option, `must be an address of kind ${allowed.join(" or ")}, got "${String(a.kind)}"`);
  }
  if ((a.kind === "uuid" || a.kind === "site-uuid" || a.kind === "magic") && !isUuid(a.uuid)) {
    throw bad(option, `has a malformed uuid "${a.uuid}" (expected lowercase 8-4-4-4-12 hex)`);
  }
}

function checkPem(option: string, value: PemSource | undefined): void {
  if (value === undefined || Buffer.isBuffer(value) || isPemText(value)) return;
  if (typeof value !== "string" || value.length === 0)
    throw bad(option, "must be PEM text, a Buffer or a file path");
  try {
    readFileSync(value);
  } catch (err) {
    throw bad(option, `names a file that cannot be read: ${(err as Error).message}`);
  }
}

export { isPemText };

/** Applies defaults and validates; every error is a ConfigError (code BAD_OPTION) and names the option. */
export function resolveTunnelOptions(o: TunnelOptions): ResolvedTunnelOptions {
  if (typeof o !== "object" || o === null) throw bad("object", "is required");
  if (!Array.isArray(o.routers) || o.routers.length === 0) {
    throw bad("routers", "must list at least one router ({ host, port }, e.g. from parseInitialHosts)");
  }
  o.routers.forEach((r, i) => {
    if (typeof r?.host !== "string" || r.host.length === 0)
      throw bad(`routers[${i}].host`, "must be a non-empty string");
    if (r.port === undefined) throw bad(`routers[${i}].port`, "is required");
    int(`routers[${i}].port`, r.port, 0, 1, 65535);
  });
  if (typeof o.group !== "string" || o.group.length === 0) throw bad("group", "must be a non-empty string");
  if (Buffer.byteLength(o.group) > 65535) throw bad("group", "is longer than 65535 bytes");
  checkAddress("localAddr", o.localAddr, ["uuid", "site-uuid", "magic"]);
  const logicalName = o.logicalName ?? null;
  if (logicalName !== null && (typeof logicalName !== "string" || Buffer.byteLength(logicalName) > 65535)) {
    throw bad("logicalName", "must be a string of at most 65535 bytes, or null");
  }
  const physicalAddr = o.physicalAddr ?? null;
  if (physicalAddr !== null) checkAddress("physicalAddr", physicalAddr, ["ip"]);

  let tls: TunnelTlsOptions | null = null;
  if (o.tls !== undefined) {
    if (typeof o.tls !== "object" || o.tls === null)
      throw bad("tls", "must be an object { ca, cert, key, servername }");
    if ((o.tls.cert === undefined) !== (o.tls.key === undefined)) {
      throw bad(
        o.tls.cert === undefined ? "tls.cert" : "tls.key",
        "is required when the other of tls.cert/tls.key is given",
      );
    }
    if (o.tls.reloader !== undefined && !(o.tls.reloader instanceof TlsReloader)) {
      throw bad("tls.reloader", "must be a TlsReloader (runtime/tls/watch.ts)");
    }
    checkPem("tls.ca", o.tls.ca);
    checkPem("tls.cert", o.tls.cert);
    checkPem("tls.key", o.tls.key);
    if (o.tls.servername !== undefined && (typeof o.tls.servername !== "string" || o.tls.servername === "")) {
      throw bad("tls.servername", "must be a non-empty string");
    }
    tls = o.tls;
  }

  let authToken: ResolvedTunnelOptions["authToken"] = null;
  if (o.authToken !== undefined) {
    const t = o.authToken as { site?: unknown; token?: unknown } | null;
    if (typeof t !== "object" || t === null) throw bad("authToken", "must be an object { site, token }");
    if (
      typeof t.site !== "string" ||
      !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(t.site) ||
      t.site.length > MAX_AUTH_SITE_BYTES
    ) {
      throw bad("authToken.site", "must be a site name (a DNS-1123 label)");
    }
    if (typeof t.token !== "string" || t.token === "" || Buffer.byteLength(t.token) > MAX_TOKEN_BYTES) {
      throw bad("authToken.token", `must be a non-empty string of at most ${MAX_TOKEN_BYTES} bytes`);
    }
    authToken = { site: t.site, token: t.token };
  }

  const DAY = 86_400_000;
  const heartbeatIntervalMs = int(
    "heartbeatIntervalMs",
    o.heartbeatIntervalMs,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    0,
    DAY,
  );
  const heartbeatTimeoutMs = int(
    "heartbeatTimeoutMs",
    o.heartbeatTimeoutMs,
    heartbeatIntervalMs * HEARTBEAT_TIMEOUT_FACTOR,
    0,
    DAY * HEARTBEAT_TIMEOUT_FACTOR,
  );
  if (heartbeatIntervalMs > 0 && heartbeatTimeoutMs <= heartbeatIntervalMs) {
    throw bad(
      "heartbeatTimeoutMs",
      `must be greater than heartbeatIntervalMs (${heartbeatIntervalMs}), got ${heartbeatTimeoutMs}`,
    );
  }
  const initialMs = int("reconnectInitialMs", o.reconnectInitialMs, DEFAULT_BACKOFF.initialMs, 1, DAY);
  const maxMs = int("reconnectMaxMs", o.reconnectMaxMs, Math.max(DEFAULT_BACKOFF.maxMs, initialMs), 1, DAY);
  if (maxMs < initialMs)
    throw bad("reconnectMaxMs", `must be >= reconnectInitialMs (${initialMs}), got ${maxMs}`);
  const jitter = o.reconnectJitter ?? DEFAULT_BACKOFF.jitter;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw bad("reconnectJitter", `must be a number in 0..1, got ${String(jitter)}`);
  }
  const connectTimeoutMs = int("connectTimeoutMs", o.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 1, DAY);
  const maxPendingBytes = int(
    "maxPendingBytes",
    o.maxPendingBytes,
    DEFAULT_MAX_PENDING_BYTES,
    0,
    2 ** 31 - 1,
  );
  const maxFrame = int("maxFrame", o.maxFrame, DEFAULT_MAX_FRAME, 64, 2 ** 31 - 1);

  return {
    routers: o.routers.map((r) => ({ host: r.host, port: r.port })),
    group: o.group,
    localAddr: o.localAddr,
    logicalName,
    physicalAddr,
    tls,
    authToken,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    backoff: { initialMs, maxMs, jitter },
    connectTimeoutMs,
    maxPendingBytes,
    maxFrame,
  };
}
