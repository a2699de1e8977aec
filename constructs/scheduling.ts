// Where the router and relay pods may run: topology spread across zones and nodes, shared by both
// Deployments (constructs/gossip-router.ts, constructs/relay-site.ts).
//
// - Zones: `ScheduleAnyway`. A zonal GKE cluster has one zone and an EKS node group may have all
//   its nodes in one AZ after a scale-down; refusing to schedule there would leave pods Pending.
// - Nodes: `DoNotSchedule`, maxSkew 1: five relay pods on two nodes land 3/2, never 5/0, so one
//   node's loss never takes a whole site. `nodeTaintsPolicy: Honor` leaves cordoned, NotReady and
//   tainted nodes out of the count (otherwise an empty NotReady node would block rescheduling
//   after a node failure), and `matchLabelKeys: [pod-template-hash]` spreads each ReplicaSet on
//   its own, so a rolling update is never blocked by the old pods.

import type { DeploymentV1SpecTemplateSpecTopologySpreadConstraint } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";

export const ZONE_KEY = "topology.kubernetes.io/zone";
export const HOSTNAME_KEY = "kubernetes.io/hostname";

/** The spread constraints of the pods selected by `selector` (the Deployment's selector labels). */
export function spreadConstraints(
  selector: Record<string, string>,
): DeploymentV1SpecTemplateSpecTopologySpreadConstraint[] {
  const common = {
    maxSkew: 1,
    labelSelector: [{ matchLabels: { ...selector } }],
    matchLabelKeys: ["pod-template-hash"],
  };
  return [
    { ...common, topologyKey: ZONE_KEY, whenUnsatisfiable: "ScheduleAnyway" },
    { ...common, topologyKey: HOSTNAME_KEY, whenUnsatisfiable: "DoNotSchedule", nodeTaintsPolicy: "Honor" },
  ];
}
