// One created cluster per state (EKS or GKE), with its cloud provider. Existing clusters have no
// stack: they are only a kubeconfig.

import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { GoogleProvider } from "@cdktf/provider-google/lib/provider/index.js";
import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import type { Backend, EksSite, GkeSite } from "../app/topology.js";
import { EksCluster } from "../constructs/eks-cluster.js";
import { GkeCluster } from "../constructs/gke-cluster.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import { PART_OF } from "../constructs/labels.js";
import { configureBackend } from "./backend.js";

export interface ClusterStackProps {
  readonly site: EksSite | GkeSite;
  readonly backend: Backend;
}

/** Name of the cloud cluster of a site. */
export function clusterNameOf(site: string): string {
  return `${site}-relay`;
}

export class ClusterStack extends TerraformStack {
  readonly cluster: IKubeCluster;

  constructor(scope: Construct, id: string, props: ClusterStackProps) {
    super(scope, id);
    configureBackend(this, id, props.backend);
    const site = props.site;
    const name = clusterNameOf(site.name);
    if (site.cloud === "eks") {
      new AwsProvider(this, "aws", {
        region: site.region,
        defaultTags: [{ tags: { "part-of": PART_OF, site: site.name } }],
      });
      this.cluster = new EksCluster(this, "cluster", {
        name,
        region: site.region,
        nodeGroup: site.nodeGroup,
        ...(site.kubernetesVersion ? { kubernetesVersion: site.kubernetesVersion } : {}),
      });
    } else {
      new GoogleProvider(this, "google", {
        ...(site.project ? { project: site.project } : {}),
        defaultLabels: { "part-of": PART_OF, site: site.name },
      });
      this.cluster = new GkeCluster(this, "cluster", {
        name,
        location: site.location,
        nodePool: site.nodePool,
        deletionProtection: site.deletionProtection,
        ...(site.project ? { project: site.project } : {}),
      });
    }
    new TerraformOutput(this, "cluster_name", { value: name });
    new TerraformOutput(this, "kubeconfig_command", {
      value: this.cluster.kubeconfigCommand,
      description: "Writes this cluster's credentials into ~/.kube/config",
    });
  }
}
