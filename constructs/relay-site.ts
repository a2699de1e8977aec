// One relay site in one cluster: a headless Service for member discovery (DNS A records, also for
// pods that are not ready yet), the Deployment of relay nodes with the env the contract renders,
// a PodDisruptionBudget, a NetworkPolicy that admits the cluster port only from the site's pods,
// and a metrics Service for Prometheus (metrics-service.ts). With `kv`, the nodes host replicated
// maps: KV_* env through the contract, the API token mounted from a Secret, the container port
// `kv`, a ClusterIP Service `<site>-relay-kv` for the API, and a NetworkPolicy rule that admits the
// kv port from the client namespaces only.

import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { NetworkPolicyV1 } from "@cdktf/provider-kubernetes/lib/network-policy-v1/index.js";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import { Token } from "cdktf";
import { Construct } from "constructs";
import {
  DEFAULT_BIND_PORT,
  DEFAULT_HTTP_PORT,
  DEFAULT_KV_PORT,
  DEFAULT_SITE_MASTERS,
  MAX_KV_MAPS,
  type RelayEnvVar,
  renderRelayEnv,
} from "../contract/relay-env.js";
import { checkSiteName, objectLabels, selectorLabels } from "./labels.js";
import { MetricsService, type MonitoringProps } from "./metrics-service.js";
import {
  CLUSTER_SECRET_PATH,
  containerSecurityContext,
  KV_TLS_DIR,
  KV_TLS_FILES,
  KV_TOKEN_DIR,
  KV_TOKEN_PATH,
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

/** Replicated maps hosted by a site's relay nodes (docs/DEPLOY.md, "Replicated maps"). */
export interface RelaySiteKvProps {
  /** Map names (KV_MAPS): 1..64 names of 1..64 letters, digits, '.', '_' or '-', no duplicates. */
  readonly maps: readonly string[];
  /**
   * Name of a Secret whose key `token` holds the API's bearer token (e.g. KvTokenSecret); mounted
   * read-only on /etc/relay/kv-token and rendered as KV_TOKEN_FILE. Required: in a cluster the API
   * listens on the pod IP, and the runtime refuses that without a token.
   */
  readonly tokenSecretName: string;
  /** Sites this site backs up to (KV_BACKUP_SITES), not the site itself. @default every other site */
  readonly backupSites?: readonly string[];
  /** Port of the API (KV_PORT, container port `kv`, Service port `kv`). @default 8090 */
  readonly port?: number;
  /**
   * Name of a TLS Secret (`tls.crt`, `tls.key`) holding the API's server certificate for the names
   * in kvServiceDnsNames (e.g. RelayPki.issueKvApiCert); mounted read-only on /etc/relay/kv-tls and
   * rendered as KV_TLS_CERT / KV_TLS_KEY, so the API serves HTTPS and `kvUrl` is `https://`.
   * @default plain HTTP (the bearer token crosses the pod network in clear)
   */
  readonly tlsSecretName?: string;
  /**
   * Namespaces whose pods the NetworkPolicy admits to the kv port (selected by their
   * `kubernetes.io/metadata.name` label). An empty list admits no pod: only `kubectl exec` /
   * `kubectl port-forward` reach the API then. @default the site's own namespace only
   */
  readonly clientNamespaces?: readonly string[];
}

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
  /** Replicated maps on the site's nodes, with their API. @default none (nothing kv is created) */
  readonly kv?: RelaySiteKvProps;
}

/**
 * The in-cluster DNS names of a site's kv API Service `<site>-relay-kv` (short, namespaced, and
 * fully qualified), which its server certificate must carry.
 */
