// Local site membership: the members of one site form a cluster over a TCP mesh (see docs/CLUSTER.md).
export { ClusterCodecError, type ClusterFrame, decodeFrame, encodeFrame, meshSplitter } from "./codec.js";
export {
  type DiscoveredAddress,
  type Discovery,
  DnsDiscovery,
  type DnsDiscoveryOptions,
  StaticDiscovery,
} from "./discovery.js";
export { ClusterError } from "./errors.js";
export type { ClusterMessage, ClusterStats, CoordinatorChange, LocalClusterEvents } from "./events.js";
export { LocalCluster } from "./local-cluster.js";
export { compareMembers, describeMember, type Member, memberKey, type View, type ViewId } from "./member.js";
export {
  DEFAULT_CLUSTER_PORT,
  DEFAULT_DISCOVERY_INTERVAL_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_JOIN_TIMEOUT_MS,
  DEFAULT_SUSPECT_TIMEOUT_MS,
  type LocalClusterOptions,
  resolveClusterOptions,
} from "./options.js";
