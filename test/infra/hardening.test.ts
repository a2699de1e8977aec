// The hardened defaults as they land in the synthesized JSON (EKS endpoint, logs, KMS, nodes; GKE
// node account, Workload Identity, shielded nodes, autoscaling; pod spread and PDBs), the
// topology's tags on every cloud resource, and the constructs refusing unsafe or impossible props.

import { App, TerraformStack } from "cdktf";
import { EksCluster } from "../../clouds/eks/cluster.js";
import { GkeCluster } from "../../clouds/gke/cluster.js";
import { GossipRouter } from "../../constructs/gossip-router.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { defaultTopology, parseTopology } from "../../topology/index.js";
import { findNamed, resourcesOf, synthTopology, type TfJson } from "./synth.js";

const { stacks } = synthTopology(defaultTopology());
const only = (stack: TfJson, type: string): TfJson => {
  const all = resourcesOf(stack, type);
  expect(all).toHaveLength(1);
  return all[0]![1];
};

describe("EKS defaults", () => {
  const s = stacks["nyc-cluster"]!;
  const cluster = only(s, "aws_eks_cluster");

  test("the API endpoint is private only", () => {
    expect(cluster["vpc_config"]).toMatchObject({
      endpoint_private_access: true,
      endpoint_public_access: false,
    });
    expect(cluster["vpc_config"]["public_access_cidrs"]).toBeUndefined();
  });

  test("every control-plane log type, into a log group with a retention", () => {
    expect(cluster["enabled_cluster_log_types"]).toEqual([
      "api",
      "audit",
      "authenticator",
      "controllerManager",
      "scheduler",
    ]);
    const group = only(s, "aws_cloudwatch_log_group");
    expect(group).toMatchObject({ name: "/aws/eks/nyc-relay/cluster", retention_in_days: 90 });
    expect(cluster["depends_on"]).toEqual(
      expect.arrayContaining([expect.stringMatching(/^aws_cloudwatch_log_group\./)]),
    );
  });

  test("Secrets are encrypted with a rotating KMS key the cluster role may use", () => {
    const key = resourcesOf(s, "aws_kms_key");
    expect(key).toHaveLength(1);
    expect(key[0]![1]).toMatchObject({ enable_key_rotation: true, deletion_window_in_days: 30 });
    expect(cluster["encryption_config"]).toEqual({
      resources: ["secrets"],
      provider: { key_arn: `\${aws_kms_key.${key[0]![0]}.arn}` },
    });
    expect(only(s, "aws_kms_alias")["name"]).toBe("alias/nyc-relay-secrets");
    const policy = JSON.parse(only(s, "aws_iam_role_policy")["policy"]);
    expect(policy.Statement[0].Action).toEqual(expect.arrayContaining(["kms:Encrypt", "kms:Decrypt"]));
    expect(policy.Statement[0].Resource).toBe(`\${aws_kms_key.${key[0]![0]}.arn}`);
  });

  test("node group AMI type and disk size", () => {
    expect(only(s, "aws_eks_node_group")).toMatchObject({
      ami_type: "AL2023_x86_64_STANDARD",
      disk_size: 20,
    });
  });

  test("the router's NLB carries the site's tags", () => {
    const lb = findNamed(stacks["nyc-router"]!, "kubernetes_service_v1", "nyc-router");
    expect(
      lb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags"],
    ).toBe("part-of=cross-cloud-relay,site=nyc");
  });
});

