// The first line of defence: each cluster stack outputs its egress addresses (EKS: the NAT
// gateway's Elastic IP; GKE: the Cloud NAT's reserved addresses, with private nodes so that all
// traffic leaves through them; existing: the topology's CIDRs) and every router's
// loadBalancerSourceRanges admits exactly those, read by cross-stack reference. Without it the
// routers answered anyone on the internet (0.0.0.0/0), which is how every attack in the issue
// reached them in the first place.

import { App, TerraformStack } from "cdktf";
import { GkeCluster } from "../../clouds/gke/cluster.js";
import { GossipRouter } from "../../constructs/gossip-router.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { buildRelayStacks } from "../../stacks/relay-app.js";
import { defaultTopology, parseTopology, type Topology, TopologyError } from "../../topology/index.js";
import { findNamed, remoteStateProducer, resourcesOf, synthTopology, type TfJson } from "./synth.js";

const REMOTE = /^\$\{data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)\}\/32$/;

/** The LoadBalancer source ranges of `site`'s router. */
function rangesOf(stacks: Record<string, TfJson>, site: string): string[] {
  return findNamed(stacks[`${site}-router`]!, "kubernetes_service_v1", `${site}-router`)["spec"][
    "load_balancer_source_ranges"
  ];
}

/** Follows `${remote state}/32` into the producing stack: [producer, the producer's expression]. */
function resolve(stacks: Record<string, TfJson>, consumer: string, range: string): [string, string] {
  const m = REMOTE.exec(range);
  if (!m) throw new Error(`${consumer}: ${range} is not a remote-state reference + /32`);
  const producer = remoteStateProducer(stacks[consumer]!, m[1]!)!;
  return [producer, stacks[producer]!["output"][m[2]!]["value"]];
}

const seed = synthTopology(defaultTopology());

test("nyc-cluster: egress_cidrs is the NAT gateway's Elastic IP, the private subnets' only way out", () => {
  const s = seed.stacks["nyc-cluster"]!;
  const [[eipId]] = resourcesOf(s, "aws_eip") as [[string, TfJson]];
  expect(s["output"]["egress_cidrs"]["value"]).toEqual([`\${aws_eip.${eipId}.public_ip}/32`]);
  const [[natId, nat]] = resourcesOf(s, "aws_nat_gateway") as [[string, TfJson]];
  expect(nat["allocation_id"]).toBe(`\${aws_eip.${eipId}.id}`);
  // The node group's subnets route 0.0.0.0/0 to that NAT gateway.
  const [, ng] = resourcesOf(s, "aws_eks_node_group")[0]!;
  const privateTables = resourcesOf(s, "aws_route_table").filter(([, t]) =>
    t["route"].some((r: TfJson) => r["nat_gateway_id"] === `\${aws_nat_gateway.${natId}.id}`),
  );
  expect(privateTables).toHaveLength(1);
  const [tableId] = privateTables[0]!;
  for (const subnet of ng["subnet_ids"] as string[]) {
    const assoc = resourcesOf(s, "aws_route_table_association").find(([, a]) => a["subnet_id"] === subnet);
    expect(assoc?.[1]["route_table_id"]).toBe(`\${aws_route_table.${tableId}.id}`);
  }
});

test("sfc-cluster: private nodes behind Cloud NAT on a reserved address; egress_cidrs is that address", () => {
  const s = seed.stacks["sfc-cluster"]!;
  const addresses = resourcesOf(s, "google_compute_address");
  expect(addresses).toHaveLength(1);
  const [addrId, addr] = addresses[0]!;
  expect(addr).toMatchObject({ address_type: "EXTERNAL", region: "us-west1" });
  const [, nat] = resourcesOf(s, "google_compute_router_nat")[0]!;
  expect(nat).toMatchObject({
    nat_ip_allocate_option: "MANUAL_ONLY",
    source_subnetwork_ip_ranges_to_nat: "ALL_SUBNETWORKS_ALL_IP_RANGES",
    nat_ips: [`\${google_compute_address.${addrId}.self_link}`],
  });
  const [routerId, router] = resourcesOf(s, "google_compute_router")[0]!;
  expect(nat["router"]).toBe(`\${google_compute_router.${routerId}.name}`);
  const [netId] = resourcesOf(s, "google_compute_network")[0]!;
  expect(router["network"]).toBe(`\${google_compute_network.${netId}.id}`);
  const [, pool] = resourcesOf(s, "google_container_node_pool")[0]!;
  expect(pool["network_config"]).toEqual({ enable_private_nodes: true });
  expect(s["output"]["egress_cidrs"]["value"]).toEqual([`\${google_compute_address.${addrId}.address}/32`]);
});

