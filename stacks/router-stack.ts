// One site's GossipRouter, deployed through a Kubernetes provider configured from the cluster
// stack's outputs (never from a cluster in this state).

import { NamespaceV1 } from "@cdktf/provider-kubernetes/lib/namespace-v1/index.js";
import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { GossipRouter } from "../constructs/gossip-router.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import { PART_OF } from "../constructs/labels.js";
import { siteTlsSecret } from "../constructs/pod-parts.js";
import type { IssuedCert } from "../constructs/relay-pki.js";
import type { Backend, RouterSettings } from "../topology/model.js";
import { configureBackend } from "./backend.js";

export interface RouterStackProps {
  readonly site: string;
  readonly cluster: IKubeCluster;
  readonly router: RouterSettings;
  readonly namespace: string;
  readonly loadBalancerSourceRanges: readonly string[];
  /** Router certificate and CA; undefined = plain TCP. */
  readonly tls: { readonly cert: IssuedCert; readonly caPem: string } | undefined;
  readonly backend: Backend;
  /** Output the cluster's kubeconfig command here, for a cluster without a cluster stack of its own. */
  readonly outputKubeconfigCommand: boolean;
}

export class RouterStack extends TerraformStack {
  readonly router: GossipRouter;

  constructor(scope: Construct, id: string, props: RouterStackProps) {
    super(scope, id);
    configureBackend(this, id, props.backend);
    props.cluster.configureKubernetesProvider(this);
    // A namespace other than "default" is created here: the router stack of a cluster is applied
    // before its site stack (which reads the router endpoints) and destroyed after it. Objects
    // use the reference, so they wait for the namespace.
    const namespace =
      props.namespace === "default"
        ? props.namespace
        : new NamespaceV1(this, "namespace", {
            metadata: { name: props.namespace, labels: { "app.kubernetes.io/part-of": PART_OF } },
          }).metadata.name;
    const secret =
      props.tls &&
      siteTlsSecret(this, "tls", { site: props.site, component: "router", namespace, ...props.tls });
    this.router = new GossipRouter(this, "router", {
      site: props.site,
      image: props.router.image,
      namespace,
      port: props.router.port,
      httpPort: props.router.httpPort,
      replicas: props.router.replicas,
      loadBalancerSourceRanges: [...props.loadBalancerSourceRanges],
      serviceAnnotations: { ...props.cluster.loadBalancerAnnotations },
      ...(secret ? { tlsSecretName: secret.name } : {}),
    });

    new TerraformOutput(this, "endpoint", {
      value: this.router.endpoint,
      description: "host[port] of this router's LoadBalancer (one entry of TUNNEL_INITIAL_HOSTS)",
    });
    if (props.outputKubeconfigCommand) {
      new TerraformOutput(this, "kubeconfig_command", { value: props.cluster.kubeconfigCommand });
    }
  }
}
