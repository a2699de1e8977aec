// A cluster someone else created, reached through a kubeconfig file and context: no stack of its
// own, nothing created in the cloud.

import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import type { Construct } from "constructs";
import type { IKubeCluster } from "../../constructs/kube-cluster.js";
import { ValidationError } from "../../constructs/validation-error.js";

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
  readonly clusterName: string;
  readonly kubeconfigCommand: string;
  /** None: the cluster's own defaults apply. */
  readonly loadBalancerAnnotations: Readonly<Record<string, string>> = {};
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