describe("GKE defaults", () => {
  const s = stacks["sfc-cluster"]!;
  const cluster = only(s, "google_container_cluster");
  const pool = only(s, "google_container_node_pool");
  const [saId, sa] = resourcesOf(s, "google_service_account")[0]!;

  test("a dedicated node service account with the logging and monitoring roles only", () => {
    expect(sa["account_id"]).toBe("sfc-relay-nodes");
    const roles = resourcesOf(s, "google_project_iam_member").map(([, r]) => r);
    expect(roles.map((r) => r["role"]).sort()).toEqual([
      "roles/logging.logWriter",
      "roles/monitoring.metricWriter",
      "roles/monitoring.viewer",
      "roles/stackdriver.resourceMetadata.writer",
    ]);
    for (const r of roles) {
      expect(r["member"]).toBe(`serviceAccount:\${google_service_account.${saId}.email}`);
      // The provider's project, read at run time (no project in the seed).
      expect(r["project"]).toMatch(/^\$\{data\.google_client_config\.\w+\.project\}$/);
    }
    expect(pool["node_config"]["service_account"]).toBe(`\${google_service_account.${saId}.email}`);
    expect(pool["node_config"]["oauth_scopes"]).not.toContain(
      "https://www.googleapis.com/auth/cloud-platform",
    );
    expect(pool["depends_on"]).toHaveLength(4);
  });

  test("Workload Identity, shielded nodes, legacy ABAC off", () => {
    expect(cluster).toMatchObject({ enable_legacy_abac: false, enable_shielded_nodes: true });
    expect(cluster["workload_identity_config"]["workload_pool"]).toMatch(
      /^\$\{data\.google_client_config\.\w+\.project\}\.svc\.id\.goog$/,
    );
    expect(pool["node_config"]).toMatchObject({
      workload_metadata_config: { mode: "GKE_METADATA" },
      shielded_instance_config: { enable_secure_boot: true, enable_integrity_monitoring: true },
      metadata: { "disable-legacy-endpoints": "true" },
    });
    expect(pool["network_config"]).toEqual({ enable_private_nodes: true });
  });

  test("a fixed node count unless autoscaling is asked for", () => {
    expect(pool["node_count"]).toBe(2);
    expect(pool["autoscaling"]).toBeUndefined();
    const t = parseTopology({
      sites: [
        { name: "nyc", cloud: "eks" },
        { name: "sfc", cloud: "gke", nodePool: { nodeCount: 2, autoscaling: { min: 1, max: 6 } } },
      ],
    });
    const p = only(synthTopology(t).stacks["sfc-cluster"]!, "google_container_node_pool");
    expect(p["autoscaling"]).toEqual({ min_node_count: 1, max_node_count: 6 });
    expect(p["initial_node_count"]).toBe(2);
    expect(p["node_count"]).toBeUndefined();
  });
});

