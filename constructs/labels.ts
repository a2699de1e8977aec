// Labels shared by every Kubernetes object the program creates, so `kubectl get -l` finds them.

import type { IConstruct } from "constructs";
import { ValidationError } from "./validation-error.js";

export const PART_OF = "cross-cloud-relay";

/** Selector labels of one component of one site (stable: changing them replaces the Deployment). */
export function selectorLabels(site: string, component: "router" | "relay"): Record<string, string> {
  return {
    "app.kubernetes.io/name": component === "router" ? "gossip-router" : "relay-node",
    "app.kubernetes.io/instance": `${site}-${component}`,
  };
}

/** Selector labels plus the descriptive ones. */
export function objectLabels(site: string, component: "router" | "relay"): Record<string, string> {
  return {
    ...selectorLabels(site, component),
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/managed-by": "cdktf",
    "cross-cloud-relay/site": site,
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Throws unless `site` can prefix Kubernetes object names (`<site>-router-http` <= 63 chars). */
export function checkSiteName(scope: IConstruct, construct: string, site: string): void {
  if (!DNS_LABEL.test(site) || site.length > 40) {
    throw new ValidationError(
      scope,
      `${construct}: site "${site}" must be a DNS-1123 label of at most 40 characters (lower-case letters, digits, '-')`,
    );
  }
}
