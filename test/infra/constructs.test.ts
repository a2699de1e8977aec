// Constructs check their props when built, with messages naming the prop.

import { App, TerraformStack } from "cdktf";
import { EksCluster } from "../../clouds/eks/cluster.js";
import { ExistingCluster } from "../../clouds/existing/cluster.js";
import { GkeCluster, regionOf } from "../../clouds/gke/cluster.js";
import { GossipRouter } from "../../constructs/gossip-router.js";
import { RelayPki } from "../../constructs/relay-pki.js";
import { RelaySite } from "../../constructs/relay-site.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { CodedError } from "../../contract/errors.js";

function thrown(build: () => unknown): ValidationError {
  try {
    build();
  } catch (err) {
    return err as ValidationError;
  }
  throw new Error("did not throw");
}

const stack = () => new TerraformStack(new App(), "s");
const image = "relay:test";

test.each<[string, () => unknown, RegExp]>([
  [
    "router port",
    () => new GossipRouter(stack(), "r", { site: "a", image, port: 0 }),
    /GossipRouter: port must be an integer in 1\.\.65535/,
  ],
  [
    "router ports equal",
    () => new GossipRouter(stack(), "r", { site: "a", image, port: 9000 }),
    /port and httpPort are both 9000/,
  ],
  [
    "router replicas",
    () => new GossipRouter(stack(), "r", { site: "a", image, replicas: 0 }),
    /GossipRouter: replicas must be an integer >= 1/,
  ],
  [
    "router site name",
    () => new GossipRouter(stack(), "r", { site: "A_b", image }),
    /GossipRouter: site "A_b" must be a DNS-1123 label/,
  ],
  [
    "site replicas",
    () => new RelaySite(stack(), "s", { site: "a", image, tunnelInitialHosts: "h[1]", replicas: 0 }),
    /RelaySite: replicas must be an integer >= 1/,
  ],
  [
    "site ports equal",
    () => new RelaySite(stack(), "s", { site: "a", image, tunnelInitialHosts: "h[1]", httpPort: 7800 }),
    /bindPort and httpPort are both 7800/,
  ],
  [
    "node group scaling",
    () => new EksCluster(stack(), "c", { name: "c", region: "us-east-1", nodeGroup: { min: 3, desired: 2 } }),
    /EksCluster: nodeGroup needs min <= desired <= max/,
  ],
  [
    "node pool size",
    () => new GkeCluster(stack(), "c", { name: "c", location: "us-west1-a", nodePool: { nodeCount: 0 } }),
    /GkeCluster: nodePool.nodeCount must be an integer >= 1/,
  ],
  [
    "pki renewal",
    () => new RelayPki(stack(), "p", { validityHours: 100, earlyRenewalHours: 100 }),
    /RelayPki: earlyRenewalHours \(100\) must be less than validityHours/,
  ],
  [
    "existing kubeconfig",
    () => new ExistingCluster({ kubeconfigPath: " " }),
    /ExistingCluster: kubeconfigPath is empty/,
  ],
])("%s", (_, build, message) => {
  expect(build).toThrow(message);
  expect(thrown(build)).toBeInstanceOf(ValidationError);
  expect(thrown(build).code).toBe("INVALID_PROPS");
});

test("a ValidationError names the construct's path, in a property and in its message", () => {
  const build = () => new GossipRouter(stack(), "r", { site: "a", image, replicas: 0 });
  expect(build).toThrow(/replicas must be an integer >= 1 \(got 0\) \[at s\/r\]$/);
  expect(thrown(build)).toBeInstanceOf(CodedError);
  expect(thrown(build).constructPath).toBe("s/r");
});

test("GKE location: zone -> region, region unchanged", () => {
  expect(regionOf("us-west1-a")).toBe("us-west1");
  expect(regionOf("europe-west4")).toBe("europe-west4");
});

test("a regional GKE cluster gets --region in its kubeconfig command", () => {
  const c = new GkeCluster(stack(), "c", { name: "c", location: "us-west1", project: "p1" });
  expect(c.kubeconfigCommand).toBe(
    "gcloud container clusters get-credentials c --region us-west1 --project p1",
  );
});