test("topology tags reach the AWS default tags, the NLB, the Google default labels and GKE resource labels", () => {
  const t = parseTopology({ tags: { team: "relay", "cost-center": "cc-42" } });
  const out = synthTopology(t).stacks;
  const expected = { "part-of": "cross-cloud-relay", site: "nyc", team: "relay", "cost-center": "cc-42" };
  expect(out["nyc-cluster"]!["provider"]["aws"][0]["default_tags"]).toEqual([{ tags: expected }]);
  const lb = findNamed(out["nyc-router"]!, "kubernetes_service_v1", "nyc-router");
  expect(
    lb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags"],
  ).toBe("cost-center=cc-42,part-of=cross-cloud-relay,site=nyc,team=relay");
  // The NLB type annotations stay.
  expect(lb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"]).toBe("nlb");
  const labels = { ...expected, site: "sfc" };
  const sfc = out["sfc-cluster"]!;
  expect(sfc["provider"]["google"][0]["default_labels"]).toEqual(labels);
  expect(only(sfc, "google_container_cluster")["resource_labels"]).toEqual(labels);
  expect(only(sfc, "google_container_node_pool")["node_config"]["resource_labels"]).toEqual(labels);
});

describe.each([
  ["nyc-router", "nyc-router"],
  ["nyc-site", "nyc-relay"],
  ["sfc-router", "sfc-router"],
  ["sfc-site", "sfc-relay"],
])("%s pods", (stack, name) => {
  const s = stacks[stack]!;
  const dep = findNamed(s, "kubernetes_deployment_v1", name);
  const selector = dep["spec"]["selector"]["match_labels"];

  test("spread across zones (preferred) and nodes (required, tainted nodes left out)", () => {
    expect(dep["spec"]["template"]["spec"]["topology_spread_constraint"]).toEqual([
      {
        max_skew: 1,
        topology_key: "topology.kubernetes.io/zone",
        when_unsatisfiable: "ScheduleAnyway",
        label_selector: [{ match_labels: selector }],
        match_label_keys: ["pod-template-hash"],
      },
      {
        max_skew: 1,
        topology_key: "kubernetes.io/hostname",
        when_unsatisfiable: "DoNotSchedule",
        node_taints_policy: "Honor",
        label_selector: [{ match_labels: selector }],
        match_label_keys: ["pod-template-hash"],
      },
    ]);
  });

  test("a PodDisruptionBudget that lets a drain evict one pod at a time", () => {
    const pdb = findNamed(s, "kubernetes_pod_disruption_budget_v1", name);
    expect(pdb["spec"]).toEqual({ max_unavailable: "1", selector: { match_labels: selector } });
  });
});

const stack = () => new TerraformStack(new App(), "s");

test.each<[string, () => unknown, RegExp]>([
  [
    "EKS API open to the internet without the opt-in",
    () =>
      new EksCluster(stack(), "c", {
        name: "c",
        region: "us-east-1",
        apiEndpoint: { publicCidrs: ["0.0.0.0/0"] },
      }),
    /EksCluster: apiEndpoint\.publicCidrs\[0\] "0\.0\.0\.0\/0" opens the Kubernetes API to the whole internet; .* set apiEndpoint\.publicFromAnywhere: true/,
  ],
  [
    "EKS API unreachable",
    () =>
      new EksCluster(stack(), "c", { name: "c", region: "us-east-1", apiEndpoint: { privateAccess: false } }),
    /EksCluster: apiEndpoint has privateAccess: false and no publicCidrs/,
  ],
  [
    "EKS disk size",
    () => new EksCluster(stack(), "c", { name: "c", region: "us-east-1", nodeGroup: { diskSize: 4 } }),
    /EksCluster: nodeGroup\.diskSize must be an integer number of GiB in 20\.\.16384 \(got 4\)/,
  ],
  [
    "EKS log type",
    () =>
      new EksCluster(stack(), "c", {
        name: "c",
        region: "us-east-1",
        controlPlaneLogs: ["kubelet" as "api"],
      }),
    /EksCluster: controlPlaneLogs: unknown log type "kubelet"/,
  ],
  [
    "EKS load balancer tag",
    () => new EksCluster(stack(), "c", { name: "c", region: "us-east-1", loadBalancerTags: { "a=b": "c" } }),
    /EksCluster: loadBalancerTags\.a=b: an AWS tag key has letters, digits/,
  ],
  [
    "GKE label",
    () => new GkeCluster(stack(), "c", { name: "c", location: "us-west1-a", labels: { Team: "x" } }),
    /GkeCluster: labels\.Team: "x": a GCP label key has 1\.\.63 lower-case letters/,
  ],
  [
    "GKE autoscaling",
    () =>
      new GkeCluster(stack(), "c", {
        name: "c",
        location: "us-west1-a",
        nodePool: { nodeCount: 5, autoscaling: { min: 1, max: 3 } },
      }),
    /GkeCluster: nodePool\.autoscaling needs min <= nodeCount <= max \(got min 1, nodeCount 5, max 3\)/,
  ],
  [
    "router replicas 2",
    () => new GossipRouter(stack(), "r", { site: "a", image: "relay:test", replicas: 2 }),
    /GossipRouter: replicas 2: a router keeps its registrations in memory and replicas do not share them, so two replicas behind one LoadBalancer split the bridge/,
  ],
])("%s is refused", (_, build, message) => {
  expect(build).toThrow(message);
  expect(build).toThrow(ValidationError);
});

test("EKS: publicCidrs with the opt-in, and an own KMS key", () => {
  const s = stack();
  const c = new EksCluster(s, "c", {
    name: "c",
    region: "us-east-1",
    apiEndpoint: { publicCidrs: ["0.0.0.0/0"], publicFromAnywhere: true },
    secretsEncryption: { kmsKeyArn: "arn:aws:kms:us-east-1:111122223333:key/abc" },
  });
  expect(c.secretsKey).toBeUndefined();
  expect(c.cluster.encryptionConfig.resourcesInput).toEqual(["secrets"]);
  expect(c.cluster.vpcConfig.publicAccessCidrsInput).toEqual(["0.0.0.0/0"]);
});
