// A GKE cluster on its own VPC network: the default node pool is removed and replaced by a node
// pool managed separately (so resizing it never touches the cluster). Dataplane V2 enforces the
// relay pods' NetworkPolicy. The nodes are private (no external IPs) and reach the internet
// through Cloud NAT on reserved static addresses, so the cluster's egress addresses are fixed and
// known (`egressCidrs`) and the other sites' routers can admit exactly them. Hardened by default:
// the nodes run as a dedicated service account with logging/monitoring roles only (no
// cloud-platform scope), Workload Identity, shielded nodes (secure boot, integrity monitoring),
// legacy ABAC off (docs/DEPLOY.md, "Hardening"). The GoogleProvider (project) is configured by the
// holding stack.

import { ComputeAddress } from "@cdktf/provider-google/lib/compute-address/index.js";
import { ComputeNetwork } from "@cdktf/provider-google/lib/compute-network/index.js";
import { ComputeRouter } from "@cdktf/provider-google/lib/compute-router/index.js";
import { ComputeRouterNat } from "@cdktf/provider-google/lib/compute-router-nat/index.js";
import { ComputeSubnetwork } from "@cdktf/provider-google/lib/compute-subnetwork/index.js";
import { ContainerCluster } from "@cdktf/provider-google/lib/container-cluster/index.js";
import { ContainerNodePool } from "@cdktf/provider-google/lib/container-node-pool/index.js";
import { DataGoogleClientConfig } from "@cdktf/provider-google/lib/data-google-client-config/index.js";
import { ProjectIamMember } from "@cdktf/provider-google/lib/project-iam-member/index.js";
import { GoogleProvider } from "@cdktf/provider-google/lib/provider/index.js";
import { ServiceAccount } from "@cdktf/provider-google/lib/service-account/index.js";
import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { Fn, Token } from "cdktf";
import { Construct } from "constructs";
import { assertOtherStack, type IKubeCluster } from "../../constructs/kube-cluster.js";
import { gcpLabelProblem } from "../../constructs/tags.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { GKE_DEFAULTS } from "./site.js";

export interface GkeNodePoolProps {
  /** @default "e2-medium" */
  readonly machineType?: string;
  /** Nodes per zone of the cluster's location (the initial count with autoscaling). @default 2 */
  readonly nodeCount?: number;
  /**
   * Cluster autoscaler bounds, nodes per zone; nodeCount must lie within them. @default none
   * (a fixed nodeCount)
   */
  readonly autoscaling?: { readonly min: number; readonly max: number };
}

/**
 * Roles of the dedicated node service account: what a node needs to write logs and metrics and
 * nothing else (GKE hardening guide, "least privilege service account").
 * @see https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster#use_least_privilege_sa
 */
export const GKE_NODE_ROLES = [
  "roles/logging.logWriter",
  "roles/monitoring.metricWriter",
  "roles/monitoring.viewer",
  "roles/stackdriver.resourceMetadata.writer",
] as const;

/** OAuth scopes of the nodes: logging, monitoring, read-only storage (image pulls), never cloud-platform. */
export const GKE_NODE_SCOPES = [
  "https://www.googleapis.com/auth/logging.write",
  "https://www.googleapis.com/auth/monitoring",
  "https://www.googleapis.com/auth/devstorage.read_only",
] as const;

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
  /**
   * Static external addresses of the Cloud NAT: the cluster's egress addresses. One NAT address
   * serves 64,512 concurrent connections per destination with the default port allocation.
   * @default 1
   */
  readonly natAddressCount?: number;
  /**
   * Email of the service account the nodes run as. @default a dedicated account
   * `<name>-nodes` created here with GKE_NODE_ROLES only (never the Compute Engine default account)
   */
  readonly nodeServiceAccount?: string;
  /**
   * Workload Identity (`<project>.svc.id.goog`) on the cluster and the GKE metadata server on the
   * nodes: pods cannot read the node's credentials from the metadata server. @default true
   */
  readonly workloadIdentity?: boolean;
  /** Labels of the cluster and of the nodes' VMs and disks (GCP label rules). @default {} */
  readonly labels?: Readonly<Record<string, string>>;
}

