// One relay site, deployed through a Kubernetes provider configured from the cluster stack's
// outputs; TUNNEL_INITIAL_HOSTS is built from every router stack's endpoint (remote state).

import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import type { GossipRouter } from "../constructs/gossip-router.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import { siteTlsSecret } from "../constructs/pod-parts.js";
import { type IssuedCert, ROUTER_TLS_SERVER_NAME } from "../constructs/relay-pki.js";
import { RelaySite } from "../constructs/relay-site.js";
import type { Backend } from "../topology/model.js";
import { configureBackend } from "./backend.js";

export interface SiteStackProps {
  readonly site: string;
  readonly cluster: IKubeCluster;
  /** Every router of the topology, in topology order (the order of TUNNEL_INITIAL_HOSTS). */
  readonly routers: readonly GossipRouter[];
  readonly image: string;
  readonly replicas: number;
  readonly clusterName: string;
  readonly namespace: string;
  /** Client certificate and CA; undefined = plain TCP. */
  readonly tls: { readonly cert: IssuedCert; readonly caPem: string } | undefined;
  readonly backend: Backend;
}

export class SiteStack extends TerraformStack {
  readonly site: RelaySite;

  constructor(scope: Construct, id: string, props: SiteStackProps) {
    super(scope, id);
    configureBackend(this, id, props.backend);
    props.cluster.configureKubernetesProvider(this);
    const secret =
      props.tls &&
      siteTlsSecret(this, "tls", {
        site: props.site,
        component: "relay",
        namespace: props.namespace,
        ...props.tls,
      });
    // Each router endpoint is already `host[port]` (formatEndpoint); joined in topology order.
    const tunnelInitialHosts = props.routers.map((r) => r.endpoint).join(",");
    this.site = new RelaySite(this, "site", {
      site: props.site,
      image: props.image,
      tunnelInitialHosts,
      replicas: props.replicas,
      clusterName: props.clusterName,
      namespace: props.namespace,
      ...(secret ? { tlsSecretName: secret.name, tlsServerName: ROUTER_TLS_SERVER_NAME } : {}),
    });
    new TerraformOutput(this, "dns_query", { value: this.site.dnsQuery });
    new TerraformOutput(this, "tunnel_initial_hosts", { value: tunnelInitialHosts, sensitive: true });
  }
}
