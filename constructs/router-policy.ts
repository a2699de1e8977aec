// The router authorization the IaC renders by default (`--allow-groups`): the bridge group, for the
// topology's sites only. A client with any other identity, or asking for any other group, is
// refused by the router (docs/security/iac.md).

import type { AllowGroups } from "../contract/router-args.js";

/**
 * The group every site master registers in on the routers. It must equal DEFAULT_BRIDGE_GROUP in
 * runtime/relay/bridge-agent.ts (test/infra/router-policy.test.ts checks it). It belongs in
 * contract/, beside the router flags; until it moves there it is defined once here, because the
 * constructs never import the runtime.
 */
export const BRIDGE_GROUP = "bridge";

/** `{ bridge: [sites...] }`: only these sites, only on the bridge. */
export function bridgePolicy(sites: readonly string[]): AllowGroups {
  return { [BRIDGE_GROUP]: [...sites] };
}

/** Routers do not share registrations, so one replica per site. */
export const MAX_ROUTER_REPLICAS = 1;
/** Why more than one router replica is refused (constructs and the topology parser). */
export const ROUTER_REPLICAS_WHY =
  "a router keeps its registrations in memory and replicas do not share them, so two replicas behind one LoadBalancer split the bridge; use 1 (availability comes from one router per site: every relay node connects to every router)";
