// What one cloud contributes, in one folder (clouds/<kind>/): the schema, parser and defaults of its
// sites in a topology document, its cluster construct (an IKubeCluster, which also carries the
// LoadBalancer annotations the cloud needs), and how its cluster is set up in a stack of its own
// with its cloud provider, or reached without one. clouds/index.ts registers every module.

import type { Construct } from "constructs";
import type { IKubeCluster } from "../constructs/kube-cluster.js";
import type { Obj, Reader } from "../topology/reader.js";

/** The fields every site has, whatever its cloud. */
export interface SiteBase<K extends string = string> {
  /** DNS-1123 label; names the site's stacks and objects. */
  readonly name: string;
  readonly cloud: K;
  /** Relay pods of the site. */
  readonly relayReplicas: number;
}

/** What the topology gives every created cluster besides its site. */
export interface ClusterOptions {
  /** The topology's `tags:` (without `part-of` and `site`, which the cloud module adds). */
  readonly tags: Readonly<Record<string, string>>;
}

/** A cluster the program creates: its own `<site>-cluster` stack holds the cloud provider and it. */
export interface CreatedCluster<S extends SiteBase> {
  readonly inOwnStack: true;
  /** Configures the cloud's provider in `stack` and builds the cluster construct named `name`. */
  create(stack: Construct, site: S, name: string, options: ClusterOptions): IKubeCluster;
}

/** A cluster that already exists: no stack of its own, only a way to reach it. */
export interface ReachedCluster<S extends SiteBase> {
  readonly inOwnStack: false;
  connect(site: S): IKubeCluster;
}

export interface CloudModule<S extends SiteBase> {
  /** The value of `cloud` in a topology document. */
  readonly kind: S["cloud"];
  /**
   * Reads the cloud's fields of one site (the document's `sites[i]` at `path`); name and
   * relayReplicas are already read. Problems go to `r`; undefined when the site is unusable.
   */
  readSite(r: Reader, doc: Obj, path: string, common: Omit<SiteBase, "cloud">): S | undefined;
  readonly cluster: CreatedCluster<S> | ReachedCluster<S>;
}
