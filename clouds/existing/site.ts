// A site on a cluster that already exists, in a topology document: a kubeconfig file and context.

import { join, type Obj, type Reader } from "../../topology/reader.js";
import type { SiteBase } from "../types.js";

/** A site on a cluster that already exists, reached through a kubeconfig. */
export interface ExistingSite extends SiteBase<"existing"> {
  readonly kubeconfig: { readonly path: string; readonly context: string | undefined };
  /**
   * CIDRs this cluster's pods reach the internet from; every router admits them when
   * `loadBalancerSourceRanges` includes `egress` (the default). undefined = not given.
   */
  readonly egressCidrs: readonly string[] | undefined;
}

export function readExistingSite(
  r: Reader,
  s: Obj,
  path: string,
  common: Omit<SiteBase, "cloud">,
): ExistingSite | undefined {
  r.unknownKeys(s, ["name", "cloud", "kubeconfig", "egressCidrs", "relayReplicas"], path);
  const egressCidrs = r.cidrList(s["egressCidrs"], join(path, "egressCidrs"));
  const kcPath = join(path, "kubeconfig");
  const kc = r.object(s["kubeconfig"], kcPath);
  if (!kc) {
    if (s["kubeconfig"] === undefined)
      r.problem(kcPath, "is required for cloud: existing ({ path, context? })");
    return undefined;
  }
  r.unknownKeys(kc, ["path", "context"], kcPath);
  return {
    name: common.name,
    cloud: "existing",
    kubeconfig: {
      path: r.requiredString(kc, "path", kcPath, undefined, "the kubeconfig file, e.g. ~/.kube/config"),
      context: r.optionalString(kc, "context", kcPath),
    },
    egressCidrs,
    relayReplicas: common.relayReplicas,
  };
}
