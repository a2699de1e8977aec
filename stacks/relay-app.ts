// Turns a Topology into stacks, layered so that every arrow points one way (no cycle):
//   pki, <site>-cluster            read from nobody
//   <site>-router                  reads its cluster (kube provider) and pki (router cert)
//   <site>-site                    reads its cluster, pki (client cert) and EVERY router's endpoint
// A site whose cloud does not create its cluster (`existing`) has no cluster stack: its provider
// reads a kubeconfig, and its router stack outputs the kubeconfig command.

import type { Construct } from "constructs";
import { cloudOf } from "../clouds/index.js";
import type { GossipRouter } from "../constructs/gossip-router.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import type { Topology } from "../topology/model.js";
import { ClusterStack } from "./cluster-stack.js";
import { PkiStack } from "./pki-stack.js";
import { RouterStack } from "./router-stack.js";
import { SiteStack } from "./site-stack.js";

export interface RelayStacks {
  readonly pki: PkiStack | undefined;
  readonly clusters: ReadonlyMap<string, ClusterStack>;
  readonly routers: ReadonlyMap<string, RouterStack>;
  readonly sites: ReadonlyMap<string, SiteStack>;
}

/** Stack names, also the directories under cdktf.out/stacks. */
export const stackNames = {
  pki: "pki",
  cluster: (site: string) => `${site}-cluster`,
  router: (site: string) => `${site}-router`,
  site: (site: string) => `${site}-site`,
};

/** Adds every stack of `topology` to `scope` (an App). */
export function buildRelayStacks(scope: Construct, topology: Topology): RelayStacks {
  const { backend } = topology;
  const pki = topology.tls
    ? new PkiStack(scope, stackNames.pki, { sites: topology.sites.map((s) => s.name), backend })
    : undefined;
  const caPem = pki?.pki.caCertPem;

  const clusters = new Map<string, ClusterStack>();
  const kube = new Map<string, IKubeCluster>();
  for (const site of topology.sites) {
    const { cluster } = cloudOf(site);
    if (!cluster.inOwnStack) {
      kube.set(site.name, cluster.connect(site));
    } else {
      const stack = new ClusterStack(scope, stackNames.cluster(site.name), { site, backend });
      clusters.set(site.name, stack);
      kube.set(site.name, stack.cluster);
    }
  }

  const routers = new Map<string, RouterStack>();
  for (const site of topology.sites) {
    const cert = pki?.routerCerts.get(site.name);
    routers.set(
      site.name,
      new RouterStack(scope, stackNames.router(site.name), {
        site: site.name,
        cluster: kube.get(site.name)!,
        router: topology.router,
        namespace: topology.namespace,
        loadBalancerSourceRanges: topology.loadBalancerSourceRanges,
        tls: cert && caPem ? { cert, caPem } : undefined,
        backend,
        outputKubeconfigCommand: !clusters.has(site.name),
      }),
    );
  }
  const allRouters: GossipRouter[] = topology.sites.map((s) => routers.get(s.name)!.router);

  const sites = new Map<string, SiteStack>();
  for (const site of topology.sites) {
    const cert = pki?.siteCerts.get(site.name);
    sites.set(
      site.name,
      new SiteStack(scope, stackNames.site(site.name), {
        site: site.name,
        cluster: kube.get(site.name)!,
        routers: allRouters,
        image: topology.relayImage,
        replicas: site.relayReplicas,
        clusterName: topology.clusterName,
        namespace: topology.namespace,
        tls: cert && caPem ? { cert, caPem } : undefined,
        backend,
      }),
    );
  }
  return { pki, clusters, routers, sites };
}
