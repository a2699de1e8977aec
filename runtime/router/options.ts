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
  /** Close connections silent for this many ms (not even a heartbeat); 0 = never. @default 0 */
  readonly expiryMs?: number;
  /** Output bytes queued for one connection above which its senders are paused. @default 4 MiB */
  readonly maxQueueBytes?: number;
  /** A receiver that stays over `maxQueueBytes` this long is disconnected. @default 10000 */
  readonly slowTimeoutMs?: number;
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
}

export const DEFAULT_ROUTER_PORT = ROUTER_PORT;
export const DEFAULT_HTTP_PORT = ROUTER_HTTP_PORT;
export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SLOW_TIMEOUT_MS = 10_000;
/** Registrations one site identity may hold on one router (see policy.ts). */
export const DEFAULT_MAX_REGISTRATIONS_PER_IDENTITY = 16_384;
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
  readonly tls: RouterTlsOptions | null;
  /** How clients are identified: mtls (tls.clientAuth), token (authTokens) or open. */
  readonly authMode: "mtls" | "token" | "open";
  readonly authTokens: string | null;
  readonly allowGroups: AllowGroups | null;
  readonly maxRegistrationsPerIdentity: number;
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
  return {
    port: intIn("port", o.port ?? DEFAULT_ROUTER_PORT, 0, 65535),
    bind: o.bind ?? "0.0.0.0",
    httpPort: httpPort === null ? null : intIn("httpPort", httpPort, 0, 65535),
    maxFrame: intIn("maxFrame", o.maxFrame ?? DEFAULT_MAX_FRAME, 16, MAX_MAX_FRAME),
    suspect: o.suspect ?? true,
    expiryMs: intIn("expiryMs", o.expiryMs ?? 0, 0, 2 ** 31 - 1),
    maxQueueBytes: intIn("maxQueueBytes", o.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES, 1024, 2 ** 31 - 1),
    slowTimeoutMs: intIn("slowTimeoutMs", o.slowTimeoutMs ?? DEFAULT_SLOW_TIMEOUT_MS, 1, 2 ** 31 - 1),
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
  };
}
