// One relay site in one cluster: a headless Service for member discovery (DNS A records, also for
// pods that are not ready yet), the Deployment of relay nodes with the env the contract renders,
// a PodDisruptionBudget, a NetworkPolicy that admits the cluster port only from the site's pods,
// and a metrics Service for Prometheus (metrics-service.ts).

import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { NetworkPolicyV1 } from "@cdktf/provider-kubernetes/lib/network-policy-v1/index.js";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import { Token } from "cdktf";
import { Construct } from "constructs";
import {
  DEFAULT_BIND_PORT,
  DEFAULT_HTTP_PORT,
  DEFAULT_SITE_MASTERS,
  type RelayEnvVar,
  renderRelayEnv,
} from "../contract/relay-env.js";
import { checkSiteName, objectLabels, selectorLabels } from "./labels.js";
import { MetricsService, type MonitoringProps } from "./metrics-service.js";
import {
  CLUSTER_SECRET_PATH,
  containerSecurityContext,
  MESH_SECRET_DIR,
  podSecurityContext,
  podVolumes,
  ROUTER_TOKEN_DIR,
  ROUTER_TOKEN_PATH,
  type SecretMount,
  TLS_FILES,
  tlsMount,
  toKubeEnv,
} from "./pod-parts.js";
import { spreadConstraints } from "./scheduling.js";
import { ValidationError } from "./validation-error.js";

export interface RelaySiteProps {
  /** Site name (DNS-1123 label); names the objects (`<site>-relay`). */
  readonly site: string;
  /** Relay-node image (default command `relay node`). */
  readonly image: string;
  /** Every router's `host[port]` joined by commas (TUNNEL_INITIAL_HOSTS); may be a token. */
  readonly tunnelInitialHosts: string;
  /** @default 3 */
  readonly replicas?: number;
  /** Local cluster name. @default "relay" */
  readonly clusterName?: string;
  /** @default "default" */
  readonly namespace?: string;
  /** Cluster DNS suffix. @default "cluster.local" */
  readonly clusterDomain?: string;
  /** Member-to-member port. @default 7800 */
  readonly bindPort?: number;
  /** HTTP port: /healthz, /readyz, /metrics. @default 8080 */
  readonly httpPort?: number;
  /** @default 1 */
  readonly siteMasters?: number;
  /** Name of a TLS Secret (tls.crt, tls.key, ca.crt) for the connections to routers. @default no TLS */
  readonly tlsSecretName?: string;
  /** Server name the routers' certificates carry (TLS_SERVER_NAME). @default the dialled host */
  readonly tlsServerName?: string;
  /**
   * Name of a Secret whose key `cluster-secret` holds the site's cluster secret (64 hex
   * characters, e.g. MeshSecret); mounted on /etc/relay/mesh and rendered as CLUSTER_SECRET_FILE,
   * so members prove it to each other on the cluster port. @default none (the cluster port is
   * guarded by the NetworkPolicy alone)
   */
  readonly clusterSecretName?: string;
  /**
   * Name of a Secret whose key `token` holds the site's router token (routers without TLS, token
   * mode); mounted on /etc/relay/router-token and rendered as ROUTER_TOKEN_FILE. Not together with
   * tlsSecretName. @default none
   */
  readonly routerTokenSecretName?: string;
  /** @default requests 50m/96Mi, limits 500m/256Mi */
  readonly resources?: { requests: Record<string, string>; limits: Record<string, string> };
  /**
   * Scraping: the metrics Service `<site>-relay-metrics`, the monitoring namespace the
   * NetworkPolicy admits to the HTTP port, an optional ServiceMonitor (metrics-service.ts).
   * @default namespace "monitoring" admitted, no ServiceMonitor
   */
  readonly monitoring?: MonitoringProps;
}

export class RelaySite extends Construct {
  readonly name: string;
  readonly replicas: number;
  /** The headless Service's FQDN (DNS_QUERY). */
  readonly dnsQuery: string;
  /** The env list rendered by the contract (before conversion to the provider's shape). */
  readonly env: readonly RelayEnvVar[];
  readonly headlessService: ServiceV1;
  readonly deployment: DeploymentV1;
  readonly podDisruptionBudget: PodDisruptionBudgetV1;
  readonly networkPolicy: NetworkPolicyV1;
  /** The metrics Service (and ServiceMonitor, when enabled). */
  readonly metrics: MetricsService;

