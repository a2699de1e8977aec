// The ports both halves agree on: the constructs open them in Services, probes and
// NetworkPolicies, the runtime listens on them by default. No dependencies.

/** GossipRouter: the gossip protocol (the only port on the public LoadBalancer). */
export const ROUTER_PORT = 12001;
/** GossipRouter: /healthz and /metrics (cluster-internal). */
export const ROUTER_HTTP_PORT = 9000;
/** Relay node: member-to-member traffic inside one site (BIND_PORT). */
export const CLUSTER_PORT = 7800;
/** Relay node: /healthz, /readyz and /metrics (HTTP_PORT). */
export const NODE_HTTP_PORT = 8080;
/** Relay node: the replicated maps' HTTP/JSON API (KV_PORT), when the node hosts maps. */
export const KV_API_PORT = 8090;
