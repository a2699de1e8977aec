// A GossipRouter in one cluster: a Deployment of `relay router` and a LoadBalancer Service that
// exposes only the gossip port; health and metrics stay on a ClusterIP Service. The Service carries
// the annotations the cluster's cloud needs (IKubeCluster.loadBalancerAnnotations: an NLB on EKS);
// the cloud controllers (EKS's security groups, GKE's firewall rules) open the gossip port for
// `loadBalancerSourceRanges` themselves, so no firewall resource here.

import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import { Fn, TerraformLocal, Token } from "cdktf";
import { Construct } from "constructs";
import { formatEndpoint } from "../contract/initial-hosts.js";
import { ROUTER_HTTP_PORT, ROUTER_PORT } from "../contract/ports.js";
import { renderRouterArgs } from "../contract/router-args.js";
import { checkSiteName, objectLabels, selectorLabels } from "./labels.js";
import { containerSecurityContext, podSecurityContext, podVolumes, TLS_FILES } from "./pod-parts.js";
import { ValidationError } from "./validation-error.js";

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
   * Routers keep registrations in memory and do not share them; with more than one replica behind
   * one LoadBalancer, two clients may land on different replicas and not see each other through
   * this router. @default 1
   */
  readonly replicas?: number;
  /** CIDRs allowed to reach the LoadBalancer. @default ["0.0.0.0/0"] */
  readonly loadBalancerSourceRanges?: string[];
  /** Annotations of the LoadBalancer Service (e.g. IKubeCluster.loadBalancerAnnotations). @default {} */
  readonly serviceAnnotations?: Record<string, string>;
  /** Name of a TLS Secret (tls.crt, tls.key, ca.crt); enables mutual TLS. @default no TLS */
  readonly tlsSecretName?: string;
  /** @default requests 50m/64Mi, limits 500m/256Mi */
  readonly resources?: { requests: Record<string, string>; limits: Record<string, string> };
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
    const labels = objectLabels(props.site, "router");
    const selector = selectorLabels(props.site, "router");
    const tls = props.tlsSecretName !== undefined;

    const args = renderRouterArgs({
      port: this.port,
      httpPort: this.httpPort,
      ...(tls ? { tls: { ...TLS_FILES, clientAuth: true } } : {}),
    });
    const probe = (initialDelaySeconds: number) => ({
      httpGet: { path: "/healthz", port: String(this.httpPort) },
      initialDelaySeconds,
      periodSeconds: 10,
      timeoutSeconds: 2,
      failureThreshold: 3,
    });

    const volumes = podVolumes(props.tlsSecretName);
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
        loadBalancerSourceRanges: props.loadBalancerSourceRanges ?? ["0.0.0.0/0"],
        externalTrafficPolicy: "Cluster",
      },
      // The endpoint is an output: wait until the cloud has filled in the address.
      waitForLoadBalancer: true,
    });

    this.httpService = new ServiceV1(this, "http-service", {
      metadata: { name: `${this.name}-http`, namespace, labels },
      spec: {
        type: "ClusterIP",
        selector,
        port: [{ name: "http", port: this.httpPort, targetPort: "http", protocol: "TCP" }],
      },
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

function checkPort(scope: Construct, prop: string, port: number): void {
  if (Token.isUnresolved(port)) return;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ValidationError(scope, `GossipRouter: ${prop} must be an integer in 1..65535 (got ${port})`);
  }
}
