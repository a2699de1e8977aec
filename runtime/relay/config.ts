// From the env contract (contract/relay-env.ts) to RelayChannel options: discovery, routers, TLS,
// the router token, the cluster secret.
import { readFileSync } from "node:fs";
import { ConfigError } from "../../contract/errors.js";
import { RELAY_ENV, type RelayNodeConfig } from "../../contract/relay-env.js";
import { type Discovery, DnsDiscovery, StaticDiscovery } from "../cluster/discovery.js";
import { clusterSecretFromFile } from "../cluster/secret.js";
import type { Logger } from "../observability/log.js";
import type { TlsReloader } from "../tls/watch.js";
import type { ClusterTuning, RelayChannelOptions } from "./options.js";

/** Discovery for a site: the headless Service's A records (on the site's mesh port) or a static list. */
export function discoveryFor(config: RelayNodeConfig): Discovery {
  return config.discovery.kind === "dns"
    ? new DnsDiscovery(config.discovery.query, config.bindPort)
    : new StaticDiscovery(config.discovery.members);
}

/** The router token in ROUTER_TOKEN_FILE (a trailing newline is not part of it); ConfigError naming `what`. */
export function readRouterToken(file: string, what: string = RELAY_ENV.routerTokenFile): string {
  let token: string;
  try {
    token = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new ConfigError(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
  if (token === "" || Buffer.byteLength(token) > 1024) {
    throw new ConfigError(`${what}: ${file} must hold a token of 1 to 1024 bytes`);
  }
  return token;
}

export interface ChannelOverrides {
  /** Member name (default: NODE_NAME). */
  readonly name?: string;
  /** Mesh port to listen on (default: BIND_PORT; 0 = ephemeral, for chat and probe). */
  readonly bindPort?: number;
  readonly clusterTuning?: ClusterTuning;
  readonly pollIntervalMs?: number;
  readonly logger?: Logger;
  /** Reloader of the TLS files shared by every router connection (RelayNode polls it). @default one per tunnel client, checked at each connect */
  readonly tlsReloader?: TlsReloader;
}

export function channelOptionsFor(config: RelayNodeConfig, o: ChannelOverrides = {}): RelayChannelOptions {
  return {
    site: config.site,
    cluster: config.cluster,
    name: o.name ?? config.nodeName,
    discovery: discoveryFor(config),
    routers: config.tunnelInitialHosts,
    bindAddr: config.bindAddr,
    bindPort: o.bindPort ?? config.bindPort,
    advertiseAddr: config.bindAddr,
    siteMasters: config.siteMasters,
    ...(config.tls
      ? {
          tls: {
            ca: config.tls.ca,
            cert: config.tls.cert,
            key: config.tls.key,
            // Router certificates carry a fixed name (issued before their LoadBalancer address
            // exists); without it, verifying the LB host name would refuse every router.
            ...(config.tls.serverName !== undefined ? { servername: config.tls.serverName } : {}),
            ...(o.tlsReloader ? { reloader: o.tlsReloader } : {}),
          },
        }
      : {}),
    ...(config.routerTokenFile !== undefined ? { routerToken: readRouterToken(config.routerTokenFile) } : {}),
    // CLUSTER_SECRET_FILE: read (and validated: ConfigError naming it) now, followed afterwards.
    ...(config.clusterSecretFile !== undefined
      ? {
          clusterSecret: clusterSecretFromFile(config.clusterSecretFile, {
            setting: RELAY_ENV.clusterSecretFile,
            ...(o.logger ? { logger: o.logger } : {}),
          }),
        }
      : {}),
    ...(o.clusterTuning ? { clusterTuning: o.clusterTuning } : {}),
    ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  };
}
