// The router policy the IaC renders through the contract (`--allow-groups`): the bridge group, for
// the topology's sites only. Without it a client with any valid identity could join any group and
// list every member (the issue's GET_MBRS of all groups, and the hijack of nyc-1's address through
// a group of its own choosing). Mutual TLS keeps client auth on in the cloud topology.

import { App, TerraformStack } from "cdktf";
import { GossipRouter } from "../../constructs/gossip-router.js";
import { BRIDGE_GROUP, bridgePolicy } from "../../constructs/router-policy.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { parseRouterArgs } from "../../contract/router-args.js";
import { DEFAULT_BRIDGE_GROUP } from "../../runtime/relay/bridge-agent.js";
import { defaultTopology, parseTopology, type Topology } from "../../topology/index.js";
import { findNamed, synthTopology } from "./synth.js";

function routerArgs(topology: Topology) {
  const { stacks } = synthTopology(topology);
  return topology.sites.map((s) => {
    const dep = findNamed(stacks[`${s.name}-router`]!, "kubernetes_deployment_v1", `${s.name}-router`);
    return parseRouterArgs(dep["spec"]["template"]["spec"]["container"][0]["args"]);
  });
}

test("the constructs' bridge group is the runtime's (it should move to contract/)", () => {
  expect(BRIDGE_GROUP).toBe(DEFAULT_BRIDGE_GROUP);
});

test("seed: every router allows exactly the bridge for nyc and sfc, with mutual TLS and client auth", () => {
  for (const args of routerArgs(defaultTopology())) {
    expect(args.allowGroups).toEqual({ [DEFAULT_BRIDGE_GROUP]: ["nyc", "sfc"] });
    expect(args.tls).toMatchObject({ clientAuth: true });
    expect(args.tls?.ca).toBeDefined();
    expect(args.authTokens).toBeUndefined();
  }
});

test("4 sites: every router allows exactly the topology's four sites, in topology order", () => {
  const topology = parseTopology({
    sites: [
      { name: "nyc", cloud: "eks" },
      { name: "dub", cloud: "eks", region: "eu-west-1" },
      { name: "sfc", cloud: "gke" },
      { name: "lab", cloud: "existing", kubeconfig: { path: "k" }, egressCidrs: ["192.0.2.0/28"] },
    ],
  });
  const args = routerArgs(topology);
  expect(args).toHaveLength(4);
  for (const a of args) expect(a.allowGroups).toEqual({ bridge: ["nyc", "dub", "sfc", "lab"] });
});

test("open mode (tls: false, routerAuth: open) renders no policy: clients there have no identity", () => {
  for (const a of routerArgs(parseTopology({ tls: false, routerAuth: "open" }))) {
    expect(a.allowGroups).toBeUndefined();
    expect(a.authTokens).toBeUndefined();
    expect(a.tls).toBeUndefined();
  }
});

describe("GossipRouter", () => {
  const stack = () => new TerraformStack(new App(), "s");
  const image = "relay:test";

  test("defaults: open without a policy; with TLS, client auth and the bridge for its own site", () => {
    expect(new GossipRouter(stack(), "r", { site: "a", image }).allowGroups).toBe("any");
    const r = new GossipRouter(stack(), "r", { site: "a", image, auth: { kind: "tls", secretName: "t" } });
    expect(parseRouterArgs(r.args)).toMatchObject({
      tls: { clientAuth: true },
      allowGroups: bridgePolicy(["a"]),
    });
  });

  test.each<[string, () => unknown, RegExp]>([
    [
      "a policy in open mode",
      () => new GossipRouter(stack(), "r", { site: "a", image, allowGroups: bridgePolicy(["a"]) }),
      /GossipRouter: allowGroups needs authenticated clients/,
    ],
    [
      "a site name the router would refuse",
      () =>
        new GossipRouter(stack(), "r", {
          site: "a",
          image,
          auth: { kind: "tls", secretName: "t" },
          allowGroups: { bridge: ["Not A Site"] },
        }),
      /GossipRouter: allowGroups: --allow-groups: "Not A Site" in group "bridge" is not a site name/,
    ],
    [
      "an empty policy",
      () =>
        new GossipRouter(stack(), "r", {
          site: "a",
          image,
          auth: { kind: "tokens", secretName: "t" },
          allowGroups: {},
        }),
      /GossipRouter: allowGroups: --allow-groups: no group=site entry/,
    ],
  ])("refuses %s", (_, build, message) => {
    expect(build).toThrow(message);
    expect(build).toThrow(ValidationError);
  });
});
