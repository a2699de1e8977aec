// Options of LocalCluster: types, documented defaults, validation with errors naming the option.
import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import { ConfigError } from "../../contract/initial-hosts.js";
import { CLUSTER_PORT } from "../../contract/ports.js";
import { createLogger, type Logger } from "../observability/log.js";
import { DEFAULT_MAX_FRAME, MIN_MAX_FRAME } from "./codec.js";
import type { Discovery } from "./discovery.js";
import type { Member } from "./member.js";
import { type ClusterSecret, MIN_SECRET_BYTES } from "./secret.js";

export const DEFAULT_CLUSTER_PORT = CLUSTER_PORT;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 500;
export const DEFAULT_SUSPECT_TIMEOUT_MS = 2000;
export const DEFAULT_DISCOVERY_INTERVAL_MS = 3000;
export const DEFAULT_JOIN_TIMEOUT_MS = 3000;
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

export interface LocalClusterOptions {
  /** Site this member belongs to (e.g. `nyc`). */
  readonly site: string;
  /** Cluster name; peers announcing another cluster name are refused at the handshake. */
  readonly cluster: string;
  /** Node name (e.g. the pod name `nyc-1`). */
  readonly name: string;
  /** How to find the other members. */
  readonly discovery: Discovery;
  /**
   * Address the mesh listens on.
   * @default "0.0.0.0"
   */
  readonly bindAddr?: string;
  /**
   * Port the mesh listens on; 0 = an ephemeral port (tests).
   * @default 7800
   */
  readonly bindPort?: number;
  /**
   * Address the other members use to reach this one (the pod IP).
   * @default bindAddr, or 127.0.0.1 when bindAddr is a wildcard
   */
  readonly advertiseAddr?: string;
  /**
   * Interval of the heartbeats sent to every member.
   * @default 500
   */
  readonly heartbeatIntervalMs?: number;
  /**
   * A member is suspected (and removed) when nothing was heard from it for this long, or at once
   * when its connection is lost and cannot be re-opened. Must exceed 2 x heartbeatIntervalMs.
   * @default 2000
   */
  readonly suspectTimeoutMs?: number;
  /**
   * Discovery is re-queried this often (new members, merge after a partition heals).
   * @default 3000
   */
  readonly discoveryIntervalMs?: number;
  /**
   * How long to look for a coordinator before starting a singleton view.
   * @default 3000
   */
  readonly joinTimeoutMs?: number;
  /**
   * Largest frame accepted or sent (length prefix excluded); bounds every allocation per connection.
   * @default 4 MiB
   */
  readonly maxFrame?: number;
  /**
   * Bytes buffered towards one peer above which `send` returns false (wait for 'drain').
   * `send` throws a ClusterError (BUFFER_FULL) at 16 x this value rather than grow without bound.
   * @default 1 MiB
   */
  readonly highWaterMark?: number;
  /**
   * Whether a multicast (`send(null, ...)`) is also delivered to the sender itself.
   * @default false
   */
  readonly multicastToSelf?: boolean;
  /**
   * Admission filter, checked at every handshake and on every heartbeat tick: a peer it refuses
   * is disconnected and treated as unreachable (e.g. to fence off peers, or simulate a partition).
   * @default every peer of the same cluster is admitted
   */
  readonly admit?: (peer: Member) => boolean;
  /**
   * The site's cluster secret (secret.ts: `readClusterSecretFile`, or `clusterSecretFromFile` to
   * follow a mounted file). With it every mesh connection is authenticated both ways
   * (challenge-response, docs/security/cluster-port.md) and peers without it are refused; every
   * member of the site must have it. A function is asked once per handshake (rotation).
   * @default none: the mesh port is unauthenticated (anyone who can connect may join); logged at start
   */
  readonly secret?: ClusterSecret | (() => ClusterSecret);
  /** @default a pino logger named `cluster` */
  readonly logger?: Logger;
}

/** Options with every default applied. */
export interface ResolvedClusterOptions
  extends Required<Omit<LocalClusterOptions, "admit" | "advertiseAddr" | "secret">> {
  readonly advertiseAddr: string;
  /** The secret of each handshake; null = unauthenticated. */
  readonly secret: (() => ClusterSecret) | null;
  readonly admit: (peer: Member) => boolean;
  readonly uuid: string;
}

