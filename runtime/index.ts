// The package's main entry (`import { RelayChannel } from "cross-cloud-relay"`): the relay runtime
// an application embeds, without the CDKTF half (see docs/API.md). Everything here is also what the
// `relay` CLI is built on. The constructs are a separate entry, `cross-cloud-relay/constructs`.

export { CodedError, ConfigError } from "../contract/errors.js";
export { parseRelayEnv, type RelayNodeConfig } from "../contract/relay-env.js";
export {
  type DiscoveredAddress,
  type Discovery,
  DnsDiscovery,
  type DnsDiscoveryOptions,
  StaticDiscovery,
} from "./cluster/discovery.js";
export { ClusterError } from "./cluster/errors.js";
export type { LocalClusterOptions } from "./cluster/options.js";
export * from "./kv/index.js";
export * from "./relay/index.js";
export * from "./router/index.js";
