// One site's GossipRouter, deployed through a Kubernetes provider configured from the cluster
// stack's outputs (never from a cluster in this state). Its LoadBalancer admits the source ranges
// the app computes (by default every site's egress addresses, read from every cluster stack), its
// clients authenticate by certificate (pki) or by token (tokens), and `--allow-groups` is the
// policy the app passes (by default: the bridge, the topology's sites only).

import { NamespaceV1 } from "@cdktf/provider-kubernetes/lib/namespace-v1/index.js";
import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { GossipRouter, type RouterAuth } from "../constructs/gossip-router.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import { PART_OF } from "../constructs/labels.js";
import type { MonitoringProps } from "../constructs/metrics-service.js";
import { siteTlsSecret } from "../constructs/pod-parts.js";
import type { IssuedCert } from "../constructs/relay-pki.js";
import { routerTokensSecret } from "../constructs/relay-secrets.js";
import type { AllowGroups } from "../contract/router-args.js";
import type { Backend, RouterSettings } from "../topology/model.js";
import { configureBackend } from "./backend.js";

/** How the router's clients authenticate, with the material each mode needs. */
export type RouterStackAuth =
  | { readonly kind: "tls"; readonly cert: IssuedCert; readonly caPem: string }
  | { readonly kind: "tokens"; readonly tokens: ReadonlyMap<string, string> }
  | { readonly kind: "open" };

export interface RouterStackProps {
  readonly site: string;
  readonly cluster: IKubeCluster;
  readonly router: RouterSettings;
  readonly namespace: string;
  /** CIDRs the LoadBalancer admits (entries may be other stacks' egress addresses). */
  readonly loadBalancerSourceRanges: readonly string[];
  readonly auth: RouterStackAuth;
  /** `--allow-groups`, or "any" for none (open mode). */
  readonly allowGroups: AllowGroups | "any";
  readonly backend: Backend;
  /** Output the cluster's kubeconfig command here, for a cluster without a cluster stack of its own. */
  readonly outputKubeconfigCommand: boolean;
  /** Metrics Service, scrape access, ServiceMonitor (topology `monitoring`). @default the constructs' defaults */
  readonly monitoring?: MonitoringProps;
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
    const a = props.auth;
    const auth: RouterAuth =
      a.kind === "tls"
        ? {
            kind: "tls",
            secretName: siteTlsSecret(this, "tls", {
              site: props.site,
              component: "router",
              namespace,
              cert: a.cert,
              caPem: a.caPem,
            }).name,
          }
        : a.kind === "tokens"
          ? {
              kind: "tokens",
              secretName: routerTokensSecret(this, "tokens", {
                site: props.site,
                namespace,
                tokens: a.tokens,
              }).name,
            }
          : { kind: "open" };
    this.router = new GossipRouter(this, "router", {
      site: props.site,
      image: props.router.image,
      namespace,
      port: props.router.port,
      httpPort: props.router.httpPort,
      replicas: props.router.replicas,
      loadBalancerSourceRanges: props.loadBalancerSourceRanges,
      serviceAnnotations: { ...props.cluster.loadBalancerAnnotations },
      auth,
      allowGroups: props.allowGroups,
      ...(props.monitoring ? { monitoring: props.monitoring } : {}),
    });

    new TerraformOutput(this, "endpoint", {
      value: this.router.endpoint,
      description: "host[port] of this router's LoadBalancer (one entry of TUNNEL_INITIAL_HOSTS)",
    });
    new TerraformOutput(this, "load_balancer_source_ranges", {
      value: [...this.router.loadBalancerSourceRanges],
      description: "The CIDRs this router's LoadBalancer admits",
    });
    if (props.outputKubeconfigCommand) {
      new TerraformOutput(this, "kubeconfig_command", { value: props.cluster.kubeconfigCommand });
    }
  }
}