test("seed: every router admits both clusters' egress addresses by remote-state reference, no literal public range", () => {
  for (const site of ["nyc", "sfc"]) {
    const ranges = rangesOf(seed.stacks, site);
    const remote = ranges.filter((r) => REMOTE.test(r)).map((r) => resolve(seed.stacks, `${site}-router`, r));
    expect(remote.map(([p]) => p).sort()).toEqual(["nyc-cluster", "sfc-cluster"]);
    const byProducer = Object.fromEntries(remote);
    expect(byProducer["nyc-cluster"]).toMatch(/^\$\{aws_eip\.[\w-]+\.public_ip\}$/);
    expect(byProducer["sfc-cluster"]).toMatch(/^\$\{google_compute_address\.[\w-]+\.address\}$/);
    // Besides the references, only the GKE router's own node and pod ranges (private addresses
    // its pods keep when Dataplane V2 answers its LoadBalancer IP inside the cluster).
    expect(ranges.filter((r) => !REMOTE.test(r))).toEqual(
      site === "sfc" ? ["10.10.0.0/20", "10.20.0.0/16"] : [],
    );
    expect(seed.dependencies[`${site}-router`]).toEqual(
      expect.arrayContaining(["nyc-cluster", "sfc-cluster"]),
    );
    const out = seed.stacks[`${site}-router`]!["output"]["load_balancer_source_ranges"]["value"];
    expect(out).toEqual(ranges);
  }
});

const threeSites = (extra: Record<string, unknown> = {}) =>
  parseTopology({
    sites: [
      { name: "nyc", cloud: "eks" },
      { name: "sfc", cloud: "gke" },
      {
        name: "lab",
        cloud: "existing",
        kubeconfig: { path: "~/.kube/config" },
        egressCidrs: ["198.51.100.7/32", "203.0.113.0/28"],
      },
    ],
    ...extra,
  });

test("an existing site's CIDRs come from the topology and reach every router; still no cycle", () => {
  const { stacks, dependencies } = synthTopology(threeSites());
  for (const site of ["nyc", "sfc", "lab"]) {
    const ranges = rangesOf(stacks, site);
    expect(ranges).toEqual(expect.arrayContaining(["198.51.100.7/32", "203.0.113.0/28"]));
    expect(ranges.filter((r) => REMOTE.test(r))).toHaveLength(2);
  }
  expect([...dependencies["lab-router"]!].sort()).toEqual(["nyc-cluster", "pki", "sfc-cluster"]);
  expect(stacks["lab-cluster"]).toBeUndefined();
});

test("literal CIDRs beside `egress` are added to the egress addresses", () => {
  const { stacks } = synthTopology(threeSites({ loadBalancerSourceRanges: ["egress", "192.0.2.0/24"] }));
  const ranges = rangesOf(stacks, "nyc");
  expect(ranges[0]).toBe("192.0.2.0/24");
  expect(ranges.filter((r) => REMOTE.test(r))).toHaveLength(2);
});

