// One relay site, deployed through a Kubernetes provider configured from the cluster stack's
// outputs; TUNNEL_INITIAL_HOSTS is built from every router stack's endpoint (remote state). The
// site's cluster secret is generated here (nobody else reads it) and mounted as CLUSTER_SECRET_FILE.
// With replicated maps, so is the maps' API token (KV_TOKEN_FILE), and the API's endpoint and the
// token's Secret are outputs; with TLS (the pki stack) the API serves HTTPS with a certificate of
// its own, and the CA that signs it is published for clients in a ConfigMap.

import { ConfigMapV1 } from "@cdktf/provider-kubernetes/lib/config-map-v1/index.js";
import { TlsProvider } from "@cdktf/provider-tls/lib/provider/index.js";
import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import type { GossipRouter } from "../constructs/gossip-router.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import type { MonitoringProps } from "../constructs/metrics-service.js";
import { siteTlsSecret } from "../constructs/pod-parts.js";
import { type IssuedCert, ROUTER_TLS_SERVER_NAME } from "../constructs/relay-pki.js";
import { KvTokenSecret, MeshSecret, siteRouterTokenSecret } from "../constructs/relay-secrets.js";
import { RelaySite } from "../constructs/relay-site.js";
import type { Backend } from "../topology/model.js";
import { configureBackend } from "./backend.js";

/** How the site's relay nodes authenticate to the routers. */
export type SiteStackAuth =
  | { readonly kind: "tls"; readonly cert: IssuedCert; readonly caPem: string }
  | { readonly kind: "tokens"; readonly token: string }
  | { readonly kind: "open" };

export interface SiteStackProps {
  readonly site: string;
  readonly cluster: IKubeCluster;
  /** Every router of the topology, in topology order (the order of TUNNEL_INITIAL_HOSTS). */
  readonly routers: readonly GossipRouter[];
  readonly image: string;
  readonly replicas: number;
  readonly clusterName: string;
  readonly namespace: string;
  readonly auth: SiteStackAuth;
  readonly backend: Backend;
  /** Metrics Service, scrape access, ServiceMonitor (topology `monitoring`). @default the constructs' defaults */
  readonly monitoring?: MonitoringProps;
  /** Replicated maps on the site (topology `kv`); the token is generated here. @default none */
  readonly kv?: SiteStackKv;
}

/** The site's share of the topology's `kv`. */
export interface SiteStackKv {
  readonly maps: readonly string[];
  /** @default every other site */
  readonly backupSites?: readonly string[];
  /** @default the site's namespace only */
  readonly clientNamespaces?: readonly string[];
  /** The API's server certificate and the CA clients verify it with. @default plain HTTP */
  readonly tls?: { readonly cert: IssuedCert; readonly caPem: string };
}

export class SiteStack extends TerraformStack {
  readonly site: RelaySite;
  readonly meshSecret: MeshSecret;
  /** With `kv`: the maps' API token and its Secret `<site>-relay-kv-token`. */
  readonly kvToken: KvTokenSecret | undefined;
  /** With `kv.tls`: the ConfigMap `<site>-relay-kv-ca` (key `ca.crt`) clients verify the API with. */
  readonly kvCaConfigMap: ConfigMapV1 | undefined;

  constructor(scope: Construct, id: string, props: SiteStackProps) {
    super(scope, id);
    configureBackend(this, id, props.backend);
    props.cluster.configureKubernetesProvider(this);
    // The mesh secret is a hash of a tls_private_key seed (constructs/random-secret.ts).
    new TlsProvider(this, "tls-provider");
    this.meshSecret = new MeshSecret(this, "mesh", { site: props.site, namespace: props.namespace });
    const a = props.auth;
    const tlsSecret =
      a.kind === "tls"
        ? siteTlsSecret(this, "tls", {
            site: props.site,
            component: "relay",
            namespace: props.namespace,
            cert: a.cert,
            caPem: a.caPem,
          })
        : undefined;
    const tokenSecret =
      a.kind === "tokens"
        ? siteRouterTokenSecret(this, "router-token", {
            site: props.site,
            namespace: props.namespace,
            token: a.token,
          })
        : undefined;
    this.kvToken = props.kv
      ? new KvTokenSecret(this, "kv-token", { site: props.site, namespace: props.namespace })
      : undefined;
    const kvTls = props.kv?.tls;
    const kvTlsSecret = kvTls
      ? siteTlsSecret(this, "kv-tls", {
          site: props.site,
          component: "relay-kv",
          namespace: props.namespace,
          cert: kvTls.cert,
          caPem: kvTls.caPem,
        })
      : undefined;
    // The CA alone, for clients: they must not mount the Secret that holds the API's private key.
    this.kvCaConfigMap = kvTls
      ? new ConfigMapV1(this, "kv-ca", {
          metadata: { name: `${props.site}-relay-kv-ca`, namespace: props.namespace },
          data: { "ca.crt": kvTls.caPem },
        })
      : undefined;
    // Each router endpoint is already `host[port]` (formatEndpoint); joined in topology order.
    const tunnelInitialHosts = props.routers.map((r) => r.endpoint).join(",");
    this.site = new RelaySite(this, "site", {
      site: props.site,
      image: props.image,
      tunnelInitialHosts,
      replicas: props.replicas,
      clusterName: props.clusterName,
      namespace: props.namespace,
      clusterSecretName: this.meshSecret.secretName,
      ...(tlsSecret ? { tlsSecretName: tlsSecret.name, tlsServerName: ROUTER_TLS_SERVER_NAME } : {}),
      ...(tokenSecret ? { routerTokenSecretName: tokenSecret.name } : {}),
      ...(props.monitoring ? { monitoring: props.monitoring } : {}),
      ...(props.kv && this.kvToken
        ? {
            kv: {
              maps: props.kv.maps,
              tokenSecretName: this.kvToken.secretName,
              ...(kvTlsSecret ? { tlsSecretName: kvTlsSecret.name } : {}),
              ...(props.kv.backupSites !== undefined ? { backupSites: props.kv.backupSites } : {}),
              ...(props.kv.clientNamespaces !== undefined
                ? { clientNamespaces: props.kv.clientNamespaces }
                : {}),
            },
          }
        : {}),
    });
    new TerraformOutput(this, "dns_query", { value: this.site.dnsQuery });
    new TerraformOutput(this, "tunnel_initial_hosts", { value: tunnelInitialHosts, sensitive: true });
    if (this.site.kvEndpoint !== undefined && this.site.kvTokenSecretName !== undefined) {
      new TerraformOutput(this, "kv_endpoint", {
        value: this.site.kvEndpoint,
        description: "The replicated maps' API inside the cluster (host:port; the scheme is in kv_url)",
      });
      new TerraformOutput(this, "kv_url", {
        value: this.site.kvUrl,
        description: "The replicated maps' API for relay kv --url / KV_URL (https:// with TLS)",
      });
      new TerraformOutput(this, "kv_token_secret_name", {
        value: this.site.kvTokenSecretName,
        description: "The Secret (key `token`) holding the bearer token of the maps' API",
      });
      if (this.kvCaConfigMap)
        new TerraformOutput(this, "kv_ca_config_map_name", {
          value: this.kvCaConfigMap.metadata.name,
          description: "The ConfigMap (key `ca.crt`) holding the CA that signs the maps' API certificate",
        });
    }
  }
}
