// A site on a cluster that already exists, in a topology document: a kubeconfig file and context.

import { join, type Obj, type Reader } from "../../topology/reader.js";
import type { SiteBase } from "../types.js";

/** A site on a cluster that already exists, reached through a kubeconfig. */
export interface ExistingSite extends SiteBase<"existing"> {
  readonly kubeconfig: { readonly path: string; readonly context: string | undefined };
}

export function readExistingSite(
  r: Reader,
  s: Obj,
  path: string,
  common: Omit<SiteBase, "cloud">,
): ExistingSite | undefined {
  r.unknownKeys(s, ["name", "cloud", "kubeconfig", "relayReplicas"], path);
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
    relayReplicas: common.relayReplicas,
  };
}
