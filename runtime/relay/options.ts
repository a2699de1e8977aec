// What a RelayChannel is built from: its options, the timings it passes to the local cluster, and
// the defaults of both (docs/RUNTIME.md, docs/DELIVERY.md).
import type { RouterEndpoint } from "../../contract/initial-hosts.js";
import type { Discovery } from "../cluster/discovery.js";
import type { ClusterSecret } from "../cluster/secret.js";
import type { Logger } from "../observability/log.js";
import type { TunnelTlsOptions } from "../tunnel/options.js";
import type { ReceiveLimits } from "./delivery/receive-window.js";
import type { SendBufferLimits } from "./delivery/send-buffer.js";
import type { SiteCluster } from "./site-cluster.js";

/** Largest payload by default: envelope + frame overhead stay under the local cluster's 4 MiB frames. */
export const DEFAULT_CHANNEL_MAX_PAYLOAD = 3 * 1024 * 1024;
/** Unstable cross-site messages not re-sent for this long are re-sent (ms). */
export const DEFAULT_RETRANSMIT_TIMEOUT_MS = 1000;
/** Period of the delivery reports (member -> site master -> origin) and checks (ms). */
export const DEFAULT_ACK_INTERVAL_MS = 50;
/** A site unreachable this long with messages waiting for it is declared gone (ms). */
export const DEFAULT_SITE_GONE_MS = 5 * 60_000;

export interface RelayChannelOptions {
  /** Our site (e.g. `nyc`). */
  readonly site: string;
  /** Local cluster name shared by the members. */
  readonly cluster: string;
  /** Our member name (unique in the site; the pod name in Kubernetes). */
  readonly name: string;
  /** How the site's members find each other. */
  readonly discovery: Discovery;
  /** Every router (`TUNNEL_INITIAL_HOSTS`); used only while we are a site master. */
  readonly routers: readonly RouterEndpoint[];
  /** @default "127.0.0.1" */
  readonly bindAddr?: string;
  /** Mesh port; 0 = ephemeral. @default 7800 */
  readonly bindPort?: number;
  /** Address other members use to reach us. @default bindAddr */
  readonly advertiseAddr?: string;
  /** How many of the oldest members act as site masters. @default 1 */
  readonly siteMasters?: number;
  /** TLS towards the routers. @default plain TCP */
  readonly tls?: TunnelTlsOptions;
  /** Our site's token for routers in token mode (ROUTER_TOKEN_FILE's content). @default none */
  readonly routerToken?: string;
  /** Router group of the bridge. @default "bridge" */
  readonly bridgeGroup?: string;
  /** Heartbeat period on router connections. @default the tunnel client's (10 s) */
  readonly routerHeartbeatIntervalMs?: number;
  /** Bridge membership re-read period. @default 2000 */
  readonly pollIntervalMs?: number;
  /** Site view re-announce period. @default 10000 */
  readonly announceIntervalMs?: number;
  /** Largest payload accepted by send() and from peers. @default 3 MiB */
  readonly maxPayload?: number;
  /** Timings of the local cluster (failure detection, discovery). @default LocalCluster's defaults */
  readonly clusterTuning?: ClusterTuning;
  /**
   * The site's cluster secret: authenticates the mesh port (LocalClusterOptions.secret).
   * @default none (unauthenticated mesh port, logged at start)
   */
  readonly clusterSecret?: ClusterSecret | (() => ClusterSecret);
  /** Creates the local cluster. @default a LocalCluster */
  readonly createCluster?: (options: SiteClusterOptions) => SiteCluster;
  readonly logger?: Logger;
  /**
   * Zero-loss cross-site delivery (docs/DELIVERY.md): exactly once, per-sender FIFO, across site
   * master and router crashes, with a bounded send buffer. Must be the same on every member.
   * `false` is the bare relay (like JGroups RELAY2), kept for benchmarks. @default true
   */
  readonly reliable?: boolean;
  /**
   * Bounds of the buffer of unstable cross-site messages: per destination site (so one slow or
   * gone site never refuses traffic to another), in total and in number of sites.
   * @default 32 MiB and 32768 messages per site, 128 MiB in total, 64 sites
   */
  readonly sendBuffer?: Partial<SendBufferLimits>;
  /**
   * A site with messages of ours waiting that stays unreachable this long is declared gone: its
   * backlog is dropped ("site-gone" event, counter) so it holds no memory and no budget.
   * @default DEFAULT_SITE_GONE_MS (5 min)
   */
  readonly siteGoneMs?: number;
  /** Bounds of the receive windows (held-back messages per sender). */
  readonly receiveLimits?: Partial<ReceiveLimits>;
  /** @default DEFAULT_RETRANSMIT_TIMEOUT_MS */
  readonly retransmitTimeoutMs?: number;
  /** @default DEFAULT_ACK_INTERVAL_MS */
  readonly ackIntervalMs?: number;
}

export interface ClusterTuning {
  readonly heartbeatIntervalMs?: number;
  readonly suspectTimeoutMs?: number;
  readonly discoveryIntervalMs?: number;
  readonly joinTimeoutMs?: number;
}

/** What createCluster receives. */
export interface SiteClusterOptions extends ClusterTuning {
  readonly site: string;
  readonly cluster: string;
  readonly name: string;
  readonly discovery: Discovery;
  readonly bindAddr: string;
  readonly bindPort: number;
  readonly advertiseAddr?: string;
  readonly secret?: ClusterSecret | (() => ClusterSecret);
  readonly logger: Logger;
}

/** What a channel with `o` gives its local cluster (bind address and port defaulted). */
export function siteClusterOptions(o: RelayChannelOptions, logger: Logger): SiteClusterOptions {
  return {
    site: o.site,
    cluster: o.cluster,
    name: o.name,
    discovery: o.discovery,
    bindAddr: o.bindAddr ?? "127.0.0.1",
    bindPort: o.bindPort ?? 7800,
    ...(o.advertiseAddr ? { advertiseAddr: o.advertiseAddr } : {}),
    ...(o.clusterSecret ? { secret: o.clusterSecret } : {}),
    ...o.clusterTuning,
    logger,
  };
}