  constructor(scope: Construct, id: string, props: RelaySiteProps) {
    super(scope, id);
    checkSiteName(this, "RelaySite", props.site);
    this.name = `${props.site}-relay`;
    this.replicas = props.replicas ?? 3;
    if (!Token.isUnresolved(this.replicas) && (!Number.isInteger(this.replicas) || this.replicas < 1)) {
      throw new ValidationError(this, `RelaySite: replicas must be an integer >= 1 (got ${this.replicas})`);
    }
    const namespace = props.namespace ?? "default";
    const bindPort = props.bindPort ?? DEFAULT_BIND_PORT;
    const httpPort = props.httpPort ?? DEFAULT_HTTP_PORT;
    if (bindPort === httpPort)
      throw new ValidationError(this, `RelaySite: bindPort and httpPort are both ${bindPort}`);
    const labels = objectLabels(props.site, "relay");
    const selector = selectorLabels(props.site, "relay");
    const tls = props.tlsSecretName !== undefined;
    if (tls && props.routerTokenSecretName !== undefined) {
      throw new ValidationError(
        this,
        "RelaySite: routerTokenSecretName is for routers without TLS; with tlsSecretName the client certificate is the site's identity",
      );
    }
    this.dnsQuery = `${this.name}.${namespace}.svc.${props.clusterDomain ?? "cluster.local"}`;

    this.headlessService = new ServiceV1(this, "headless", {
      metadata: { name: this.name, namespace, labels },
      spec: {
        clusterIp: "None",
        // Members must find each other before they are ready (readiness needs a formed cluster).
        publishNotReadyAddresses: true,
        selector,
        port: [{ name: "cluster", port: bindPort, targetPort: "cluster", protocol: "TCP" }],
      },
    });

    this.env = renderRelayEnv({
      site: props.site,
      cluster: props.clusterName ?? "relay",
      discovery: { kind: "dns", query: this.dnsQuery },
      tunnelInitialHosts: props.tunnelInitialHosts,
      bindPort,
      httpPort,
      siteMasters: props.siteMasters ?? DEFAULT_SITE_MASTERS,
      ...(tls
        ? { tls: { ...TLS_FILES, ...(props.tlsServerName ? { serverName: props.tlsServerName } : {}) } }
        : {}),
      ...(props.clusterSecretName !== undefined ? { clusterSecretFile: CLUSTER_SECRET_PATH } : {}),
      ...(props.routerTokenSecretName !== undefined ? { routerTokenFile: ROUTER_TOKEN_PATH } : {}),
    });

    const probe = (path: string, initialDelaySeconds: number) => ({
      httpGet: { path, port: String(httpPort) },
      initialDelaySeconds,
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 3,
    });

    const mounts: SecretMount[] = [
      ...(props.tlsSecretName !== undefined ? [tlsMount(props.tlsSecretName)] : []),
      ...(props.clusterSecretName !== undefined
        ? [{ volume: "mesh", secretName: props.clusterSecretName, mountPath: MESH_SECRET_DIR }]
        : []),
      ...(props.routerTokenSecretName !== undefined
        ? [{ volume: "router-token", secretName: props.routerTokenSecretName, mountPath: ROUTER_TOKEN_DIR }]
        : []),
    ];
    const volumes = podVolumes(mounts);
    this.deployment = new DeploymentV1(this, "deployment", {
      metadata: { name: this.name, namespace, labels },
      spec: {
        replicas: String(this.replicas),
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            securityContext: podSecurityContext(),
            terminationGracePeriodSeconds: 30,
            // Across zones (preferred) and nodes (required): constructs/scheduling.ts.
            topologySpreadConstraint: spreadConstraints(selector),
            container: [
              {
                name: "relay",
                image: props.image,
                args: ["node"],
                env: toKubeEnv(this.env),
                port: [
                  { name: "cluster", containerPort: bindPort, protocol: "TCP" },
                  { name: "http", containerPort: httpPort, protocol: "TCP" },
                ],
                readinessProbe: probe("/readyz", 2),
                livenessProbe: probe("/healthz", 10),
                resources: props.resources ?? {
                  requests: { cpu: "50m", memory: "96Mi" },
                  limits: { cpu: "500m", memory: "256Mi" },
                },
                securityContext: containerSecurityContext(),
                volumeMount: volumes.volumeMount,
              },
            ],
            volume: volumes.volume,
          },
        },
      },
    });

    // Voluntary evictions (node drains) take one relay pod at a time, so a site never loses its
    // site master and its successor together.
    this.podDisruptionBudget = new PodDisruptionBudgetV1(this, "pdb", {
      metadata: { name: this.name, namespace, labels },
      spec: { maxUnavailable: "1", selector: { matchLabels: selector } },
    });

    // Monitoring: the metrics Service, and who besides the namespace may scrape (NetworkPolicy).
    this.metrics = new MetricsService(this, "metrics", {
      name: `${this.name}-metrics`,
      namespace,
      labels,
      selector,
      port: httpPort,
      ...(props.monitoring ? { monitoring: props.monitoring } : {}),
    });
    const scrapers = this.metrics.monitoringNamespace;

    this.networkPolicy = new NetworkPolicyV1(this, "network-policy", {
      metadata: { name: this.name, namespace, labels },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ["Ingress"],
        ingress: [
          {
            // The cluster port only from this site's relay pods.
            from: [{ podSelector: { matchLabels: selector } }],
            ports: [{ port: String(bindPort), protocol: "TCP" }],
          },
          {
            // Health and metrics from anything in the namespace, and from the monitoring
            // namespace (Prometheus); kubelet probes are not subject to NetworkPolicy.
            from: [
              { podSelector: {} },
              ...(scrapers !== null
                ? [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": scrapers } } }]
                : []),
            ],
            ports: [{ port: String(httpPort), protocol: "TCP" }],
          },
        ],
      },
    });
  }
}
