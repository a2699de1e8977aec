// What every kind of cluster offers the stacks that deploy into it. A created cluster (EKS, GKE)
// and one that already exists (each in clouds/<kind>/cluster.ts) are interchangeable behind
// `IKubeCluster`: the router and site stacks only ask it for a Kubernetes provider configured in
// *their own* stack, and for the annotations their LoadBalancer needs.

import type { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { ValidationError } from "./validation-error.js";

export interface IKubeCluster {
  /** Cluster name as the cloud knows it (a plain string, not a token). */
  readonly clusterName: string;
  /** Shell command that writes this cluster's credentials into the user's kubeconfig. */
  readonly kubeconfigCommand: string;
  /**
   * Annotations the cloud needs on the routers' LoadBalancer Services (e.g. an NLB on EKS); empty
   * when its defaults already give an internet-facing load balancer.
   */
  readonly loadBalancerAnnotations: Readonly<Record<string, string>>;
  /**
   * The addresses the cluster's pods reach the internet from, as CIDRs (`/32` per address; entries
   * may be tokens): the NAT gateway's Elastic IP on EKS, the Cloud NAT's reserved addresses on
   * GKE, the topology's `egressCidrs` for an existing cluster. Every router admits them.
   */
  readonly egressCidrs: readonly string[];
  /**
   * Source ranges the cluster's own pods have when they reach their own router's LoadBalancer
   * without leaving the cluster: kube-proxy and GKE Dataplane V2 short-circuit traffic to a
   * LoadBalancer *IP* inside the cluster, so it keeps the pod's (or node's) address. Empty where
   * the LoadBalancer is a host name (EKS: the traffic leaves through the NAT gateway).
   */
  readonly inClusterCidrs: readonly string[];
  /**
   * Creates a KubernetesProvider in `scope`, which must be in a different stack from the one that
   * created the cluster: values crossing stacks become remote-state reads, so the provider is never
   * configured from a cluster in its own state (the kubernetes provider docs warn against that).
   */
  configureKubernetesProvider(scope: Construct, id?: string): KubernetesProvider;
}

/**
 * Throws when `scope` is in the stack that created `cluster`: a Kubernetes provider configured
 * from a cluster in its own state fails in unpredictable ways (kubernetes provider docs).
 */
export function assertOtherStack(kind: string, cluster: Construct, scope: Construct): void {
  if (TerraformStack.of(cluster) === TerraformStack.of(scope)) {
    throw new ValidationError(
      cluster,
      `${kind}: configureKubernetesProvider needs a scope in another stack than the cluster's (${TerraformStack.of(scope).node.id}); put routers and sites in their own stacks`,
    );
  }
}
