// A GossipRouter in one cluster: a Deployment of `relay router` and a LoadBalancer Service that
// exposes only the gossip port; health and metrics stay on a ClusterIP Service. The Service carries
// the annotations the cluster's cloud needs (IKubeCluster.loadBalancerAnnotations: an NLB on EKS);
// the cloud controllers (EKS's security groups, GKE's firewall rules) open the gossip port for
// `loadBalancerSourceRanges` themselves, so no firewall resource here. Who may connect is
// authenticated by mutual TLS (site identity in the client certificate) or, without TLS, by a
// per-site token; what they may do is `--allow-groups` (by default: the bridge, this site only).

import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import { Fn, TerraformLocal, Token } from "cdktf";
import { Construct } from "constructs";
import { ConfigError } from "../contract/errors.js";
import { formatEndpoint } from "../contract/initial-hosts.js";
import { ROUTER_HTTP_PORT, ROUTER_PORT } from "../contract/ports.js";
import { type AllowGroups, type RouterArgsSpec, renderRouterArgs } from "../contract/router-args.js";
import { cidrProblem } from "./cidr.js";
import { checkSiteName, objectLabels, selectorLabels } from "./labels.js";
import { MetricsService, type MonitoringProps } from "./metrics-service.js";
import {
  containerSecurityContext,
  podSecurityContext,
  podVolumes,
  ROUTER_TOKENS_DIR,
  type SecretMount,
  TLS_FILES,
  tlsMount,
} from "./pod-parts.js";
import { bridgePolicy, MAX_ROUTER_REPLICAS, ROUTER_REPLICAS_WHY } from "./router-policy.js";
import { spreadConstraints } from "./scheduling.js";
import { ValidationError } from "./validation-error.js";

/** How clients prove who they are to the router. */
export type RouterAuth =
  /** Mutual TLS: a client certificate signed by the CA, the site identity in its URI SAN. */
  | { readonly kind: "tls"; readonly secretName: string }
  /** Plain TCP, one token per site (`--auth-tokens`): a Secret with one key per site. */
  | { readonly kind: "tokens"; readonly secretName: string }
  /** Plain TCP, anyone who can connect (JGroups TUNNEL clients); no policy can apply. */
  | { readonly kind: "open" };

export interface GossipRouterProps {
  /** Site the router belongs to; names the objects (`<site>-router`). */
  readonly site: string;
  /** Image that contains `relay router`. */
  readonly image: string;
  /** @default "default" */
  readonly namespace?: string;
  /** Gossip port (container, Service and LoadBalancer). @default 12001 */
  readonly port?: number;
  /** Cluster-internal HTTP port: /healthz, /metrics. @default 9000 */
  readonly httpPort?: number;
  /**
   * Must be 1. Routers keep registrations in memory and do not share them: with two replicas
   * behind one LoadBalancer, two site masters may land on different replicas and not see each
   * other through this router (the bridge splits). Availability comes from one router per site,
   * every relay node connecting to every router. @default 1
   */
  readonly replicas?: number;
  /**
   * CIDRs allowed to reach the LoadBalancer (entries may be tokens, e.g. other stacks' egress
   * addresses). The stacks pass every site's egress addresses; `["0.0.0.0/0"]` opens it to
   * anyone. @default ["0.0.0.0/0"]
   */
  readonly loadBalancerSourceRanges?: readonly string[];
  /** Annotations of the LoadBalancer Service (e.g. IKubeCluster.loadBalancerAnnotations). @default {} */
  readonly serviceAnnotations?: Record<string, string>;
  /**
   * How clients authenticate: mutual TLS with `--tls-client-auth` (a TLS Secret with tls.crt,
   * tls.key, ca.crt), per-site tokens without TLS (a Secret with one key per site, mounted on
   * ROUTER_TOKENS_DIR for `--auth-tokens`), or open. @default { kind: "open" } (plain TCP, no
   * authentication: for local runs and JGroups TUNNEL clients only)
   */
  readonly auth?: RouterAuth;
  /**
   * Which site identities may use which groups (`--allow-groups`). "any" renders no flag (every
   * authenticated identity may use every group); it is the only value allowed in open mode,
   * where clients have no identity. @default { bridge: [site] } (the bridge group, this router's
   * own site only; the stacks pass every site of the topology, `bridgePolicy(sites)`), or "any"
   * in open mode
   */
  readonly allowGroups?: AllowGroups | "any";
  /** @default requests 50m/64Mi, limits 500m/256Mi */
  readonly resources?: { requests: Record<string, string>; limits: Record<string, string> };
  /**
   * Scraping: the metrics Service `<site>-router-metrics` and an optional ServiceMonitor
   * (metrics-service.ts). @default no ServiceMonitor
   */
  readonly monitoring?: MonitoringProps;
}

