// Synthesizes the seed topology once and checks every stack's parameters and structure.

import { renderRelayEnv } from "../../contract/relay-env.js";
import { defaultTopology } from "../../topology/index.js";
import {
  containerEnv,
  findNamed,
  resourcesOf,
  structuralProblems,
  synthTopology,
  type TfJson,
} from "./synth.js";

const { stacks, dependencies } = synthTopology(defaultTopology());
const only = (stack: TfJson, type: string): TfJson => {
  const all = resourcesOf(stack, type);
  expect(all).toHaveLength(1);
  return all[0]![1];
};

test("one state per cluster, router and site, plus pki, layered without a cycle; routers read every cluster (egress)", () => {
  expect(Object.keys(stacks).sort()).toEqual(
    ["nyc-cluster", "nyc-router", "nyc-site", "pki", "sfc-cluster", "sfc-router", "sfc-site"].sort(),
  );
  expect(dependencies["pki"]).toEqual([]);
  expect(dependencies["nyc-cluster"]).toEqual([]);
  expect([...dependencies["nyc-router"]!].sort()).toEqual(["nyc-cluster", "pki", "sfc-cluster"]);
  expect([...dependencies["sfc-router"]!].sort()).toEqual(["nyc-cluster", "pki", "sfc-cluster"]);
  expect([...dependencies["nyc-site"]!].sort()).toEqual(["nyc-cluster", "nyc-router", "pki", "sfc-router"]);
  expect([...dependencies["sfc-site"]!].sort()).toEqual(["nyc-router", "pki", "sfc-cluster", "sfc-router"]);
});

test("nyc: EKS in us-east-1 with the seed's managed node group", () => {
  const s = stacks["nyc-cluster"]!;
  expect(s["provider"]["aws"][0]["region"]).toBe("us-east-1");
  const ng = only(s, "aws_eks_node_group");
  expect(ng["node_group_name"]).toBe("nyc-nodegroup");
  expect(ng["instance_types"]).toEqual(["t3.small"]);
  expect(ng["scaling_config"]).toEqual({ desired_size: 2, min_size: 1, max_size: 4 });
  const cluster = only(s, "aws_eks_cluster");
  expect(cluster["access_config"]).toEqual({
    authentication_mode: "API",
    bootstrap_cluster_creator_admin_permissions: true,
  });
  // Nodes on the private subnets; the cluster spans public and private.
  expect(ng["subnet_ids"]).toHaveLength(2);
  expect(ng["subnet_ids"].every((id: string) => id.includes("aws_subnet.cluster_private"))).toBe(true);
  expect(cluster["vpc_config"]["subnet_ids"]).toHaveLength(4);
  expect(ng["depends_on"]).toHaveLength(3);

  const subnets = resourcesOf(s, "aws_subnet").map(([, r]) => r["tags"]);
  expect(subnets.filter((t) => t["kubernetes.io/role/elb"] === "1")).toHaveLength(2);
  expect(subnets.filter((t) => t["kubernetes.io/role/internal-elb"] === "1")).toHaveLength(2);
  expect(only(s, "aws_vpc")).toMatchObject({ enable_dns_support: true, enable_dns_hostnames: true });
  expect(only(s, "aws_eip")["domain"]).toBe("vpc");
  only(s, "aws_nat_gateway");
  only(s, "aws_internet_gateway");
  expect(resourcesOf(s, "aws_route_table_association")).toHaveLength(4);
  const policies = resourcesOf(s, "aws_iam_role_policy_attachment").map(([, r]) =>
    r["policy_arn"].split("/").pop(),
  );
  expect(policies.sort()).toEqual(
    [
      "AmazonEC2ContainerRegistryReadOnly",
      "AmazonEKSClusterPolicy",
      "AmazonEKSWorkerNodePolicy",
      "AmazonEKS_CNI_Policy",
    ].sort(),
  );
  expect(s["output"]["kubeconfig_command"]["value"]).toBe(
    "aws eks update-kubeconfig --region us-east-1 --name nyc-relay",
  );
});

test("sfc: GKE without the default pool, a separate 2-node pool, explicit deletion protection", () => {
  const s = stacks["sfc-cluster"]!;
  const cluster = only(s, "google_container_cluster");
  expect(cluster).toMatchObject({
    remove_default_node_pool: true,
    deletion_protection: false,
    location: "us-west1-a",
  });
  expect(cluster["network"]).toContain("google_compute_network.");
  expect(cluster["subnetwork"]).toContain("google_compute_subnetwork.");
  const pool = only(s, "google_container_node_pool");
  expect(pool["node_count"]).toBe(2);
  expect(pool["node_config"]["machine_type"]).toBe("e2-medium");
  expect(only(s, "google_compute_subnetwork")["region"]).toBe("us-west1");
  expect(s["output"]["kubeconfig_command"]["value"]).toBe(
    "gcloud container clusters get-credentials sfc-relay --zone us-west1-a",
  );
});

