// The topology: seed values, user files (JSON/YAML), and one message per mistake, all at once.

import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  cidrProblem,
  defaultTopology,
  parseTopology,
  readTopologyFile,
  resolveTopology,
  TopologyError,
} from "../../topology/index.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "relay-topology-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The problems parseTopology reports for `doc` (fails the test if it accepts it). */
function problemsOf(doc: unknown): readonly string[] {
  try {
    parseTopology(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(TopologyError);
    expect((err as TopologyError).code).toBe("INVALID_TOPOLOGY");
    return (err as TopologyError).problems;
  }
  throw new Error("parseTopology accepted an invalid topology");
}

const eks = { name: "a", cloud: "eks" };
const gke = { name: "b", cloud: "gke" };

test("the seed: nyc on EKS, sfc on GKE", () => {
  const t = defaultTopology();
  expect(t.sites.map((s) => [s.name, s.cloud, s.relayReplicas])).toEqual([
    ["nyc", "eks", 5],
    ["sfc", "gke", 3],
  ]);
  const nyc = t.sites[0]!;
  expect(nyc.cloud === "eks" && nyc.nodeGroup).toEqual({
    name: "nyc-nodegroup",
    instanceType: "t3.small",
    desired: 2,
    min: 1,
    max: 4,
    amiType: "AL2023_x86_64_STANDARD",
    diskSize: 20,
  });
  expect(nyc.cloud === "eks" && nyc.region).toBe("us-east-1");
  const sfc = t.sites[1]!;
  expect(sfc.cloud === "gke" && sfc.nodePool.nodeCount).toBe(2);
  expect(t.router).toMatchObject({ port: 12001, httpPort: 9000, replicas: 1 });
  expect(t.tls).toBe(true);
  expect(t.routerAuth).toBe("tls");
  // Routers admit the sites' egress addresses unless the topology lists its own ranges.
  expect(t.loadBalancerSourceRanges).toEqual({ egress: true, cidrs: [] });
  expect(parseTopology({ tls: false }).routerAuth).toBe("tokens");
  expect(t.backend).toEqual({ kind: "local" });
  expect(parseTopology({})).toEqual(t);
});

test.each([
  [
    "duplicate site names",
    { sites: [eks, { ...gke, name: "a" }] },
    'sites[1].name: duplicate site name "a" (also sites[0].name)',
  ],
  [
    "a name that is not DNS-1123",
    { sites: [{ ...eks, name: "New_York" }, gke] },
    'sites[0].name: "New_York" is not allowed: a DNS-1123 label',
  ],
  [
    "a name that is too long",
    { sites: [{ ...eks, name: "a".repeat(21) }, gke] },
    "is longer than 20 characters",
  ],
  ["a missing name", { sites: [{ cloud: "eks" }, gke] }, "sites[0].name: is required"],
  [
    "min > desired",
    { sites: [{ ...eks, nodeGroup: { min: 3, desired: 2 } }, gke] },
    "sites[0].nodeGroup.min: 3 is greater than desired (2)",
  ],
  [
    "desired > max",
    { sites: [{ ...eks, nodeGroup: { desired: 5, max: 4 } }, gke] },
    "sites[0].nodeGroup.desired: 5 is greater than max (4)",
  ],
  [
    "relay replicas < 1",
    { sites: [{ ...eks, relayReplicas: 0 }, gke] },
    "sites[0].relayReplicas: 0 is outside 1..100",
  ],
  ["router replicas < 1", { router: { replicas: 0 } }, "router.replicas: 0 is outside 1..100"],
  [
    "router replicas > 1 (they do not share registrations)",
    { router: { replicas: 2 } },
    "router.replicas: 2 is refused: a router keeps its registrations in memory and replicas do not share them, so two replicas behind one LoadBalancer split the bridge",
  ],
  [
    "an EKS API open to the internet without the opt-in",
    { sites: [{ ...eks, apiEndpoint: { publicCidrs: ["0.0.0.0/0"] } }, gke] },
    "sites[0].apiEndpoint.publicCidrs[0]: \"0.0.0.0/0\" opens the Kubernetes API to the whole internet; list your operators' and CI's addresses, or set sites[0].apiEndpoint.publicFromAnywhere: true",
  ],
  [
    "an EKS API nobody can reach",
    { sites: [{ ...eks, apiEndpoint: { privateAccess: false } }, gke] },
    "sites[0].apiEndpoint: privateAccess: false with no publicCidrs leaves no way to reach the Kubernetes API",
  ],
  [
    "an unknown control-plane log type",
    { sites: [{ ...eks, controlPlaneLogs: ["api", "kubelet"] }, gke] },
    'sites[0].controlPlaneLogs[1]: unknown log type "kubelet"; allowed: api, audit, authenticator, controllerManager, scheduler',
  ],
  [
    "an unknown AMI type",
    { sites: [{ ...eks, nodeGroup: { amiType: "AL2_x86_64" } }, gke] },
    'sites[0].nodeGroup.amiType: "AL2_x86_64" is not allowed; allowed: AL2023_x86_64_STANDARD',
  ],
  [
    "a node disk too small",
    { sites: [{ ...eks, nodeGroup: { diskSize: 8 } }, gke] },
    "sites[0].nodeGroup.diskSize: 8 is outside 20..16384",
  ],
  [
    "GKE autoscaling bounds around nodeCount",
    { sites: [eks, { ...gke, nodePool: { nodeCount: 2, autoscaling: { min: 3, max: 5 } } }] },
    "sites[1].nodePool.autoscaling.min: 3 is greater than nodeCount (2)",
  ],
  [
    "a tag that is not a GCP label",
    { tags: { Team: "relay" } },
    'tags.Team: "relay": a GCP label key has 1..63 lower-case letters',
  ],
  [
    "a tag value that is not a GCP label value",
    { tags: { team: "Relay Ops" } },
    'tags.team: "Relay Ops": a GCP label value has 0..63 lower-case letters, digits',
  ],
  ["a tag that is not a string", { tags: { cost: 12 } }, "tags.cost: must be a string (quote numbers"],
  ["a reserved tag", { tags: { site: "x" } }, "tags.site: is set by the program on every resource"],
  [
    "an AWS-reserved tag key",
    { sites: [eks, { ...eks, name: "b" }], tags: { "aws:owner": "me" } },
    'tags.aws:owner: "me": AWS reserves tag keys starting with aws:',
  ],
  [
    "a fractional count",
    { sites: [eks, { ...gke, nodePool: { nodeCount: 1.5 } }] },
    "sites[1].nodePool.nodeCount: must be an integer in 1..100, got number 1.5",
  ],
  [
    "an unknown cloud",
    { sites: [{ ...eks, cloud: "azure" }, gke] },
    'sites[0].cloud: unknown cloud "azure"; allowed: eks, gke, existing',
  ],
  [
    "a missing cloud",
    { sites: [{ name: "a" }, gke] },
    "sites[0].cloud: is required; allowed: eks, gke, existing",
  ],
  [
    "a bad CIDR",
    { loadBalancerSourceRanges: ["10.0.0.0/33"] },
    'loadBalancerSourceRanges[0]: "10.0.0.0/33" is not a CIDR',
  ],
  [
    "host bits set",
    { loadBalancerSourceRanges: ["192.168.1.1/24"] },
    "the network address of /24 is 192.168.1.0/24",
  ],
  [
    "an empty source range list",
    { loadBalancerSourceRanges: [] },
    "loadBalancerSourceRanges: must be a non-empty list",
  ],
  ["one site", { sites: [eks] }, "sites: needs at least 2 sites, got 1"],
  ["sites not a list", { sites: { a: 1 } }, "sites: must be a list of sites, got a mapping"],
  [
    "existing without kubeconfig",
    { sites: [eks, { name: "c", cloud: "existing" }] },
    "sites[1].kubeconfig: is required for cloud: existing",
  ],
  [
    "an AWS region typo",
    { sites: [{ ...eks, region: "us-east1" }, gke] },
    'sites[0].region: "us-east1" is not allowed: an AWS region',
  ],
  ["router port = http port", { router: { port: 9000 } }, "router.httpPort: 9000 is also router.port"],
  ["a port out of range", { router: { port: 70000 } }, "router.port: 70000 is outside 1..65535"],
  [
    "an unknown field",
    { sites: [{ ...eks, nodegroup: {} }, gke] },
    "sites[0].nodegroup: unknown field; allowed:",
  ],
  [
    "an unknown backend",
    { backend: { kind: "azurerm" } },
    'backend.kind: unknown backend "azurerm"; allowed: local, s3, gcs',
  ],
  ["s3 without bucket", { backend: { kind: "s3", region: "us-east-1" } }, "backend.bucket: is required"],
  ["tls not a boolean", { tls: "yes" }, 'tls: must be true or false, got "yes"'],
  [
    "an image with spaces",
    { relayImage: "my image" },
    'relayImage: "my image" is not allowed: an image reference',
  ],
  ["a document that is not a mapping", ["a"], "(root): must be a mapping (object), got a list"],
  [
    "token mode beside TLS",
    { routerAuth: "tokens" },
    'routerAuth: "tokens" is for tls: false; with tls: true clients authenticate by their certificate',
  ],
  ["tls mode without TLS", { tls: false, routerAuth: "tls" }, 'routerAuth: "tls" needs tls: true'],
  ["an unknown router auth", { tls: false, routerAuth: "none" }, 'routerAuth: unknown mode "none"'],
  [
    "a renewal window as long as the lifetime",
    { certificates: { validityHours: 720, earlyRenewalHours: 720 } },
    "certificates.earlyRenewalHours: 720 must be less than certificates.validityHours (720)",
  ],
  [
    "an unknown certificates field",
    { certificates: { validity: 1 } },
    "certificates.validity: unknown field; allowed: validityHours, earlyRenewalHours",
  ],
])("%s is rejected with a message naming the field", (_, doc, message) => {
  expect(problemsOf(doc)).toEqual(expect.arrayContaining([expect.stringContaining(message)]));
});

test("every mistake is reported at once, not only the first", () => {
  const problems = problemsOf({
    sites: [
      { name: "NYC", cloud: "eks", nodeGroup: { min: 5, desired: 2 } },
      { name: "b", cloud: "moon" },
      { name: "b", cloud: "gke", relayReplicas: -1 },
    ],
    loadBalancerSourceRanges: ["nope"],
    router: { replicas: 0 },
  });
  expect(problems).toHaveLength(7);
  expect(problems.map((p) => p.split(":")[0])).toEqual(
    expect.arrayContaining([
      "sites[0].name",
      "sites[0].nodeGroup.min",
      "sites[1].cloud",
      "sites[2].name",
      "sites[2].relayReplicas",
      "loadBalancerSourceRanges[0]",
      "router.replicas",
    ]),
  );
});

test("CIDRs: IPv4 and IPv6 accepted, garbage rejected", () => {
  for (const ok of ["0.0.0.0/0", "203.0.113.0/24", "10.1.2.3/32", "2001:db8::/32", "::/0"]) {
    expect(cidrProblem(ok)).toBeUndefined();
  }
  for (const bad of [
    "10.0.0.0",
    "10.0.0/8",
    "256.0.0.0/8",
    "10.0.0.0/-1",
    "1:2:3:4:5:6:7:8:9/64",
    "a::b::c/64",
    "",
  ]) {
    expect(cidrProblem(bad)).toBeDefined();
  }
});

test("the example file and a JSON file load; YAML errors and missing files are TopologyErrors", () => {
  const example = readTopologyFile("topology/topology.example.yaml");
  expect(example.sites.map((s) => s.cloud)).toEqual(["eks", "gke", "existing"]);
  // The example documents the defaults it shows.
  expect(example.loadBalancerSourceRanges).toEqual(defaultTopology().loadBalancerSourceRanges);
  expect(example.certificates).toEqual(defaultTopology().certificates);
  const lab = example.sites[2]!;
  expect(lab.cloud === "existing" && lab.egressCidrs).toEqual(["198.51.100.7/32"]);
  const json = join(dir, "t.json");
  writeFileSync(json, JSON.stringify({ sites: [eks, gke], tls: false }));
  expect(readTopologyFile(json).tls).toBe(false);
  const broken = join(dir, "broken.yaml");
  writeFileSync(broken, "sites: [\n  - name: a\n");
  expect(() => readTopologyFile(broken)).toThrow(/not valid JSON\/YAML/);
  const dup = join(dir, "dup.yaml");
  writeFileSync(dup, "tls: true\ntls: false\n");
  expect(() => readTopologyFile(dup)).toThrow(TopologyError);
  expect(() => readTopologyFile(join(dir, "missing.yaml"))).toThrow(/cannot read the file/);
});

test("RELAY_TOPOLOGY wins over the cdktf context; neither gives the seed", () => {
  const json = join(dir, "env.json");
  writeFileSync(json, JSON.stringify({ sites: [eks, gke] }));
  expect(resolveTopology({ RELAY_TOPOLOGY: json }, "topology/topology.example.yaml").sites).toHaveLength(2);
  expect(resolveTopology({}, "topology/topology.example.yaml").sites).toHaveLength(3);
  expect(resolveTopology({}, undefined)).toEqual(defaultTopology());
});

describe("app/main.ts as cdktf runs it", () => {
  const tsx = join("node_modules", ".bin", "tsx");

  test("a bad file: exit 1, every problem on stderr, nothing synthesized", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "sites:\n  - {name: a, cloud: eks}\n  - {name: a, cloud: aws}\n");
    const out = join(dir, "out-bad");
    const err = await run(tsx, ["app/main.ts"], {
      env: { ...process.env, RELAY_TOPOLOGY: bad, CDKTF_OUTDIR: out },
      timeout: 20_000,
    }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain("invalid (2 problems)");
    expect(err?.stderr).toContain("sites[1].name: duplicate site name");
    expect(err?.stderr).toContain('sites[1].cloud: unknown cloud "aws"');
    const synthesized = (() => {
      try {
        return readdirSync(join(out, "stacks"));
      } catch {
        return [];
      }
    })();
    expect(synthesized).toEqual([]);
  });

  test("the example file synthesizes one directory per stack", async () => {
    const out = join(dir, "out-example");
    await run(tsx, ["app/main.ts"], {
      env: { ...process.env, RELAY_TOPOLOGY: "topology/topology.example.yaml", CDKTF_OUTDIR: out },
      timeout: 20_000,
    });
    expect(readdirSync(join(out, "stacks")).sort()).toEqual([
      "lab-router",
      "lab-site",
      "nyc-cluster",
      "nyc-router",
      "nyc-site",
      "pki",
      "sfc-cluster",
      "sfc-router",
      "sfc-site",
    ]);
  });
});

