// One created cluster per state, with its cloud provider: what goes in it is the cloud module's
// (clouds/<kind>/index.ts). Existing clusters have no stack: they are only a kubeconfig.

import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { cloudOf } from "../clouds/index.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import { ValidationError } from "../constructs/validation-error.js";
import type { Backend, Site } from "../topology/model.js";
import { configureBackend } from "./backend.js";

export interface ClusterStackProps {
  /** A site whose cloud creates its cluster (`cluster.inOwnStack`). */
  readonly site: Site;
  readonly backend: Backend;
  /** The topology's tags / labels for every cloud resource. @default {} */
  readonly tags?: Readonly<Record<string, string>>;
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
    const { cluster } = cloudOf(site);
    if (!cluster.inOwnStack) {
      throw new ValidationError(this, `ClusterStack: a ${site.cloud} site has no cluster stack`);
    }
    this.cluster = cluster.create(this, site, name, { tags: props.tags ?? {} });
    new TerraformOutput(this, "cluster_name", { value: name });
    new TerraformOutput(this, "kubeconfig_command", {
      value: this.cluster.kubeconfigCommand,
      description: "Writes this cluster's credentials into ~/.kube/config",
    });
    new TerraformOutput(this, "egress_cidrs", {
      value: [...this.cluster.egressCidrs],
      description:
        "The addresses this cluster's pods reach the internet from (/32 each); every router admits them",
    });
  }
}
