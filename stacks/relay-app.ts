// Turns a Topology into stacks, layered so that every arrow points one way (no cycle):
//   pki, tokens, <site>-cluster    read from nobody (pki with tls, tokens with routerAuth: tokens)
//   <site>-router                  reads its cluster (kube provider), EVERY cluster (egress
//                                  addresses for loadBalancerSourceRanges), and pki or tokens
//   <site>-site                    reads its cluster, pki or tokens, and EVERY router's endpoint
// A site whose cloud does not create its cluster (`existing`) has no cluster stack: its provider
// reads a kubeconfig, its egress CIDRs come from the topology, and its router stack outputs the
// kubeconfig command.

import type { Construct } from "constructs";
import { cloudOf } from "../clouds/index.js";
import type { GossipRouter } from "../constructs/gossip-router.js";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import { kvServiceDnsNames } from "../constructs/relay-site.js";
import { bridgePolicy } from "../constructs/router-policy.js";
import { ValidationError } from "../constructs/validation-error.js";
import type { Topology } from "../topology/model.js";
import { ClusterStack } from "./cluster-stack.js";
import { PkiStack } from "./pki-stack.js";
import { RouterStack, type RouterStackAuth } from "./router-stack.js";
import { SiteStack, type SiteStackAuth } from "./site-stack.js";
import { TokensStack } from "./tokens-stack.js";

export interface RelayStacks {
  readonly pki: PkiStack | undefined;
  readonly tokens: TokensStack | undefined;
  readonly clusters: ReadonlyMap<string, ClusterStack>;
  readonly routers: ReadonlyMap<string, RouterStack>;
  readonly sites: ReadonlyMap<string, SiteStack>;
}

/** Stack names, also the directories under cdktf.out/stacks. */
export const stackNames = {
  pki: "pki",
  tokens: "tokens",
  cluster: (site: string) => `${site}-cluster`,
  router: (site: string) => `${site}-router`,
  site: (site: string) => `${site}-site`,
};

/**
 * The source ranges of `site`'s router: the topology's literal CIDRs, plus (with `egress`) every
 * site's egress addresses and this cluster's own in-cluster ranges. Entries may be tokens of other
 * stacks; cdktf turns them into remote-state reads.
 */
export function routerSourceRanges(
  topology: Topology,
  site: string,
  kube: ReadonlyMap<string, IKubeCluster>,
): string[] {
  const { egress, cidrs } = topology.loadBalancerSourceRanges;
  const ranges = [...cidrs];
  if (egress) {
    for (const s of topology.sites) {
      const egressCidrs = kube.get(s.name)!.egressCidrs;
      if (egressCidrs.length === 0) {
        throw new ValidationError(
          undefined,
          `site ${s.name}: no egress addresses, but loadBalancerSourceRanges includes egress; give the site's egressCidrs or list loadBalancerSourceRanges`,
        );
      }
      ranges.push(...egressCidrs);
    }
    ranges.push(...kube.get(site)!.inClusterCidrs);
  }
  return [...new Set(ranges)];
}

/** Adds every stack of `topology` to `scope` (an App). */
export function buildRelayStacks(scope: Construct, topology: Topology): RelayStacks {
  const { backend } = topology;
  const names = topology.sites.map((s) => s.name);
  if (topology.tls !== (topology.routerAuth === "tls")) {
    throw new ValidationError(
      undefined,
      `routerAuth "${topology.routerAuth}" does not go with tls: ${topology.tls} ("tls" exactly when tls is true)`,
    );
  }
  const pki = topology.tls
    ? new PkiStack(scope, stackNames.pki, {
        sites: names,
        // With maps, each site's API serves HTTPS with a certificate for its Service's names.
        ...(topology.kv
          ? { kvApis: names.map((site) => ({ site, dnsNames: kvServiceDnsNames(site, topology.namespace) })) }
          : {}),
        backend,
        validityHours: topology.certificates.validityHours,
        earlyRenewalHours: topology.certificates.earlyRenewalHours,
      })
    : undefined;
  const tokens =
    topology.routerAuth === "tokens"
      ? new TokensStack(scope, stackNames.tokens, { sites: names, backend })
      : undefined;
  const caPem = pki?.pki.caCertPem;

  const clusters = new Map<string, ClusterStack>();
  const kube = new Map<string, IKubeCluster>();
  for (const site of topology.sites) {
    const { cluster } = cloudOf(site);
    if (!cluster.inOwnStack) {
      kube.set(site.name, cluster.connect(site));
    } else {
      const stack = new ClusterStack(scope, stackNames.cluster(site.name), {
        site,
        backend,
        tags: topology.tags,
      });
      clusters.set(site.name, stack);
      kube.set(site.name, stack.cluster);
    }
  }

  // The safe default: the bridge group, for the topology's sites only. Open mode has no
  // identities to check, so no policy.
  const allowGroups = topology.routerAuth === "open" ? "any" : bridgePolicy(names);
  const routers = new Map<string, RouterStack>();
  for (const site of topology.sites) {
    const auth: RouterStackAuth =
      pki && caPem
        ? { kind: "tls", cert: pki.routerCerts.get(site.name)!, caPem }
        : tokens
          ? { kind: "tokens", tokens: tokens.tokens.tokens }
          : { kind: "open" };
    routers.set(
      site.name,
      new RouterStack(scope, stackNames.router(site.name), {
        site: site.name,
        cluster: kube.get(site.name)!,
        router: topology.router,
        namespace: topology.namespace,
        loadBalancerSourceRanges: routerSourceRanges(topology, site.name, kube),
        auth,
        allowGroups,
        backend,
        outputKubeconfigCommand: !clusters.has(site.name),
        monitoring: topology.monitoring,
      }),
    );
  }
  const allRouters: GossipRouter[] = topology.sites.map((s) => routers.get(s.name)!.router);

  checkKvBackups(topology);
  const sites = new Map<string, SiteStack>();
  for (const site of topology.sites) {
    const kv = topology.kv;
    const backupSites = kv?.backups[site.name];
    const auth: SiteStackAuth =
      pki && caPem
        ? { kind: "tls", cert: pki.siteCerts.get(site.name)!, caPem }
        : tokens
          ? { kind: "tokens", token: tokens.tokens.tokenOf(site.name) }
          : { kind: "open" };
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
        auth,
        backend,
        monitoring: topology.monitoring,
        ...(kv
          ? {
              kv: {
                maps: kv.maps,
                ...(pki && caPem ? { tls: { cert: pki.kvApiCerts.get(site.name)!, caPem } } : {}),
                ...(backupSites !== undefined ? { backupSites } : {}),
                ...(kv.clientNamespaces !== undefined ? { clientNamespaces: kv.clientNamespaces } : {}),
              },
            }
          : {}),
      }),
    );
  }
  return { pki, tokens, clusters, routers, sites };
}

/** A Topology built in code gets the checks parseTopology makes: backups name the topology's sites. */
function checkKvBackups(topology: Topology): void {
  const names = topology.sites.map((s) => s.name);
  for (const [site, targets] of Object.entries(topology.kv?.backups ?? {})) {
    const stranger = [site, ...targets].find((s) => !names.includes(s));
    if (stranger !== undefined) {
      throw new ValidationError(
        undefined,
        `kv.backups.${site}: "${stranger}" is not a site of this topology (${names.join(", ")})`,
      );
    }
  }
}