test("hardening fields: the defaults, and each opt-out read back", () => {
  const seed = defaultTopology();
  const nyc = seed.sites[0]!;
  expect(nyc.cloud === "eks" && nyc.apiEndpoint).toEqual({
    privateAccess: true,
    publicCidrs: [],
    publicFromAnywhere: false,
  });
  expect(nyc.cloud === "eks" && nyc.controlPlaneLogs).toEqual([
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
  ]);
  expect(nyc.cloud === "eks" && nyc.secretsEncryption).toBe(true);
  expect(seed.tags).toEqual({});
  const t = parseTopology({
    sites: [
      {
        ...eks,
        apiEndpoint: { publicCidrs: ["0.0.0.0/0"], publicFromAnywhere: true },
        controlPlaneLogs: [],
        secretsEncryption: false,
        nodeGroup: { amiType: "BOTTLEROCKET_ARM_64", diskSize: 50, instanceType: "t4g.small" },
      },
      { ...gke, nodePool: { nodeCount: 2, autoscaling: { min: 1, max: 5 } } },
    ],
    tags: { team: "relay", "cost-center": "cc-42" },
  });
  const [a, b] = t.sites;
  expect(a!.cloud === "eks" && a!.apiEndpoint.publicCidrs).toEqual(["0.0.0.0/0"]);
  expect(a!.cloud === "eks" && a!.controlPlaneLogs).toEqual([]);
  expect(a!.cloud === "eks" && a!.secretsEncryption).toBe(false);
  expect(a!.cloud === "eks" && a!.nodeGroup).toMatchObject({ amiType: "BOTTLEROCKET_ARM_64", diskSize: 50 });
  expect(b!.cloud === "gke" && b!.nodePool.autoscaling).toEqual({ min: 1, max: 5 });
  expect(t.tags).toEqual({ team: "relay", "cost-center": "cc-42" });
  // Only AWS rules when no site is on GKE.
  expect(parseTopology({ sites: [eks, { ...eks, name: "b" }], tags: { Team: "Relay Ops" } }).tags).toEqual({
    Team: "Relay Ops",
  });
});