/** Most Cloud NAT addresses the construct reserves. */
const MAX_NAT_ADDRESSES = 16;

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
  /** `<address>/32` of each reserved Cloud NAT address (tokens). */
  readonly egressCidrs: readonly string[];
  /**
   * The node range and the pod range: a pod that connects to its own router's LoadBalancer IP is
   * answered inside the cluster (Dataplane V2), keeping its own address.
   */
  readonly inClusterCidrs: readonly string[];
  readonly natAddresses: readonly ComputeAddress[];
  /** The nodes' dedicated service account, when this construct created it. */
  readonly nodeServiceAccount: ServiceAccount | undefined;
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
    const natAddressCount = props.natAddressCount ?? 1;
    if (
      !Token.isUnresolved(natAddressCount) &&
      (!Number.isInteger(natAddressCount) || natAddressCount < 1 || natAddressCount > MAX_NAT_ADDRESSES)
    ) {
      throw new ValidationError(
        this,
        `GkeCluster: natAddressCount must be an integer in 1..${MAX_NAT_ADDRESSES} (got ${natAddressCount})`,
      );
    }
    const autoscaling = props.nodePool?.autoscaling;
    if (autoscaling) validateAutoscaling(this, autoscaling, nodeCount);
    const labels = { ...(props.labels ?? {}) };
    for (const [k, v] of Object.entries(labels)) {
      const problem = gcpLabelProblem(k, v);
      if (problem) throw new ValidationError(this, `GkeCluster: labels.${k}: "${v}": ${problem}`);
    }
    this.clusterName = props.name;
    this.location = props.location;
    this.project = props.project;
    const project = props.project ? { project: props.project } : {};
    // The project id for IAM bindings and the workload pool: given, or the provider's.
    const projectId = props.project ?? new DataGoogleClientConfig(this, "client").project;

    // A node service account with the logging and monitoring roles only.
    const accountId = `${props.name.slice(0, 23).replace(/-+$/, "")}-nodes`;
    this.nodeServiceAccount =
      props.nodeServiceAccount === undefined
        ? new ServiceAccount(this, "node-sa", {
            accountId,
            displayName: `GKE nodes of ${props.name} (logging and monitoring only)`,
            ...project,
          })
        : undefined;
    const nodeSa = this.nodeServiceAccount;
    const nodeRoles = nodeSa
      ? GKE_NODE_ROLES.map(
          (role) =>
            new ProjectIamMember(this, `node-sa-${role.split("/")[1]!.replace(/\./g, "-")}`, {
              project: projectId,
              role,
              member: `serviceAccount:${nodeSa.email}`,
            }),
        )
      : [];
    const nodeSaEmail = nodeSa ? nodeSa.email : props.nodeServiceAccount!;
    const workloadIdentity = props.workloadIdentity ?? true;

    const network = new ComputeNetwork(this, "network", {
      name: `${props.name}-net`,
      autoCreateSubnetworks: false,
      ...project,
    });
    const region = regionOf(props.location);
    const nodeCidr = props.nodeCidr ?? "10.10.0.0/20";
    const podCidr = props.podCidr ?? "10.20.0.0/16";
    const subnetwork = new ComputeSubnetwork(this, "subnetwork", {
      name: `${props.name}-subnet`,
      network: network.id,
      region,
      ipCidrRange: nodeCidr,
      secondaryIpRange: [
        { rangeName: "pods", ipCidrRange: podCidr },
        { rangeName: "services", ipCidrRange: props.serviceCidr ?? "10.30.0.0/20" },
      ],
      // Private nodes still reach Google APIs (image pulls from Artifact Registry, logging).
      privateIpGoogleAccess: true,
      ...project,
    });

    // Cloud NAT on reserved addresses: the only way out for the private nodes.
    const addresses: ComputeAddress[] = [];
    for (let i = 0; i < natAddressCount; i++) {
      addresses.push(
        new ComputeAddress(this, `nat-ip-${i}`, {
          name: `${props.name}-nat-${i}`,
          region,
          addressType: "EXTERNAL",
          ...project,
        }),
      );
    }
    this.natAddresses = addresses;
    const router = new ComputeRouter(this, "nat-router", {
      name: `${props.name}-router`,
      network: network.id,
      region,
      ...project,
    });
    new ComputeRouterNat(this, "nat", {
      name: `${props.name}-nat`,
      router: router.name,
      region,
      natIpAllocateOption: "MANUAL_ONLY",
      natIps: addresses.map((a) => a.selfLink),
      sourceSubnetworkIpRangesToNat: "ALL_SUBNETWORKS_ALL_IP_RANGES",
      logConfig: { enable: true, filter: "ERRORS_ONLY" },
      ...project,
    });
    this.egressCidrs = addresses.map((a) => `${a.address}/32`);
    this.inClusterCidrs = [nodeCidr, podCidr];

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
      enableLegacyAbac: false,
      enableShieldedNodes: true,
      ...(workloadIdentity ? { workloadIdentityConfig: { workloadPool: `${projectId}.svc.id.goog` } } : {}),
      resourceLabels: labels,
      ...project,
    });

    this.nodePool = new ContainerNodePool(this, "node-pool", {
      name: `${props.name}-pool`,
      cluster: this.cluster.id,
      location: props.location,
      ...(autoscaling
        ? {
            initialNodeCount: nodeCount,
            autoscaling: { minNodeCount: autoscaling.min, maxNodeCount: autoscaling.max },
          }
        : { nodeCount }),
      management: { autoRepair: true, autoUpgrade: true },
      nodeConfig: {
        machineType: props.nodePool?.machineType ?? GKE_DEFAULTS.machineType,
        serviceAccount: nodeSaEmail,
        oauthScopes: [...GKE_NODE_SCOPES],
        shieldedInstanceConfig: { enableSecureBoot: true, enableIntegrityMonitoring: true },
        // GKE_METADATA hides the node's credentials from pods (needs Workload Identity on).
        ...(workloadIdentity ? { workloadMetadataConfig: { mode: "GKE_METADATA" } } : {}),
        metadata: { "disable-legacy-endpoints": "true" },
        resourceLabels: labels,
      },
      // No external IPs on the nodes: their traffic leaves through the Cloud NAT's addresses.
      networkConfig: { enablePrivateNodes: true },
      dependsOn: nodeRoles,
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

function validateAutoscaling(scope: Construct, a: { min: number; max: number }, nodeCount: number): void {
  if ([a.min, a.max, nodeCount].some((v) => Token.isUnresolved(v))) return;
  if (!Number.isInteger(a.min) || !Number.isInteger(a.max) || a.min < 0 || a.max < 1) {
    throw new ValidationError(
      scope,
      `GkeCluster: nodePool.autoscaling needs integers min >= 0 and max >= 1 (got min ${a.min}, max ${a.max})`,
    );
  }
  if (!(a.min <= nodeCount && nodeCount <= a.max)) {
    throw new ValidationError(
      scope,
      `GkeCluster: nodePool.autoscaling needs min <= nodeCount <= max (got min ${a.min}, nodeCount ${nodeCount}, max ${a.max})`,
    );
  }
}

/** `us-west1-a` (zone) -> `us-west1`; a region is returned unchanged. */
export function regionOf(location: string): string {
  return isZone(location) ? location.replace(/-[a-z]$/, "") : location;
}

function isZone(location: string): boolean {
  return /\d-[a-z]$/.test(location);
}
