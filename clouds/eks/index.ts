// EKS: a new cluster with its own VPC, in a `<site>-cluster` stack with an AwsProvider for the
// site's region.

import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { baseTags } from "../../constructs/tags.js";
import type { CloudModule } from "../types.js";
import { EksCluster } from "./cluster.js";
import { type EksSite, readEksSite } from "./site.js";

export const eks: CloudModule<EksSite> = {
  kind: "eks",
  readSite: readEksSite,
  cluster: {
    inOwnStack: true,
    create(stack, site, name, options) {
      // Every AWS resource of the stack gets these; the NLBs Kubernetes creates get them through
      // their Service annotation (EksCluster.loadBalancerTags).
      const tags = { ...baseTags(site.name), ...options.tags };
      new AwsProvider(stack, "aws", { region: site.region, defaultTags: [{ tags }] });
      return new EksCluster(stack, "cluster", {
        name,
        region: site.region,
        nodeGroup: site.nodeGroup,
        ...(site.kubernetesVersion ? { kubernetesVersion: site.kubernetesVersion } : {}),
        apiEndpoint: site.apiEndpoint,
        controlPlaneLogs: site.controlPlaneLogs,
        secretsEncryption: site.secretsEncryption,
        loadBalancerTags: tags,
      });
    },
  },
};
