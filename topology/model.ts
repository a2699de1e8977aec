// The typed topology: which sites exist, on which kind of cluster (clouds/), how big, which images,
// TLS, exposure and where Terraform keeps its state. `defaultTopology()` is the seed: nyc on EKS,
// sfc on GKE, each with its cloud's defaults.

import { defaultEksSite } from "../clouds/eks/site.js";
import { defaultGkeSite } from "../clouds/gke/site.js";
import type { Site } from "../clouds/index.js";
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

export interface Topology {
  readonly sites: readonly Site[];
  readonly router: RouterSettings;
  readonly relayImage: string;
  /** Local cluster name shared by every relay node. */
  readonly clusterName: string;
  /** Kubernetes namespace of routers and relay pods. */
  readonly namespace: string;
  readonly tls: boolean;
  /** CIDRs allowed to reach the routers' LoadBalancers. */
  readonly loadBalancerSourceRanges: readonly string[];
  readonly backend: Backend;
}

export const DEFAULT_RELAY_IMAGE = "ghcr.io/cross-cloud-relay/relay:0.1.0";
export const DEFAULT_NAMESPACE = "default";
export const DEFAULT_CLUSTER_NAME = "relay";
/** Relay pods of a site that does not say. */
export const DEFAULT_RELAY_REPLICAS = 3;

/** The seed: nyc on EKS (us-east-1, t3.small 2/1/4, 5 relay pods), sfc on GKE (2 nodes, 3 pods). */
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
    loadBalancerSourceRanges: ["0.0.0.0/0"],
    backend: { kind: "local" },
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
