// What a Prometheus needs to scrape one component (a relay site's nodes or a router): a ClusterIP
// Service whose port is named `metrics`, with the `prometheus.io/*` annotations that annotation-
// based scrape configs read, and, when asked, a ServiceMonitor for the Prometheus Operator. Both
// RelaySite and GossipRouter create one (docs/DEPLOY.md, "Monitoring").

import { Manifest } from "@cdktf/provider-kubernetes/lib/manifest/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import { Token } from "cdktf";
import { Construct } from "constructs";
import { ValidationError } from "./validation-error.js";

/** Where the metrics are scraped from. Shared by RelaySite and GossipRouter. */
export interface MonitoringProps {
  /**
   * Namespace of the Prometheus: the site's NetworkPolicy admits the HTTP (metrics) port from it,
   * selected by its `kubernetes.io/metadata.name` label; null admits only the site's own namespace.
   * The ServiceMonitor is created there. @default "monitoring"
   */
  readonly namespace?: string | null;
  /**
   * Create a `monitoring.coreos.com/v1` ServiceMonitor (needs the Prometheus Operator's CRDs in
   * the cluster at plan time). @default false
   */
  readonly serviceMonitor?: boolean;
  /** Labels of the ServiceMonitor (e.g. `release: kube-prometheus-stack`, what its Prometheus selects). @default none */
  readonly serviceMonitorLabels?: Readonly<Record<string, string>>;
  /** Scrape interval of the ServiceMonitor. @default "30s" */
  readonly interval?: string;
}

export const DEFAULT_MONITORING_NAMESPACE = "monitoring";
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const INTERVAL = /^[0-9]+(ms|s|m|h)$/;

export interface MetricsServiceProps {
  /** Name of the Service and the ServiceMonitor. */
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Selector of the pods that serve /metrics. */
  readonly selector: Readonly<Record<string, string>>;
  /** The pods' HTTP port (served as port `metrics`, target the container port named `http`). */
  readonly port: number;
  readonly monitoring?: MonitoringProps;
}

/** The monitoring namespace in force (null: none), checked. */
export function monitoringNamespace(scope: Construct, m: MonitoringProps | undefined): string | null {
  const ns = m?.namespace === undefined ? DEFAULT_MONITORING_NAMESPACE : m.namespace;
  if (ns !== null && !Token.isUnresolved(ns) && !NAMESPACE.test(ns)) {
    throw new ValidationError(
      scope,
      `monitoring.namespace "${ns}" must be a namespace name (DNS-1123 label), or null for none`,
    );
  }
  return ns;
}

export class MetricsService extends Construct {
  readonly service: ServiceV1;
  /** Present when `monitoring.serviceMonitor` is true. */
  readonly serviceMonitor: Manifest | undefined;
  /** Where the ServiceMonitor lives and what the NetworkPolicy admits (null: none). */
  readonly monitoringNamespace: string | null;

  constructor(scope: Construct, id: string, props: MetricsServiceProps) {
    super(scope, id);
    const m = props.monitoring ?? {};
    this.monitoringNamespace = monitoringNamespace(this, m);
    const interval = m.interval ?? "30s";
    if (!INTERVAL.test(interval)) {
      throw new ValidationError(
        this,
        `monitoring.interval "${interval}" must be a duration such as 30s or 1m`,
      );
    }
    this.service = new ServiceV1(this, "service", {
      metadata: {
        name: props.name,
        namespace: props.namespace,
        labels: { ...props.labels, "cross-cloud-relay/metrics": "true" },
        annotations: {
          "prometheus.io/scrape": "true",
          "prometheus.io/port": String(props.port),
          "prometheus.io/path": "/metrics",
        },
      },
      spec: {
        type: "ClusterIP",
        selector: { ...props.selector },
        port: [{ name: "metrics", port: props.port, targetPort: "http", protocol: "TCP" }],
      },
    });

    if (m.serviceMonitor === true) {
      this.serviceMonitor = new Manifest(this, "service-monitor", {
        manifest: {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "ServiceMonitor",
          metadata: {
            name: props.name,
            namespace: this.monitoringNamespace ?? props.namespace,
            labels: { ...props.labels, ...(m.serviceMonitorLabels ?? {}) },
          },
          spec: {
            selector: { matchLabels: { ...props.selector, "cross-cloud-relay/metrics": "true" } },
            namespaceSelector: { matchNames: [props.namespace] },
            endpoints: [{ port: "metrics", path: "/metrics", interval }],
          },
        },
      });
    } else {
      this.serviceMonitor = undefined;
    }
  }
}
