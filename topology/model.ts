// The typed topology: which sites exist, on which kind of cluster (clouds/), how big, which images,
// TLS, exposure and where Terraform keeps its state. `defaultTopology()` is the seed: nyc on EKS,
// sfc on GKE, each with its cloud's defaults.

import { defaultEksSite } from "../clouds/eks/site.js";
import { defaultGkeSite } from "../clouds/gke/site.js";
import type { Site } from "../clouds/index.js";
import { DEFAULT_CERT_VALIDITY_HOURS, DEFAULT_EARLY_RENEWAL_HOURS } from "../constructs/relay-pki.js";
import { CodedError } from "../contract/errors.js";
import { ROUTER_HTTP_PORT, ROUTER_PORT } from "../contract/ports.js";

export type { CloudKind, EksSite, ExistingSite, GkeSite, Site } from "../clouds/index.js";

export type Backend =
  | { readonly kind: "local" }
  | {
      readonly kind: "s3";
      readonly bucket: string;
      readonly region: string;
      /** Each stack's key is `<keyPrefix>/<stack>.tfstate`. */
      readonly keyPrefix: string;
      readonly dynamodbTable: string | undefined;
    }
  | {
      readonly kind: "gcs";
      readonly bucket: string;
      /** Each stack's prefix is `<prefix>/<stack>`. */
      readonly prefix: string;
    };

export interface RouterSettings {
  /** Public gossip port of the LoadBalancer and the container. */
  readonly port: number;
  /** Cluster-internal HTTP port (health, metrics). */
  readonly httpPort: number;
  readonly replicas: number;
  readonly image: string;
}

/**
 * Who may reach the routers' LoadBalancers. `egress`: every site's egress addresses (EKS NAT
 * gateway EIP, GKE Cloud NAT addresses, an existing site's `egressCidrs`), read from the cluster
 * stacks; `cidrs`: literal CIDRs added to them. `{ egress: false, cidrs: ["0.0.0.0/0"] }` is the
 * explicit opt-out (anyone may connect; authentication still applies).
 */
export interface SourceRanges {
  readonly egress: boolean;
  readonly cidrs: readonly string[];
}

/**
 * How router clients authenticate: `tls` (mutual TLS, site identity in the client certificate;
 * the only mode with `tls: true`), `tokens` (plain TCP, one generated token per site; the default
 * with `tls: false`) or `open` (plain TCP, anyone who can connect: JGroups TUNNEL clients).
 */
export type RouterAuthMode = "tls" | "tokens" | "open";

/** Lifetime and early renewal of the router and site certificates (the CA is not rotated). */
export interface CertificateSettings {
  readonly validityHours: number;
  readonly earlyRenewalHours: number;
}

/**
 * Scraping by a Prometheus outside the namespace (docs/DEPLOY.md, "Monitoring"): every site and
 * router gets a metrics Service with `prometheus.io/*` annotations; the site NetworkPolicy admits
 * the HTTP port from `namespace` (null: only the relay namespace); `serviceMonitor` adds
 * Prometheus Operator ServiceMonitors (off by default: they need the operator's CRDs).
 */
export interface MonitoringSettings {
  readonly namespace: string | null;
  readonly serviceMonitor: boolean;
  readonly serviceMonitorLabels: Readonly<Record<string, string>>;
  readonly interval: string;
}

/**
 * Replicated maps on every site (docs/DEPLOY.md, "Replicated maps"): the maps each relay node
 * hosts, which sites each site backs up to, and whose pods may call the maps' API.
 */
export interface KvSettings {
  /** Map names (1..64 of letters, digits, '.', '_', '-'; at most 64, no duplicates). */
  readonly maps: readonly string[];
  /**
   * Site -> the sites it backs up to (KV_BACKUP_SITES). A site not listed backs up to every
   * other site (the runtime's default, KV_BACKUP_SITES unset).
   */
  readonly backups: Readonly<Record<string, readonly string[]>>;
  /**
   * Namespaces whose pods the site NetworkPolicy admits to the kv port; undefined: the relay
   * namespace only. An empty list admits no pod (`kubectl exec` / `port-forward` only).
   */
  readonly clientNamespaces: readonly string[] | undefined;
}

export interface Topology {
  readonly sites: readonly Site[];
  readonly router: RouterSettings;
  readonly relayImage: string;
  /** Local cluster name shared by every relay node. */
  readonly clusterName: string;
  /** Kubernetes namespace of routers and relay pods. */
  readonly namespace: string;
  readonly tls: boolean;
  readonly routerAuth: RouterAuthMode;
  readonly certificates: CertificateSettings;
  /** Who may reach the routers' LoadBalancers. */
  readonly loadBalancerSourceRanges: SourceRanges;
  readonly backend: Backend;
  /**
   * Tags (AWS) / labels (GCP) added to every cloud resource, beside `part-of` and `site`: the
   * providers' default tags and labels, the NLBs Kubernetes creates on EKS, GKE resource labels.
   */
  readonly tags: Readonly<Record<string, string>>;
  /** Metrics Services, scrape access and ServiceMonitors. */
  readonly monitoring: MonitoringSettings;
  /** Replicated maps on the sites; undefined (the seed): none, nothing kv is deployed. */
  readonly kv?: KvSettings | undefined;
}

export const DEFAULT_RELAY_IMAGE = "ghcr.io/cross-cloud-relay/relay:0.1.0";
export const DEFAULT_NAMESPACE = "default";
export const DEFAULT_CLUSTER_NAME = "relay";
/** Relay pods of a site that does not say. */
export const DEFAULT_RELAY_REPLICAS = 3;

/**
 * The seed: nyc on EKS (us-east-1, t3.small 2/1/4, 5 relay pods), sfc on GKE (2 nodes, 3 pods);
 * mutual TLS, routers open only to the sites' egress addresses.
 */
export function defaultTopology(): Topology {
  return {
    sites: [defaultEksSite("nyc", 5), defaultGkeSite("sfc", DEFAULT_RELAY_REPLICAS)],
    router: {
      port: ROUTER_PORT,
      httpPort: ROUTER_HTTP_PORT,
      replicas: 1,
      image: DEFAULT_RELAY_IMAGE,
    },
    relayImage: DEFAULT_RELAY_IMAGE,
    clusterName: DEFAULT_CLUSTER_NAME,
    namespace: DEFAULT_NAMESPACE,
    tls: true,
    routerAuth: "tls",
    certificates: {
      validityHours: DEFAULT_CERT_VALIDITY_HOURS,
      earlyRenewalHours: DEFAULT_EARLY_RENEWAL_HOURS,
    },
    loadBalancerSourceRanges: { egress: true, cidrs: [] },
    backend: { kind: "local" },
    tags: {},
    monitoring: { namespace: "monitoring", serviceMonitor: false, serviceMonitorLabels: {}, interval: "30s" },
  };
}

/** Every mistake found in a topology document, one line each. */
export class TopologyError extends CodedError<"INVALID_TOPOLOGY"> {
  override readonly name = "TopologyError";
  constructor(
    readonly problems: readonly string[],
    source = "topology",
  ) {
    super(
      "INVALID_TOPOLOGY",
      `${source} is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`,
    );
  }
}
