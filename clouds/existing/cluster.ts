// A cluster someone else created, reached through a kubeconfig file and context: no stack of its
// own, nothing created in the cloud.

import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import type { Construct } from "constructs";
import { cidrProblem } from "../../constructs/cidr.js";
import type { IKubeCluster } from "../../constructs/kube-cluster.js";
import { ValidationError } from "../../constructs/validation-error.js";

export interface ExistingClusterProps {
  /** Kubeconfig file; `~` is expanded by the provider. */
  readonly kubeconfigPath: string;
  /** @default the kubeconfig's current context */
  readonly context?: string;
  /** Name used in outputs and messages. @default the context, or "existing" */
  readonly clusterName?: string;
  /**
   * CIDRs the cluster's pods reach the internet from (its NAT or firewall's public addresses), as
   * the topology's `egressCidrs` gives them; add the pod range if its LoadBalancers are IPs that
   * its own nodes short-circuit. @default [] (then the routers cannot admit this site by egress)
   */
  readonly egressCidrs?: readonly string[];
}

/** A cluster someone else created, reached through a kubeconfig file and context. */
export class ExistingCluster implements IKubeCluster {
  readonly clusterName: string;
  readonly kubeconfigCommand: string;
  /** None: the cluster's own defaults apply. */
  readonly loadBalancerAnnotations: Readonly<Record<string, string>> = {};
  readonly egressCidrs: readonly string[];
  /** None known: whatever is needed belongs in `egressCidrs`. */
  readonly inClusterCidrs: readonly string[] = [];
  readonly #props: ExistingClusterProps;

  constructor(props: ExistingClusterProps) {
    if (props.kubeconfigPath.trim() === "") {
      throw new ValidationError(
        undefined,
        "ExistingCluster: kubeconfigPath is empty; give the kubeconfig file, e.g. ~/.kube/config",
      );
    }
    this.#props = props;
    this.egressCidrs = [...(props.egressCidrs ?? [])];
    this.egressCidrs.forEach((c, i) => {
      const problem = cidrProblem(c);
      if (problem) throw new ValidationError(undefined, `ExistingCluster: egressCidrs[${i}]: ${problem}`);
    });
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