export function kvServiceDnsNames(
  site: string,
  namespace: string,
  clusterDomain = "cluster.local",
): string[] {
  const service = `${site}-relay-kv`;
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${clusterDomain}`,
  ];
}

const MAP_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

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
  /** With `kv`: the ClusterIP Service `<site>-relay-kv` in front of the maps' API. */
  readonly kvService: ServiceV1 | undefined;
  /** With `kv`: `<site>-relay-kv.<namespace>.svc.<domain>:<port>`, the API for in-cluster clients. */
  readonly kvEndpoint: string | undefined;
  /** With `kv`: `http://` (`https://` with kv.tlsSecretName) + kvEndpoint (what `relay kv --url` / KV_URL take). */
  readonly kvUrl: string | undefined;
  /** With `kv`: the Secret holding the API token under the key `token` (kv.tokenSecretName). */
  readonly kvTokenSecretName: string | undefined;

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
    const clusterDomain = props.clusterDomain ?? "cluster.local";
    this.dnsQuery = `${this.name}.${namespace}.svc.${clusterDomain}`;
    const kv = props.kv === undefined ? undefined : checkKv(this, props.site, props.kv, bindPort, httpPort);

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
      ...(kv
        ? {
            kv: {
              maps: kv.maps,
              port: kv.port,
              tokenFile: KV_TOKEN_PATH,
              ...(kv.backupSites !== undefined ? { backupSites: kv.backupSites } : {}),
              ...(kv.tlsSecretName !== undefined ? { tls: KV_TLS_FILES } : {}),
            },
          }
        : {}),
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
      ...(kv ? [{ volume: "kv-token", secretName: kv.tokenSecretName, mountPath: KV_TOKEN_DIR }] : []),
      ...(kv?.tlsSecretName !== undefined
        ? [{ volume: "kv-tls", secretName: kv.tlsSecretName, mountPath: KV_TLS_DIR }]
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
                  ...(kv ? [{ name: "kv", containerPort: kv.port, protocol: "TCP" }] : []),
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

    // The maps' API: a ClusterIP Service of its own (not the headless one, which publishes pods
    // that are not ready: /readyz waits for the maps' state transfer). ClientIP affinity keeps a
    // client on one member, where its own writes are read back (read-your-writes).
    this.kvService = kv
      ? new ServiceV1(this, "kv", {
          metadata: { name: `${this.name}-kv`, namespace, labels },
          spec: {
            type: "ClusterIP",
            selector,
            sessionAffinity: "ClientIP",
            port: [{ name: "kv", port: kv.port, targetPort: "kv", protocol: "TCP" }],
          },
        })
      : undefined;
    this.kvEndpoint = kv ? `${this.name}-kv.${namespace}.svc.${clusterDomain}:${kv.port}` : undefined;
    const kvScheme = kv?.tlsSecretName !== undefined ? "https" : "http";
    this.kvUrl = this.kvEndpoint === undefined ? undefined : `${kvScheme}://${this.kvEndpoint}`;
    this.kvTokenSecretName = kv?.tokenSecretName;
    const kvClients = kv ? (kv.clientNamespaces ?? [namespace]) : [];

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
          // The maps' API only from pods of the client namespaces. No rule when there are none:
          // a rule without `from` would admit everyone.
          ...(kv && kvClients.length > 0
            ? [
                {
                  from: kvClients.map((ns) => ({
                    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } },
                  })),
                  ports: [{ port: String(kv.port), protocol: "TCP" }],
                },
              ]
            : []),
        ],
      },
    });
  }
}

interface CheckedKv {
  readonly maps: readonly string[];
  readonly tokenSecretName: string;
  readonly backupSites: readonly string[] | undefined;
  readonly port: number;
  readonly clientNamespaces: readonly string[] | undefined;
  readonly tlsSecretName: string | undefined;
}

/** The kv props with defaults, or a ValidationError naming the prop (tokens are not checked). */
function checkKv(
  scope: Construct,
  site: string,
  kv: RelaySiteKvProps,
  bindPort: number,
  httpPort: number,
): CheckedKv {
  const fail = (message: string): never => {
    throw new ValidationError(scope, `RelaySite: ${message}`);
  };
  const literal = (v: string) => !Token.isUnresolved(v);
  const distinct = (list: readonly string[], prop: string) => {
    const twice = list.find((v, i) => literal(v) && list.indexOf(v) !== i);
    if (twice !== undefined) fail(`${prop}: "${twice}" is listed twice`);
  };
  if (kv.maps.length < 1 || kv.maps.length > MAX_KV_MAPS)
    fail(`kv.maps must name 1..${MAX_KV_MAPS} maps (got ${kv.maps.length})`);
  const badMap = kv.maps.find((m) => literal(m) && !MAP_NAME.test(m));
  if (badMap !== undefined)
    fail(`kv.maps: "${badMap}" is not a map name (1..64 of letters, digits, '.', '_' or '-')`);
  distinct(kv.maps, "kv.maps");
  if (typeof kv.tokenSecretName !== "string" || kv.tokenSecretName === "")
    fail("kv.tokenSecretName is required: the maps' API listens on the pod IP and needs a bearer token");
  if (kv.backupSites !== undefined) {
    if (kv.backupSites.length === 0)
      fail("kv.backupSites is empty: name at least one site, or leave it out for every other site");
    for (const b of kv.backupSites) {
      if (!literal(b)) continue;
      if (b === site) fail(`kv.backupSites: "${b}" is the site itself; a site backs up to other sites`);
      if (!DNS_LABEL.test(b)) fail(`kv.backupSites: "${b}" is not a site name (DNS-1123 label)`);
    }
    distinct(kv.backupSites, "kv.backupSites");
  }
  const port = kv.port ?? DEFAULT_KV_PORT;
  if (!Token.isUnresolved(port)) {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      fail(`kv.port must be an integer in 1..65535 (got ${port})`);
    if (port === bindPort || port === httpPort)
      fail(`kv.port ${port} is also bindPort or httpPort; use another port`);
  }
  if (kv.tlsSecretName !== undefined && (typeof kv.tlsSecretName !== "string" || kv.tlsSecretName === ""))
    fail("kv.tlsSecretName must name a TLS Secret (tls.crt, tls.key), or be left out for plain HTTP");
  if (kv.clientNamespaces !== undefined) {
    const bad = kv.clientNamespaces.find((ns) => literal(ns) && !DNS_LABEL.test(ns));
    if (bad !== undefined) fail(`kv.clientNamespaces: "${bad}" is not a namespace name (DNS-1123 label)`);
    distinct(kv.clientNamespaces, "kv.clientNamespaces");
  }
  return {
    maps: kv.maps,
    tokenSecretName: kv.tokenSecretName,
    backupSites: kv.backupSites,
    port,
    clientNamespaces: kv.clientNamespaces,
    tlsSecretName: kv.tlsSecretName,
  };
}