function positiveInt(name: string, v: number, min = 1): number {
  if (!Number.isInteger(v) || v < min) {
    throw new ConfigError(`LocalCluster option ${name} must be an integer >= ${min} (got ${v})`);
  }
  return v;
}

function nonEmpty(name: string, v: unknown): string {
  if (typeof v !== "string" || v.trim() === "" || Buffer.byteLength(v) > 255) {
    throw new ConfigError(`LocalCluster option ${name} must be a non-empty string of at most 255 bytes`);
  }
  return v;
}

/** Applies defaults and validates; throws ConfigError naming the offending option. */
export function resolveClusterOptions(o: LocalClusterOptions): ResolvedClusterOptions {
  const site = nonEmpty("site", o.site);
  const cluster = nonEmpty("cluster", o.cluster);
  const name = nonEmpty("name", o.name);
  if (!o.discovery || typeof o.discovery.find !== "function") {
    throw new ConfigError("LocalCluster option discovery must be a Discovery (an object with find())");
  }
  const bindAddr = o.bindAddr ?? "0.0.0.0";
  if (isIP(bindAddr) === 0)
    throw new ConfigError(`LocalCluster option bindAddr "${bindAddr}" is not an IP address`);
  const bindPort = o.bindPort ?? DEFAULT_CLUSTER_PORT;
  if (!Number.isInteger(bindPort) || bindPort < 0 || bindPort > 65535) {
    throw new ConfigError(`LocalCluster option bindPort must be 0..65535 (got ${bindPort})`);
  }
  const wildcard = bindAddr === "0.0.0.0" || bindAddr === "::";
  const advertiseAddr = nonEmpty("advertiseAddr", o.advertiseAddr ?? (wildcard ? "127.0.0.1" : bindAddr));
  const heartbeatIntervalMs = positiveInt(
    "heartbeatIntervalMs",
    o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    10,
  );
  const suspectTimeoutMs = positiveInt(
    "suspectTimeoutMs",
    o.suspectTimeoutMs ?? DEFAULT_SUSPECT_TIMEOUT_MS,
    20,
  );
  if (suspectTimeoutMs <= 2 * heartbeatIntervalMs) {
    throw new ConfigError(
      `LocalCluster option suspectTimeoutMs (${suspectTimeoutMs}) must exceed 2 x heartbeatIntervalMs (${heartbeatIntervalMs})`,
    );
  }
  const maxFrame = positiveInt("maxFrame", o.maxFrame ?? DEFAULT_MAX_FRAME, MIN_MAX_FRAME);
  if (maxFrame > 0x7fffffff) throw new ConfigError("LocalCluster option maxFrame must be at most 2^31-1");
  return {
    secret: resolveSecret(o.secret),
    site,
    cluster,
    name,
    discovery: o.discovery,
    bindAddr,
    bindPort,
    advertiseAddr,
    heartbeatIntervalMs,
    suspectTimeoutMs,
    discoveryIntervalMs: positiveInt(
      "discoveryIntervalMs",
      o.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS,
      10,
    ),
    joinTimeoutMs: positiveInt("joinTimeoutMs", o.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS, 10),
    maxFrame,
    highWaterMark: positiveInt("highWaterMark", o.highWaterMark ?? DEFAULT_HIGH_WATER_MARK, 1),
    multicastToSelf: o.multicastToSelf ?? false,
    admit: o.admit ?? (() => true),
    logger: o.logger ?? createLogger("cluster", { site, node: name }),
    uuid: randomUUID(),
  };
}

function resolveSecret(s: LocalClusterOptions["secret"]): (() => ClusterSecret) | null {
  if (s === undefined) return null;
  if (typeof s === "function") return s;
  const ok = (b: unknown) => Buffer.isBuffer(b) && b.length >= MIN_SECRET_BYTES;
  if (!s || !ok(s.current) || !Array.isArray(s.accepted) || !s.accepted.every(ok) || !s.accepted.length) {
    throw new ConfigError(
      "LocalCluster option secret must be a ClusterSecret ({ current, accepted }, keys of at least 32 bytes: see readClusterSecretFile)",
    );
  }
  return () => s;
}
