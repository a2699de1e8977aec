// Policy checks as tests: the seed topology and a topology with every hardening opt-out are
// synthesized and checked by the rule set of test/infra/policy-rules.ts. The seed must pass every
// rule, or carry a dated waiver; the opt-outs must make the rules fire.

import { TerraformStack, Testing } from "cdktf";
import { GkeCluster } from "../../clouds/gke/cluster.js";
import { defaultTopology, parseTopology } from "../../topology/index.js";
import { applyWaivers, evaluate, type Finding, RULES, WAIVERS } from "./policy-rules.js";
import { synthTopology, type TfJson } from "./synth.js";

const seed = synthTopology(defaultTopology()).stacks;
const ids = (findings: readonly Finding[]) => [...new Set(findings.map((f) => f.id))].sort();

test("rules have unique ids and descriptions; waivers are documented and dated", () => {
  expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  for (const r of RULES) expect(r.description.length).toBeGreaterThan(10);
  for (const w of WAIVERS) {
    expect(RULES.map((r) => r.id)).toContain(w.id);
    expect(w.reason.length).toBeGreaterThan(40);
    expect(w.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(Number.isNaN(Date.parse(w.date))).toBe(false);
  }
});

test("the seed topology passes every rule, except where a dated waiver says why", () => {
  const { unwaived, waived, unused } = applyWaivers(evaluate(seed), WAIVERS);
  expect(unwaived).toEqual([]);
  // Every waiver is still needed; a stale one must be removed.
  expect(unused).toEqual([]);
  expect(waived.map((f) => f.resource)).toEqual([
    expect.stringMatching(/^sfc-cluster\/google_container_cluster\.cluster_[0-9A-F]{8}$/),
  ]);
});

test("without its waiver the seed fails exactly the waived rule (the rule fires)", () => {
  expect(ids(evaluate(seed))).toEqual(["google-gke-enable-master-networks"]);
});

test("every rule looks at something in the seed (no rule passes vacuously)", () => {
  for (const rule of RULES) {
    const seen = Object.values(seed).some((s) =>
      rule.types.some((t) => Object.keys(s["resource"]?.[t] ?? {}).length > 0),
    );
    expect({ rule: rule.id, seen }).toEqual({ rule: rule.id, seen: true });
  }
});

test("the EKS opt-outs (public API from anywhere, no logs, no Secrets encryption) make the EKS rules fire", () => {
  const { stacks } = synthTopology(
    parseTopology({
      sites: [
        {
          name: "nyc",
          cloud: "eks",
          apiEndpoint: { publicCidrs: ["0.0.0.0/0"], publicFromAnywhere: true },
          controlPlaneLogs: [],
          secretsEncryption: false,
        },
        { name: "sfc", cloud: "gke" },
      ],
    }),
  );
  const { unwaived } = applyWaivers(evaluate(stacks), WAIVERS);
  expect(ids(unwaived)).toEqual(
    [
      "AVD-AWS-0038",
      "AVD-AWS-0039",
      "AVD-AWS-0040",
      "AVD-AWS-0041",
      "CKV_AWS_37",
      "CKV_AWS_38",
      "CKV_AWS_39",
      "CKV_AWS_58",
    ].sort(),
  );
  const resources = [...new Set(unwaived.map((f) => f.resource))];
  expect(resources).toEqual([expect.stringMatching(/^nyc-cluster\/aws_eks_cluster\.cluster_[0-9A-F]{8}$/)]);
  const byId = new Map(unwaived.map((f) => [f.id, f.message]));
  expect(byId.get("CKV_AWS_38")).toBe("public endpoint admits 0.0.0.0/0");
  expect(byId.get("CKV_AWS_37")).toContain("api, audit, authenticator, controllerManager, scheduler");
});

test("a public endpoint restricted to listed CIDRs trips only the 'public endpoint disabled' rules", () => {
  const { stacks } = synthTopology(
    parseTopology({
      sites: [
        { name: "nyc", cloud: "eks", apiEndpoint: { publicCidrs: ["203.0.113.0/24"] } },
        { name: "sfc", cloud: "gke" },
      ],
    }),
  );
  const { unwaived } = applyWaivers(evaluate(stacks), WAIVERS);
  expect(ids(unwaived)).toEqual(["AVD-AWS-0040", "CKV_AWS_39"]);
});

test("GKE without Workload Identity, on the Compute Engine default account, makes the GKE rules fire", () => {
  const app = Testing.app();
  const stack = new TerraformStack(app, "gke-cluster");
  new GkeCluster(stack, "c", {
    name: "g",
    location: "us-west1-a",
    project: "p1",
    workloadIdentity: false,
    nodeServiceAccount: "123-compute@developer.gserviceaccount.com",
  });
  const json: TfJson = JSON.parse(Testing.synth(stack));
  const { unwaived } = applyWaivers(evaluate({ "gke-cluster": json }), WAIVERS);
  expect(ids(unwaived)).toEqual(
    [
      "RELAY-GKE-WORKLOAD-IDENTITY",
      "google-gke-node-metadata-security",
      "google-gke-use-service-account",
    ].sort(),
  );
});

test("a waiver covers only its rule and resource pattern", () => {
  const findings: Finding[] = [
    { id: "CKV_AWS_39", resource: "nyc-cluster/aws_eks_cluster.c", message: "public endpoint enabled" },
    { id: "CKV_AWS_39", resource: "lab-cluster/aws_eks_cluster.c", message: "public endpoint enabled" },
  ];
  const waiver = { id: "CKV_AWS_39", resource: "nyc-*/aws_eks_cluster.*", reason: "r", date: "2026-12-02" };
  const other = { id: "CKV_AWS_38", resource: "*", reason: "r", date: "2026-12-02" };
  const { unwaived, waived, unused } = applyWaivers(findings, [waiver, other]);
  expect(waived.map((f) => f.resource)).toEqual(["nyc-cluster/aws_eks_cluster.c"]);
  expect(unwaived.map((f) => f.resource)).toEqual(["lab-cluster/aws_eks_cluster.c"]);
  expect(unused).toEqual([other]);
});