export class GossipRouter extends Construct {
  readonly name: string;
  readonly port: number;
  readonly httpPort: number;
  readonly replicas: number;
  /** Public host name (EKS) or IP (GKE) of the LoadBalancer (token). */
  readonly host: string;
  /** `host[port]` of the LoadBalancer, the syntax of TUNNEL_INITIAL_HOSTS (token). */
  readonly endpoint: string;
  readonly deployment: DeploymentV1;
  readonly service: ServiceV1;
  readonly httpService: ServiceV1;
  /**
   * maxUnavailable 1: a node drain may evict the (single) router, and the sites fail over to the
   * other sites' routers meanwhile; minAvailable 1 would block every drain and node upgrade.
   */
  readonly podDisruptionBudget: PodDisruptionBudgetV1;
  /** The metrics Service (and ServiceMonitor, when enabled). */
  readonly metrics: MetricsService;
  /** The rendered container args (the contract's command line). */
  readonly args: readonly string[];
  /** How clients authenticate. */
  readonly auth: RouterAuth["kind"];
  /** The rendered policy, or "any" when no `--allow-groups` is rendered. */
  readonly allowGroups: AllowGroups | "any";
  /** The LoadBalancer's source ranges as rendered (entries may be tokens). */
  readonly loadBalancerSourceRanges: readonly string[];

