// EKS: a new cluster with its own VPC, in a `<site>-cluster` stack with an AwsProvider for the
// site's region.

import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { PART_OF } from "../../constructs/labels.js";
import type { CloudModule } from "../types.js";
import { EksCluster } from "./cluster.js";
import { type EksSite, readEksSite } from "./site.js";

export const eks: CloudModule<EksSite> = {
  kind: "eks",
  readSite: readEksSite,
  cluster: {
    inOwnStack: true,
    create(stack, site, name) {
      new AwsProvider(stack, "aws", {
        region: site.region,
        defaultTags: [{ tags: { "part-of": PART_OF, site: site.name } }],
      });
      return new EksCluster(stack, "cluster", {
        name,
        region: site.region,
        nodeGroup: site.nodeGroup,
        ...(site.kubernetesVersion ? { kubernetesVersion: site.kubernetesVersion } : {}),
      });
    },
  },
};