describe.each(["nyc", "sfc"])("%s router", (site) => {
  const s = stacks[`${site}-router`]!;

  test("kubernetes provider comes from the cluster stack's outputs, not from a cluster in this state", () => {
    const provider = s["provider"]["kubernetes"][0];
    expect(provider["host"]).toContain(
      `data.terraform_remote_state.cross-stack-reference-input-${site}-cluster.outputs.`,
    );
    expect(provider["cluster_ca_certificate"]).toMatch(/^\$\{base64decode\(data\.terraform_remote_state\./);
    expect(Object.keys(s["resource"]).filter((t) => /eks_cluster|container_cluster/.test(t))).toEqual([]);
    if (site === "nyc") {
      expect(provider["exec"][0]).toMatchObject({
        command: "aws",
        args: ["eks", "get-token", "--cluster-name", "nyc-relay", "--region", "us-east-1"],
      });
    } else {
      expect(provider["token"]).toMatch(/data\.google_client_config\./);
    }
  });

  test("Deployment: image, router args with mutual TLS, probes, hardened container", () => {
    const dep = findNamed(s, "kubernetes_deployment_v1", `${site}-router`);
    expect(dep["spec"]["replicas"]).toBe("1");
    const c = dep["spec"]["template"]["spec"]["container"][0];
    expect(c["image"]).toBe("ghcr.io/cross-cloud-relay/relay:0.1.0");
    expect(c["args"]).toEqual([
      "router",
      "--port",
      "12001",
      "--http-port",
      "9000",
      "--tls-cert",
      "/etc/relay/tls/tls.crt",
      "--tls-key",
      "/etc/relay/tls/tls.key",
      "--tls-ca",
      "/etc/relay/tls/ca.crt",
      "--tls-client-auth",
      "--allow-groups",
      "bridge=nyc,sfc",
    ]);
    for (const probe of ["liveness_probe", "readiness_probe"]) {
      expect(c[probe]["http_get"]).toEqual({ path: "/healthz", port: "9000" });
    }
    expect(c["security_context"]).toMatchObject({
      run_as_non_root: true,
      read_only_root_filesystem: true,
      allow_privilege_escalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(c["resources"]["limits"]).toBeDefined();
    const secret = findNamed(s, "kubernetes_secret_v1", `${site}-router-tls`);
    expect(Object.keys(secret["data"]).sort()).toEqual(["ca.crt", "tls.crt", "tls.key"]);
    expect(secret["data"]["tls.key"]).toContain(
      "data.terraform_remote_state.cross-stack-reference-input-pki.",
    );
    // Mounted by reference, so the Deployment waits for the Secret.
    const volume = dep["spec"]["template"]["spec"]["volume"].find((v: TfJson) => v["name"] === "tls");
    const ref = /^\$\{kubernetes_secret_v1\.([\w-]+)\.metadata\[0\]\.name\}$/.exec(
      volume["secret"]["secret_name"],
    );
    expect(s["resource"]["kubernetes_secret_v1"][ref![1]!]).toBe(secret);
  });

  test("only the gossip port is public; http stays on a ClusterIP service", () => {
    const lb = findNamed(s, "kubernetes_service_v1", `${site}-router`);
    expect(lb["spec"]["type"]).toBe("LoadBalancer");
    expect(lb["spec"]["port"]).toEqual([
      { name: "gossip", port: 12001, target_port: "gossip", protocol: "TCP" },
    ]);
    // Every site's egress address, read from the cluster stacks (test/infra/egress.test.ts).
    const ranges: string[] = lb["spec"]["load_balancer_source_ranges"];
    expect(ranges.filter((r) => r.includes("data.terraform_remote_state."))).toHaveLength(2);
    expect(ranges).not.toContain("0.0.0.0/0");
    expect(lb["wait_for_load_balancer"]).toBe(true);
    const nlb = lb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"];
    expect(nlb).toBe(site === "nyc" ? "nlb" : undefined);
    const http = findNamed(s, "kubernetes_service_v1", `${site}-router-http`);
    expect(http["spec"]["type"]).toBe("ClusterIP");
    expect(http["spec"]["port"]).toEqual([
      { name: "http", port: 9000, target_port: "http", protocol: "TCP" },
    ]);
    expect(s["output"]["endpoint"]["value"]).toMatch(/^\$\{local\.router_endpoint_\w+\}$/);
  });
});

describe.each([
  ["nyc", 5],
  ["sfc", 3],
])("%s site", (site, replicas) => {
  const s = stacks[`${site}-site`]!;
  const dep = findNamed(s, "kubernetes_deployment_v1", `${site}-relay`);

  test(`Deployment of ${replicas} relay pods with the contract's env`, () => {
    expect(dep["spec"]["replicas"]).toBe(String(replicas));
    const c = dep["spec"]["template"]["spec"]["container"][0];
    expect(c["image"]).toBe("ghcr.io/cross-cloud-relay/relay:0.1.0");
    expect(c["args"]).toEqual(["node"]);
    const env = containerEnv(dep);
    const expected = renderRelayEnv({
      site,
      cluster: "relay",
      discovery: { kind: "dns", query: `${site}-relay.default.svc.cluster.local` },
      tunnelInitialHosts: "x",
      tls: {
        cert: "/etc/relay/tls/tls.crt",
        key: "/etc/relay/tls/tls.key",
        ca: "/etc/relay/tls/ca.crt",
        serverName: "gossip-router.relay.internal",
      },
      clusterSecretFile: "/etc/relay/mesh/cluster-secret",
    }).map((e) => e.name);
    expect([...env.keys()]).toEqual(expected);
    expect(env.get("SITE")!["value"]).toBe(site);
    expect(env.get("DNS_QUERY")!["value"]).toBe(`${site}-relay.default.svc.cluster.local`);
    expect(env.get("NODE_NAME")!["value_from"]).toEqual({ field_ref: { field_path: "metadata.name" } });
    expect(env.get("BIND_ADDR")!["value_from"]).toEqual({ field_ref: { field_path: "status.podIP" } });
    expect(env.get("BIND_PORT")!["value"]).toBe("7800");
    expect(env.get("HTTP_PORT")!["value"]).toBe("8080");
    expect(env.get("TLS_CA")!["value"]).toBe("/etc/relay/tls/ca.crt");
    // The routers' certificates carry this name (the LoadBalancer's does not exist at issue time).
    expect(env.get("TLS_SERVER_NAME")!["value"]).toBe("gossip-router.relay.internal");
    expect(c["readiness_probe"]["http_get"]).toEqual({ path: "/readyz", port: "8080" });
    expect(c["liveness_probe"]["http_get"]).toEqual({ path: "/healthz", port: "8080" });
    expect(c["security_context"]).toMatchObject({ run_as_non_root: true, read_only_root_filesystem: true });
  });

  test("headless Service publishing not-ready addresses on 7800", () => {
    const svc = findNamed(s, "kubernetes_service_v1", `${site}-relay`);
    expect(svc["spec"]).toMatchObject({ cluster_ip: "None", publish_not_ready_addresses: true });
    expect(svc["spec"]["port"]).toEqual([
      { name: "cluster", port: 7800, target_port: "cluster", protocol: "TCP" },
    ]);
    expect(svc["spec"]["selector"]).toEqual(dep["spec"]["selector"]["match_labels"]);
  });

  test("PodDisruptionBudget and a NetworkPolicy admitting 7800 only from the site's pods", () => {
    const pdb = findNamed(s, "kubernetes_pod_disruption_budget_v1", `${site}-relay`);
    expect(pdb["spec"]["max_unavailable"]).toBe("1");
    const np = findNamed(s, "kubernetes_network_policy_v1", `${site}-relay`);
    const selector = dep["spec"]["selector"]["match_labels"];
    expect(np["spec"]["pod_selector"]).toEqual({ match_labels: selector });
    const cluster = np["spec"]["ingress"].find((r: TfJson) => r["ports"][0]["port"] === "7800");
    expect(cluster["from"]).toEqual([{ pod_selector: { match_labels: selector } }]);
  });
});

test("pki: one CA and a certificate per router and per site", () => {
  const s = stacks["pki"]!;
  expect(resourcesOf(s, "tls_self_signed_cert")).toHaveLength(1);
  expect(only(s, "tls_self_signed_cert")["is_ca_certificate"]).toBe(true);
  const leaves = resourcesOf(s, "tls_locally_signed_cert").map(([, r]) => r["allowed_uses"]);
  expect(leaves).toHaveLength(4);
  expect(leaves.filter((u) => u.includes("server_auth"))).toHaveLength(2);
  expect(leaves.filter((u) => u.includes("client_auth"))).toHaveLength(2);
});

test.each(Object.keys(stacks))("%s: every reference resolves and every provider is configured", (name) => {
  expect(structuralProblems(name, stacks)).toEqual([]);
});
