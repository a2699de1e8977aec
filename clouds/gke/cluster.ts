// A GKE cluster on its own VPC network: the default node pool is removed and replaced by a node
// pool managed separately (so resizing it never touches the cluster). Dataplane V2 enforces the
// relay pods' NetworkPolicy. The GoogleProvider (project) is configured by the holding stack.

import { ComputeNetwork } from "@cdktf/provider-google/lib/compute-network/index.js";
import { ComputeSubnetwork } from "@cdktf/provider-google/lib/compute-subnetwork/index.js";
import { ContainerCluster } from "@cdktf/provider-google/lib/container-cluster/index.js";
import { ContainerNodePool } from "@cdktf/provider-google/lib/container-node-pool/index.js";
import { DataGoogleClientConfig } from "@cdktf/provider-google/lib/data-google-client-config/index.js";
import { GoogleProvider } from "@cdktf/provider-google/lib/provider/index.js";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { Fn, Token } from "cdktf";
import { Construct } from "constructs";
import { assertOtherStack, type IKubeCluster } from "../../constructs/kube-cluster.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { GKE_DEFAULTS } from "./site.js";

export interface GkeNodePoolProps {
  /** @default "e2-medium" */
  readonly machineType?: string;
  /** Nodes per zone of the cluster's location. @default 2 */
  readonly nodeCount?: number;
}

export interface GkeClusterProps {
  /** Cluster name (also names the network, subnetwork and node pool). */
  readonly name: string;
  /** Zone (zonal cluster, e.g. "us-west1-a") or region (regional cluster, e.g. "us-west1"). */
  readonly location: string;
  /** @default the provider's project (GOOGLE_PROJECT) */
  readonly project?: string;
  /** @default { machineType: "e2-medium", nodeCount: 2 } */
  readonly nodePool?: GkeNodePoolProps;
  /**
   * Refuse `terraform destroy` of the cluster. The google provider (>= 5) defaults it to true, which
   * makes `cdktf destroy` fail; this construct sets it explicitly. @default false
   */
  readonly deletionProtection?: boolean;
  /** Primary range of the subnetwork (nodes). @default "10.10.0.0/20" */
  readonly nodeCidr?: string;
  /** Secondary range for pods. @default "10.20.0.0/16" */
  readonly podCidr?: string;
  /** Secondary range for services. @default "10.30.0.0/20" */
  readonly serviceCidr?: string;
  /** @default "REGULAR" */
  readonly releaseChannel?: "RAPID" | "REGULAR" | "STABLE";
}

export class GkeCluster extends Construct implements IKubeCluster {
  readonly clusterName: string;
  /** None: GKE's LoadBalancer Services are external (and GKE opens its firewall) by default. */
  readonly loadBalancerAnnotations: Readonly<Record<string, string>> = {};
  readonly location: string;
  readonly project: string | undefined;
  /** API server host name or IP (token; no scheme). */
  readonly endpoint: string;
  /** Base64 PEM of the cluster CA (token). */
  readonly clusterCaCertificate: string;
  readonly kubeconfigCommand: string;
  readonly cluster: ContainerCluster;
  readonly nodePool: ContainerNodePool;

  constructor(scope: Construct, id: string, props: GkeClusterProps) {
    super(scope, id);
    const nodeCount = props.nodePool?.nodeCount ?? GKE_DEFAULTS.nodeCount;
    if (!Token.isUnresolved(nodeCount) && (!Number.isInteger(nodeCount) || nodeCount < 1)) {
      throw new ValidationError(
        this,
        `GkeCluster: nodePool.nodeCount must be an integer >= 1 (got ${nodeCount})`,
      );
    }
    this.clusterName = props.name;
    this.location = props.location;
    this.project = props.project;
    const project = props.project ? { project: props.project } : {};

    const network = new ComputeNetwork(this, "network", {
      name: `${props.name}-net`,
      autoCreateSubnetworks: false,
      ...project,
    });
    const subnetwork = new ComputeSubnetwork(this, "subnetwork", {
      name: `${props.name}-subnet`,
      network: network.id,
      region: regionOf(props.location),
      ipCidrRange: props.nodeCidr ?? "10.10.0.0/20",
      secondaryIpRange: [
        { rangeName: "pods", ipCidrRange: props.podCidr ?? "10.20.0.0/16" },
        { rangeName: "services", ipCidrRange: props.serviceCidr ?? "10.30.0.0/20" },
      ],
      ...project,
    });

    this.cluster = new ContainerCluster(this, "cluster", {
      name: props.name,
      location: props.location,
      network: network.id,
      subnetwork: subnetwork.id,
      networkingMode: "VPC_NATIVE",
      ipAllocationPolicy: { clusterSecondaryRangeName: "pods", servicesSecondaryRangeName: "services" },
      datapathProvider: "ADVANCED_DATAPATH",
      // GKE insists on creating a default pool; it is removed right away in favour of ours.
      removeDefaultNodePool: true,
      initialNodeCount: 1,
      deletionProtection: props.deletionProtection ?? GKE_DEFAULTS.deletionProtection,
      releaseChannel: { channel: props.releaseChannel ?? "REGULAR" },
      ...project,
    });

    this.nodePool = new ContainerNodePool(this, "node-pool", {
      name: `${props.name}-pool`,
      cluster: this.cluster.id,
      location: props.location,
      nodeCount,
      management: { autoRepair: true, autoUpgrade: true },
      nodeConfig: {
        machineType: props.nodePool?.machineType ?? GKE_DEFAULTS.machineType,
        oauthScopes: ["https://www.googleapis.com/auth/cloud-platform"],
      },
      ...project,
    });

    this.endpoint = this.cluster.endpoint;
    this.clusterCaCertificate = this.cluster.masterAuth.clusterCaCertificate;
    const zoneOrRegion = isZone(props.location) ? "--zone" : "--region";
    this.kubeconfigCommand =
      `gcloud container clusters get-credentials ${props.name} ${zoneOrRegion} ${props.location}` +
      (props.project ? ` --project ${props.project}` : "");
  }

  /**
   * A KubernetesProvider for a consumer stack. The access token comes from the consumer's own
   * GoogleProvider (`google_client_config`), read at each Terraform run.
   */
  configureKubernetesProvider(scope: Construct, id = "kubernetes"): KubernetesProvider {
    assertOtherStack("GkeCluster", this, scope);
    new GoogleProvider(scope, `${id}-google`, this.project ? { project: this.project } : {});
    const client = new DataGoogleClientConfig(scope, `${id}-google-client`);
    return new KubernetesProvider(scope, id, {
      host: `https://${this.endpoint}`,
      clusterCaCertificate: Fn.base64decode(this.clusterCaCertificate),
      token: client.accessToken,
    });
  }
}

/** `us-west1-a` (zone) -> `us-west1`; a region is returned unchanged. */
export function regionOf(location: string): string {
  return isZone(location) ? location.replace(/-[a-z]$/, "") : location;
}

function isZone(location: string): boolean {
  return /\d-[a-z]$/.test(location);
}