test("opt-out: an explicit list without egress is used as is, and routers no longer read other clusters", () => {
  const topology = parseTopology({ loadBalancerSourceRanges: ["0.0.0.0/0"] });
  expect(topology.loadBalancerSourceRanges).toEqual({ egress: false, cidrs: ["0.0.0.0/0"] });
  const { stacks, dependencies } = synthTopology(topology);
  for (const site of ["nyc", "sfc"]) {
    expect(rangesOf(stacks, site)).toEqual(["0.0.0.0/0"]);
    expect([...dependencies[`${site}-router`]!].sort()).toEqual([`${site}-cluster`, "pki"].sort());
  }
  // Then an existing site needs no egressCidrs.
  expect(() =>
    parseTopology({
      sites: [
        { name: "nyc", cloud: "eks" },
        { name: "lab", cloud: "existing", kubeconfig: { path: "k" } },
      ],
      loadBalancerSourceRanges: ["203.0.113.0/24"],
    }),
  ).not.toThrow();
});

test("natAddressCount: 2 reserves two addresses, both in egress_cidrs and the NAT", () => {
  const stack = new TerraformStack(new App(), "s");
  const c = new GkeCluster(stack, "c", { name: "c", location: "europe-west4", natAddressCount: 2 });
  expect(c.egressCidrs).toHaveLength(2);
  expect(c.natAddresses).toHaveLength(2);
  expect(c.inClusterCidrs).toEqual(["10.10.0.0/20", "10.20.0.0/16"]);
});

function problemsOf(doc: unknown): readonly string[] {
  try {
    parseTopology(doc);
  } catch (err) {
    if (err instanceof TopologyError) return err.problems;
    throw err;
  }
  throw new Error("parsed");
}

test.each<[string, unknown, string]>([
  [
    "an existing site without egressCidrs while egress applies",
    {
      sites: [
        { name: "nyc", cloud: "eks" },
        { name: "lab", cloud: "existing", kubeconfig: { path: "k" } },
      ],
    },
    'sites[1].egressCidrs: is required while loadBalancerSourceRanges includes "egress" (the default)',
  ],
  [
    "a bad egress CIDR",
    {
      sites: [
        { name: "nyc", cloud: "eks" },
        { name: "lab", cloud: "existing", kubeconfig: { path: "k" }, egressCidrs: ["198.51.100.7"] },
      ],
    },
    'sites[1].egressCidrs[0]: "198.51.100.7" is not a CIDR',
  ],
  [
    "an empty egress list",
    {
      sites: [
        { name: "nyc", cloud: "eks" },
        { name: "lab", cloud: "existing", kubeconfig: { path: "k" }, egressCidrs: [] },
      ],
    },
    "sites[1].egressCidrs: must be a non-empty list of CIDRs",
  ],
  [
    "a misspelt egress",
    { loadBalancerSourceRanges: ["egres"] },
    'loadBalancerSourceRanges[0]: "egres" is not a CIDR',
  ],
])("topology: %s is named by its field", (_, doc, message) => {
  const problems = problemsOf(doc);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toContain(message);
});

test("constructs: empty or bad source ranges, a NAT without addresses, a programmatic existing site without CIDRs", () => {
  const stack = () => new TerraformStack(new App(), "s");
  const cases: [() => unknown, RegExp][] = [
    [
      () => new GossipRouter(stack(), "r", { site: "a", image: "i", loadBalancerSourceRanges: [] }),
      /GossipRouter: loadBalancerSourceRanges is empty/,
    ],
    [
      () =>
        new GossipRouter(stack(), "r", { site: "a", image: "i", loadBalancerSourceRanges: ["10.0.0.1/8"] }),
      /GossipRouter: loadBalancerSourceRanges\[0\]: "10.0.0.1\/8" has host bits set/,
    ],
    [
      () => new GkeCluster(stack(), "c", { name: "c", location: "us-west1-a", natAddressCount: 0 }),
      /GkeCluster: natAddressCount must be an integer in 1\.\.16/,
    ],
  ];
  for (const [build, message] of cases) {
    expect(build).toThrow(message);
    expect(build).toThrow(ValidationError);
  }
  const base = threeSites();
  const withoutCidrs: Topology = {
    ...base,
    sites: base.sites.map((s) => (s.cloud === "existing" ? { ...s, egressCidrs: undefined } : s)),
  };
  expect(() => buildRelayStacks(new App(), withoutCidrs)).toThrow(/site lab: no egress addresses/);
});
