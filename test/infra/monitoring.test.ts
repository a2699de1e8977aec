// Monitoring in the synthesized JSON (constructs/metrics-service.ts, docs/DEPLOY.md "Monitoring"):
// a metrics Service per site and router with scrape annotations, the monitoring namespace admitted
// to the site's metrics port by the NetworkPolicy, and ServiceMonitors only when switched on.

import { describe, expect, test } from "@jest/globals";
import { App, TerraformStack } from "cdktf";
import { GossipRouter } from "../../constructs/gossip-router.js";
import { RelaySite } from "../../constructs/relay-site.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { defaultTopology, parseTopology, TopologyError } from "../../topology/index.js";
import { findNamed, resourcesOf, synthTopology, type TfJson } from "./synth.js";

const SCRAPE = {
  "prometheus.io/scrape": "true",
  "prometheus.io/port": expect.any(String),
  "prometheus.io/path": "/metrics",
};

function metricsService(stack: TfJson, name: string): TfJson {
  return findNamed(stack, "kubernetes_service_v1", name);
}

/** The `from` peers of the ingress rule of the HTTP port. */
function httpPeers(stack: TfJson, policy: string, httpPort: number): TfJson[] {
  const np = findNamed(stack, "kubernetes_network_policy_v1", policy);
  const rules: TfJson[] = np["spec"]["ingress"];
  const rule = rules.find((r) => r["ports"].some((p: TfJson) => p["port"] === String(httpPort)));
  if (!rule) throw new Error("no ingress rule for the HTTP port");
  return rule["from"];
}

describe("default topology", () => {
  const { stacks } = synthTopology(defaultTopology());

  test.each(["nyc", "sfc"])(
    "site %s: metrics Service, annotations, NetworkPolicy admits 'monitoring'",
    (s) => {
      const site = stacks[`${s}-site`]!;
      const svc = metricsService(site, `${s}-relay-metrics`);
      expect(svc["metadata"]["annotations"]).toEqual(SCRAPE);
      expect(svc["metadata"]["annotations"]["prometheus.io/port"]).toBe("8080");
      expect(svc["spec"]["type"]).toBe("ClusterIP");
      expect(svc["spec"]["port"]).toEqual([
        { name: "metrics", port: 8080, target_port: "http", protocol: "TCP" },
      ]);
      expect(svc["spec"]["selector"]).toEqual({
        "app.kubernetes.io/name": "relay-node",
        "app.kubernetes.io/instance": `${s}-relay`,
      });
      expect(httpPeers(site, `${s}-relay`, 8080)).toEqual([
        { pod_selector: {} },
        { namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "monitoring" } } },
      ]);
      // Off by default: no ServiceMonitor anywhere.
      expect(resourcesOf(site, "kubernetes_manifest")).toEqual([]);
    },
  );

  test.each(["nyc", "sfc"])("router %s: metrics Service on the router's HTTP port", (s) => {
    const router = stacks[`${s}-router`]!;
    const svc = metricsService(router, `${s}-router-metrics`);
    expect(svc["metadata"]["annotations"]).toEqual({ ...SCRAPE, "prometheus.io/port": "9000" });
    expect(svc["spec"]["port"]).toEqual([
      { name: "metrics", port: 9000, target_port: "http", protocol: "TCP" },
    ]);
    expect(svc["spec"]["selector"]["app.kubernetes.io/name"]).toBe("gossip-router");
    expect(resourcesOf(router, "kubernetes_manifest")).toEqual([]);
  });
});

describe("monitoring switches in the topology", () => {
  test("serviceMonitor: true creates a ServiceMonitor per site and router in the monitoring namespace", () => {
    const topology = parseTopology({
      monitoring: {
        namespace: "prom",
        serviceMonitor: true,
        serviceMonitorLabels: { release: "kps" },
        interval: "15s",
      },
    });
    const { stacks } = synthTopology(topology);
    for (const [stack, name] of [
      ["nyc-site", "nyc-relay-metrics"],
      ["sfc-site", "sfc-relay-metrics"],
      ["nyc-router", "nyc-router-metrics"],
      ["sfc-router", "sfc-router-metrics"],
    ] as const) {
      const manifests = resourcesOf(stacks[stack]!, "kubernetes_manifest");
      expect(manifests).toHaveLength(1);
      const m = manifests[0]![1]["manifest"];
      expect(m["apiVersion"]).toBe("monitoring.coreos.com/v1");
      expect(m["kind"]).toBe("ServiceMonitor");
      expect(m["metadata"]).toEqual(expect.objectContaining({ name, namespace: "prom" }));
      expect(m["metadata"]["labels"]["release"]).toBe("kps");
      expect(m["spec"]["namespaceSelector"]).toEqual({ matchNames: ["default"] });
      expect(m["spec"]["endpoints"]).toEqual([{ port: "metrics", path: "/metrics", interval: "15s" }]);
      // It selects the metrics Service (by its labels), not the headless or LoadBalancer one.
      const svc = metricsService(stacks[stack]!, name);
      for (const [k, v] of Object.entries<string>(m["spec"]["selector"]["matchLabels"])) {
        expect(svc["metadata"]["labels"][k]).toBe(v);
      }
      expect(m["spec"]["selector"]["matchLabels"]["cross-cloud-relay/metrics"]).toBe("true");
    }
    expect(httpPeers(stacks["nyc-site"]!, "nyc-relay", 8080)).toContainEqual({
      namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "prom" } },
    });
  });

  test("namespace: null admits only the relay namespace", () => {
    const { stacks } = synthTopology(parseTopology({ monitoring: { namespace: null } }));
    expect(httpPeers(stacks["sfc-site"]!, "sfc-relay", 8080)).toEqual([{ pod_selector: {} }]);
    // The Service stays: a Prometheus in the namespace may still use it.
    expect(metricsService(stacks["sfc-site"]!, "sfc-relay-metrics")).toBeDefined();
  });

  test("bad fields are named", () => {
    let err: unknown;
    try {
      parseTopology({
        monitoring: {
          namespace: "Prom!",
          serviceMonitor: "yes",
          interval: "soon",
          serviceMonitorLabels: { "a b": "c" },
          x: 1,
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TopologyError);
    const problems = (err as TopologyError).problems.join("\n");
    for (const field of [
      "monitoring.namespace",
      "monitoring.serviceMonitor",
      "monitoring.interval",
      "monitoring.serviceMonitorLabels.a b",
      "monitoring.x",
    ]) {
      expect(problems).toContain(field);
    }
  });
});

describe("constructs", () => {
  const stack = () => new TerraformStack(new App(), "s");
  test("a bad monitoring namespace or interval is refused at construction", () => {
    expect(
      () =>
        new RelaySite(stack(), "s", {
          site: "a",
          image: "i",
          tunnelInitialHosts: "h[1]",
          monitoring: { namespace: "NOPE" },
        }),
    ).toThrow(ValidationError);
    expect(
      () => new GossipRouter(stack(), "r", { site: "a", image: "i", monitoring: { interval: "1 minute" } }),
    ).toThrow(/monitoring\.interval "1 minute" must be a duration/);
  });

  test("outputs: the Service and the ServiceMonitor as properties", () => {
    const r = new GossipRouter(stack(), "r", { site: "a", image: "i", monitoring: { serviceMonitor: true } });
    expect(r.metrics.serviceMonitor).toBeDefined();
    expect(r.metrics.monitoringNamespace).toBe("monitoring");
    const s = new RelaySite(stack(), "s", { site: "a", image: "i", tunnelInitialHosts: "h[1]" });
    expect(s.metrics.serviceMonitor).toBeUndefined();
  });
});