  constructor(scope: Construct, id: string, props: GossipRouterProps) {
    super(scope, id);
    checkSiteName(this, "GossipRouter", props.site);
    this.name = `${props.site}-router`;
    this.port = props.port ?? ROUTER_PORT;
    this.httpPort = props.httpPort ?? ROUTER_HTTP_PORT;
    this.replicas = props.replicas ?? 1;
    const namespace = props.namespace ?? "default";
    checkPort(this, "port", this.port);
    checkPort(this, "httpPort", this.httpPort);
    if (this.port === this.httpPort)
      throw new ValidationError(this, `GossipRouter: port and httpPort are both ${this.port}`);
    if (!Token.isUnresolved(this.replicas) && (!Number.isInteger(this.replicas) || this.replicas < 1)) {
      throw new ValidationError(
        this,
        `GossipRouter: replicas must be an integer >= 1 (got ${this.replicas})`,
      );
    }
    if (!Token.isUnresolved(this.replicas) && this.replicas > MAX_ROUTER_REPLICAS) {
      throw new ValidationError(this, `GossipRouter: replicas ${this.replicas}: ${ROUTER_REPLICAS_WHY}`);
    }
    const labels = objectLabels(props.site, "router");
    const selector = selectorLabels(props.site, "router");
    const auth: RouterAuth = props.auth ?? { kind: "open" };
    this.auth = auth.kind;
    this.allowGroups = props.allowGroups ?? (auth.kind === "open" ? "any" : bridgePolicy([props.site]));
    if (auth.kind === "open" && this.allowGroups !== "any") {
      throw new ValidationError(
        this,
        'GossipRouter: allowGroups needs authenticated clients (auth "tls" or "tokens"); in open mode clients have no identity, so use "any"',
      );
    }
    this.loadBalancerSourceRanges = [...(props.loadBalancerSourceRanges ?? ["0.0.0.0/0"])];
    checkSourceRanges(this, this.loadBalancerSourceRanges);

    const spec: RouterArgsSpec = {
      port: this.port,
      httpPort: this.httpPort,
      // Client auth always on with TLS: a server-only TLS router would be an open door.
      ...(auth.kind === "tls" ? { tls: { ...TLS_FILES, clientAuth: true } } : {}),
      ...(auth.kind === "tokens" ? { authTokens: ROUTER_TOKENS_DIR } : {}),
      ...(this.allowGroups !== "any" ? { allowGroups: this.allowGroups } : {}),
    };
    try {
      this.args = renderRouterArgs(spec);
    } catch (err) {
      // The router's own parser refused the policy: name the prop, keep the reason.
      if (err instanceof ConfigError)
        throw new ValidationError(this, `GossipRouter: allowGroups: ${err.message}`);
      throw err;
    }
    const args = [...this.args];
    const probe = (initialDelaySeconds: number) => ({
      httpGet: { path: "/healthz", port: String(this.httpPort) },
      initialDelaySeconds,
      periodSeconds: 10,
      timeoutSeconds: 2,
      failureThreshold: 3,
    });

    const mounts: SecretMount[] =
      auth.kind === "tls"
        ? [tlsMount(auth.secretName)]
        : auth.kind === "tokens"
          ? [{ volume: "tokens", secretName: auth.secretName, mountPath: ROUTER_TOKENS_DIR }]
          : [];
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
            // Across zones (preferred) and nodes (required): constructs/scheduling.ts.
            topologySpreadConstraint: spreadConstraints(selector),
            container: [
              {
                name: "router",
                image: props.image,
                args,
                port: [
                  { name: "gossip", containerPort: this.port, protocol: "TCP" },
                  { name: "http", containerPort: this.httpPort, protocol: "TCP" },
                ],
                readinessProbe: probe(2),
                livenessProbe: probe(10),
                resources: props.resources ?? {
                  requests: { cpu: "50m", memory: "64Mi" },
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

    this.service = new ServiceV1(this, "service", {
      metadata: { name: this.name, namespace, labels, annotations: props.serviceAnnotations ?? {} },
      spec: {
        type: "LoadBalancer",
        selector,
        port: [{ name: "gossip", port: this.port, targetPort: "gossip", protocol: "TCP" }],
        loadBalancerSourceRanges: [...this.loadBalancerSourceRanges],
        externalTrafficPolicy: "Cluster",
      },
      // The endpoint is an output: wait until the cloud has filled in the address.
      waitForLoadBalancer: true,
    });

    this.podDisruptionBudget = new PodDisruptionBudgetV1(this, "pdb", {
      metadata: { name: this.name, namespace, labels },
      spec: { maxUnavailable: "1", selector: { matchLabels: selector } },
    });

    this.httpService = new ServiceV1(this, "http-service", {
      metadata: { name: `${this.name}-http`, namespace, labels },
      spec: {
        type: "ClusterIP",
        selector,
        port: [{ name: "http", port: this.httpPort, targetPort: "http", protocol: "TCP" }],
      },
    });

    this.metrics = new MetricsService(this, "metrics", {
      name: `${this.name}-metrics`,
      namespace,
      labels,
      selector,
      port: this.httpPort,
      ...(props.monitoring ? { monitoring: props.monitoring } : {}),
    });

    // EKS fills `hostname`, GKE fills `ip`: coalesce skips the empty one. A local keeps the
    // expression in this stack, so a consumer stack reads one output per router.
    const ingress = this.service.status.get(0).loadBalancer.get(0).ingress.get(0);
    this.host = new TerraformLocal(this, "host", Fn.coalesce([ingress.hostname, ingress.ip])).asString;
    this.endpoint = new TerraformLocal(
      this,
      "endpoint",
      formatEndpoint({ host: this.host, port: this.port }),
    ).asString;
  }
}

function checkSourceRanges(scope: Construct, ranges: readonly string[]): void {
  if (ranges.length === 0) {
    throw new ValidationError(
      scope,
      'GossipRouter: loadBalancerSourceRanges is empty; give CIDRs (["0.0.0.0/0"] admits anyone)',
    );
  }
  ranges.forEach((r, i) => {
    if (Token.isUnresolved(r)) return;
    const problem = cidrProblem(r);
    if (problem) throw new ValidationError(scope, `GossipRouter: loadBalancerSourceRanges[${i}]: ${problem}`);
  });
}

function checkPort(scope: Construct, prop: string, port: number): void {
  if (Token.isUnresolved(port)) return;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ValidationError(scope, `GossipRouter: ${prop} must be an integer in 1..65535 (got ${port})`);
  }
}
