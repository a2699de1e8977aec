// The `cross-cloud-relay/constructs` entry: the CDKTF constructs for users who compose their own
// app (see docs/API.md). cdktf, constructs and the provider packages are peer dependencies of the
// package: install them beside it. The cloud clusters and the whole-topology builder come along.
export { EksCluster, type EksClusterProps, type EksNodeGroupProps } from "../clouds/eks/cluster.js";
export { ExistingCluster, type ExistingClusterProps } from "../clouds/existing/cluster.js";
export { GkeCluster, type GkeClusterProps, type GkeNodePoolProps } from "../clouds/gke/cluster.js";
export { buildRelayStacks, type RelayStacks, stackNames } from "../stacks/relay-app.js";
export { defaultTopology, parseTopology, type Topology } from "../topology/index.js";
export { GossipRouter, type GossipRouterProps, type RouterAuth } from "./gossip-router.js";
export type { IKubeCluster } from "./kube-cluster.js";
export { MetricsService, type MetricsServiceProps, type MonitoringProps } from "./metrics-service.js";
export {
  type CertProfile,
  type IssuedCert,
  RelayPki,
  type RelayPkiProps,
  ROUTER_TLS_SERVER_NAME,
  routerCertProfile,
  siteCertProfile,
} from "./relay-pki.js";
export {
  KvTokenSecret,
  type KvTokenSecretProps,
  MeshSecret,
  type MeshSecretProps,
  RouterTokens,
  type RouterTokensProps,
} from "./relay-secrets.js";
export { RelaySite, type RelaySiteKvProps, type RelaySiteProps } from "./relay-site.js";
export { BRIDGE_GROUP, bridgePolicy } from "./router-policy.js";
export { ValidationError } from "./validation-error.js";
