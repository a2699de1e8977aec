// GKE: a new cluster with its own VPC network, in a `<site>-cluster` stack with a GoogleProvider
// (the site's project, else the provider's default).

import { GoogleProvider } from "@cdktf/provider-google/lib/provider/index.js";
import { baseTags } from "../../constructs/tags.js";
import type { CloudModule } from "../types.js";
import { GkeCluster } from "./cluster.js";
import { type GkeSite, readGkeSite } from "./site.js";

export const gke: CloudModule<GkeSite> = {
  kind: "gke",
  readSite: readGkeSite,
  cluster: {
    inOwnStack: true,
    create(stack, site, name, options) {
      const labels = { ...baseTags(site.name), ...options.tags };
      const provider = new GoogleProvider(stack, "google", site.project ? { project: site.project } : {});
      // Not `defaultLabels`: cdktf rewrites the keys of that provider map to snake case
      // (`part-of` -> `part_of`); an override writes them as they are.
      provider.addOverride("default_labels", labels);
      return new GkeCluster(stack, "cluster", {
        name,
        location: site.location,
        nodePool: {
          machineType: site.nodePool.machineType,
          nodeCount: site.nodePool.nodeCount,
          ...(site.nodePool.autoscaling ? { autoscaling: site.nodePool.autoscaling } : {}),
        },
        labels,
        deletionProtection: site.deletionProtection,
        ...(site.project ? { project: site.project } : {}),
      });
    },
  },
};
