// An existing cluster: no cluster stack; the router and site stacks reach it through a kubeconfig.

import type { CloudModule } from "../types.js";
import { ExistingCluster } from "./cluster.js";
import { type ExistingSite, readExistingSite } from "./site.js";

export const existing: CloudModule<ExistingSite> = {
  kind: "existing",
  readSite: readExistingSite,
  cluster: {
    inOwnStack: false,
    connect(site) {
      return new ExistingCluster({
        kubeconfigPath: site.kubeconfig.path,
        ...(site.kubeconfig.context ? { context: site.kubeconfig.context } : {}),
        clusterName: site.kubeconfig.context ?? site.name,
        ...(site.egressCidrs ? { egressCidrs: site.egressCidrs } : {}),
      });
    },
  },
};
