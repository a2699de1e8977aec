// What every kind of cluster offers the stacks that deploy into it. A created cluster (EKS, GKE)
// and one that already exists are interchangeable behind `IKubeCluster`: the router and site
// stacks only ask it for a Kubernetes provider configured in *their own* stack.

import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { ValidationError } from "./validation-error.js";

/** The cluster kinds the topology knows. */
export type ClusterKind = "eks" | "gke" | "existing";

export interface IKubeCluster {
  readonly kind: ClusterKind;
  /** Cluster name as the cloud knows it (a plain string, not a token). */
  readonly clusterName: string;
  /** Shell command that writes this cluster's credentials into the user's kubeconfig. */
  readonly kubeconfigCommand: string;
  /**
   * Creates a KubernetesProvider in `scope`, which must be in a different stack from the one that
   * created the cluster: values crossing stacks become remote-state reads, so the provider is never
   * configured from a cluster in its own state (the kubernetes provider docs warn against that).
   */
  configureKubernetesProvider(scope: Construct, id?: string): KubernetesProvider;
}

export interface ExistingClusterProps {
  /** Kubeconfig file; `~` is expanded by the provider. */
  readonly kubeconfigPath: string;
  /** @default the kubeconfig's current context */
  readonly context?: string;
  /** Name used in outputs and messages. @default the context, or "existing" */
  readonly clusterName?: string;
}

/** A cluster someone else created, reached through a kubeconfig file and context. */
export class ExistingCluster implements IKubeCluster {
  readonly kind = "existing" as const;
  readonly clusterName: string;
  readonly kubeconfigCommand: string;
  readonly #props: ExistingClusterProps;

  constructor(props: ExistingClusterProps) {
    if (props.kubeconfigPath.trim() === "") {
      throw new ValidationError(
        undefined,
        "ExistingCluster: kubeconfigPath is empty; give the kubeconfig file, e.g. ~/.kube/config",
      );
    }
    this.#props = props;
    this.clusterName = props.clusterName ?? props.context ?? "existing";
    this.kubeconfigCommand = props.context
      ? `kubectl --kubeconfig ${props.kubeconfigPath} config use-context ${props.context}`
      : `kubectl --kubeconfig ${props.kubeconfigPath} config current-context`;
  }

  configureKubernetesProvider(scope: Construct, id = "kubernetes"): KubernetesProvider {
    return new KubernetesProvider(scope, id, {
      configPath: this.#props.kubeconfigPath,
      ...(this.#props.context ? { configContext: this.#props.context } : {}),
    });
  }
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
