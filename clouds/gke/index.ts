// GKE: a new cluster with its own VPC network, in a `<site>-cluster` stack with a GoogleProvider
// (the site's project, else the provider's default).

import { GoogleProvider } from "@cdktf/provider-google/lib/provider/index.js";
import { PART_OF } from "../../constructs/labels.js";
import type { CloudModule } from "../types.js";
import { GkeCluster } from "./cluster.js";
import { type GkeSite, readGkeSite } from "./site.js";

export const gke: CloudModule<GkeSite> = {
  kind: "gke",
  readSite: readGkeSite,
  cluster: {
    inOwnStack: true,
    create(stack, site, name) {
      new GoogleProvider(stack, "google", {
        ...(site.project ? { project: site.project } : {}),
        defaultLabels: { "part-of": PART_OF, site: site.name },
      });
      return new GkeCluster(stack, "cluster", {
        name,
        location: site.location,
        nodePool: site.nodePool,
        deletionProtection: site.deletionProtection,
        ...(site.project ? { project: site.project } : {}),
      });
    },
  },
};
