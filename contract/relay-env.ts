// The container environment of a relay node: rendered by the constructs (one list per site) and
// parsed by the runtime at start-up. The only arrow between the IaC half and the runtime half goes
// through this file, so it has no dependencies besides its siblings in contract/.

import { isIP } from "node:net";
import { ConfigError } from "./errors.js";
import { parseInitialHosts, type RouterEndpoint } from "./initial-hosts.js";
import { CLUSTER_PORT, KV_API_PORT, NODE_HTTP_PORT } from "./ports.js";

/** Names of every variable of the contract, in the order `renderRelayEnv` emits them. */
export const RELAY_ENV = {
  site: "SITE",
  cluster: "CLUSTER",
  dnsQuery: "DNS_QUERY",
  staticMembers: "STATIC_MEMBERS",
  tunnelInitialHosts: "TUNNEL_INITIAL_HOSTS",
  nodeName: "NODE_NAME",
  bindAddr: "BIND_ADDR",
  bindPort: "BIND_PORT",
  httpPort: "HTTP_PORT",
  siteMasters: "SITE_MASTERS",
  tlsCert: "TLS_CERT",
  tlsKey: "TLS_KEY",
  tlsCa: "TLS_CA",
  tlsServerName: "TLS_SERVER_NAME",
  clusterSecretFile: "CLUSTER_SECRET_FILE",
  routerTokenFile: "ROUTER_TOKEN_FILE",
  kvMaps: "KV_MAPS",
  kvPort: "KV_PORT",
  kvTokenFile: "KV_TOKEN_FILE",
  kvBackupSites: "KV_BACKUP_SITES",
  kvTlsCert: "KV_TLS_CERT",
  kvTlsKey: "KV_TLS_KEY",
} as const;

export const DEFAULT_BIND_PORT = CLUSTER_PORT;
export const DEFAULT_HTTP_PORT = NODE_HTTP_PORT;
export const DEFAULT_SITE_MASTERS = 1;
export const DEFAULT_KV_PORT = KV_API_PORT;
/** Most replicated maps one node hosts. */
export const MAX_KV_MAPS = 64;
/** Used when BIND_ADDR is absent: a local run on one machine. */
export const DEFAULT_BIND_ADDR = "127.0.0.1";
const MAX_SITE_MASTERS = 16;

/** Kubernetes downward-API field paths for the values only known once the pod exists. */
export const POD_NAME_FIELD = "metadata.name";
export const POD_IP_FIELD = "status.podIP";

/** An env var with a literal value (which may be a Terraform token when rendered by the constructs). */
export interface LiteralEnvVar {
  readonly name: string;
  readonly value: string;
}

/** An env var filled by Kubernetes from the pod itself (downward API `valueFrom.fieldRef`). */
export interface FieldRefEnvVar {
  readonly name: string;
  readonly valueFrom: { readonly fieldPath: string };
}

export type RelayEnvVar = LiteralEnvVar | FieldRefEnvVar;

/** Paths of the PEM files mounted into the container. */
export interface TlsPaths {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  /**
   * Name the routers' certificates carry, used as the TLS server name (SNI and hostname check)
   * instead of the address dialled: router addresses are load-balancer names or IPs that do not
   * exist when the certificates are issued. Optional; without it the dialled host is checked.
   */
  readonly serverName?: string;
}

/** How members of one site find each other. */
export type Discovery =
  | { readonly kind: "dns"; readonly query: string }
  | { readonly kind: "static"; readonly members: string };

/** Replicated maps hosted by the nodes of a site (docs/KV.md). */
export interface KvSpec {
  /** Names of the maps (1..64 characters of letters, digits, '.', '_' or '-'). */
  readonly maps: readonly string[];
  /** Port of the maps' HTTP/JSON API. @default 8090 */
  readonly port?: number;
  /** File holding the API's bearer token (required unless the node binds loopback). */
  readonly tokenFile?: string;
  /** Sites this site backs up to. @default every other site */
  readonly backupSites?: readonly string[];
  /**
   * PEM server certificate and key files of the API: it serves HTTPS, re-reading them when they
   * change. @default plain HTTP (the bearer token travels in clear on the pod network)
   */
  readonly tls?: KvTlsPaths;
}

/** The kv API's server certificate and key (both files, mounted from a Secret). */
export interface KvTlsPaths {
  readonly cert: string;
  readonly key: string;
}

/** What a site needs to render its container env. */
export interface RelayEnvSpec {
  /** Site name (DNS-1123 label), e.g. `nyc`. */
  readonly site: string;
  /** Local cluster name; members of one site share it. */
  readonly cluster: string;
  /** Headless-service FQDN (cloud) or a static `host[port],...` list (local runs). */
  readonly discovery: Discovery;
  /** Every router's `host[port]`, joined by commas; may be a Terraform token. */
  readonly tunnelInitialHosts: string;
  /** @default the pod name, through the downward API */
  readonly nodeName?: string;
  /** @default the pod IP, through the downward API */
  readonly bindAddr?: string;
  /** @default 7800 */
  readonly bindPort?: number;
  /** @default 8080 */
  readonly httpPort?: number;
  /** @default 1 */
  readonly siteMasters?: number;
  /** @default no TLS (plain TCP to the routers) */
  readonly tls?: TlsPaths;
  /**
   * File holding the site's cluster secret (mounted from a Secret): members of the site prove it
   * to each other on the cluster port. @default none (the cluster port is unauthenticated)
   */
  readonly clusterSecretFile?: string;
  /**
   * File holding the site's router token, presented to routers that run without TLS
   * (`--auth-tokens`). @default none
   */
  readonly routerTokenFile?: string;
  /** Replicated maps on the site's nodes. @default none */
  readonly kv?: KvSpec;
}

/** The typed configuration the runtime starts from. */
export interface RelayNodeConfig {
  readonly site: string;
  readonly cluster: string;
  readonly discovery:
    | { readonly kind: "dns"; readonly query: string }
    | { readonly kind: "static"; readonly members: RouterEndpoint[] };
  readonly tunnelInitialHosts: RouterEndpoint[];
  readonly nodeName: string;
  readonly bindAddr: string;
  readonly bindPort: number;
  readonly httpPort: number;
  readonly siteMasters: number;
  readonly tls: TlsPaths | undefined;
  /** Path of the site's cluster secret, when the cluster port is authenticated. */
  readonly clusterSecretFile: string | undefined;
  /** Path of the site's router token, when routers run in token mode. */
  readonly routerTokenFile: string | undefined;
  /** Replicated maps hosted by this node (KV_MAPS), with their API; undefined without maps. */
  readonly kv: KvConfig | undefined;
}

export interface KvConfig {
  readonly maps: readonly string[];
  readonly port: number;
  readonly tokenFile: string | undefined;
  /** undefined: every other site. */
  readonly backupSites: readonly string[] | undefined;
  /** HTTPS with this certificate; undefined: plain HTTP. */
  readonly tls: KvTlsPaths | undefined;
}

/** Renders the ordered env list of a relay container. Values are passed through (tokens allowed). */
export function renderRelayEnv(spec: RelayEnvSpec): RelayEnvVar[] {
  const env: RelayEnvVar[] = [
    { name: RELAY_ENV.site, value: spec.site },
    { name: RELAY_ENV.cluster, value: spec.cluster },
    spec.discovery.kind === "dns"
      ? { name: RELAY_ENV.dnsQuery, value: spec.discovery.query }
      : { name: RELAY_ENV.staticMembers, value: spec.discovery.members },
    { name: RELAY_ENV.tunnelInitialHosts, value: spec.tunnelInitialHosts },
    spec.nodeName === undefined
      ? { name: RELAY_ENV.nodeName, valueFrom: { fieldPath: POD_NAME_FIELD } }
      : { name: RELAY_ENV.nodeName, value: spec.nodeName },
    spec.bindAddr === undefined
      ? { name: RELAY_ENV.bindAddr, valueFrom: { fieldPath: POD_IP_FIELD } }
      : { name: RELAY_ENV.bindAddr, value: spec.bindAddr },
    { name: RELAY_ENV.bindPort, value: String(spec.bindPort ?? DEFAULT_BIND_PORT) },
    { name: RELAY_ENV.httpPort, value: String(spec.httpPort ?? DEFAULT_HTTP_PORT) },
    { name: RELAY_ENV.siteMasters, value: String(spec.siteMasters ?? DEFAULT_SITE_MASTERS) },
  ];
  if (spec.tls) {
    env.push(
      { name: RELAY_ENV.tlsCert, value: spec.tls.cert },
      { name: RELAY_ENV.tlsKey, value: spec.tls.key },
      { name: RELAY_ENV.tlsCa, value: spec.tls.ca },
    );
    if (spec.tls.serverName !== undefined) {
      env.push({ name: RELAY_ENV.tlsServerName, value: spec.tls.serverName });
    }
  }
  if (spec.clusterSecretFile !== undefined) {
    env.push({ name: RELAY_ENV.clusterSecretFile, value: spec.clusterSecretFile });
  }
  if (spec.routerTokenFile !== undefined) {
    env.push({ name: RELAY_ENV.routerTokenFile, value: spec.routerTokenFile });
  }
  if (spec.kv !== undefined) {
    env.push(
      { name: RELAY_ENV.kvMaps, value: spec.kv.maps.join(",") },
      { name: RELAY_ENV.kvPort, value: String(spec.kv.port ?? DEFAULT_KV_PORT) },
    );
    if (spec.kv.tokenFile !== undefined) env.push({ name: RELAY_ENV.kvTokenFile, value: spec.kv.tokenFile });
    if (spec.kv.backupSites !== undefined)
      env.push({ name: RELAY_ENV.kvBackupSites, value: spec.kv.backupSites.join(",") });
    if (spec.kv.tls !== undefined)
      env.push(
        { name: RELAY_ENV.kvTlsCert, value: spec.kv.tls.cert },
        { name: RELAY_ENV.kvTlsKey, value: spec.kv.tls.key },
      );
  }
  return env;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const CLUSTER_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?$/;
const NO_SPACE = /^\S{1,253}$/;
const MAX_PATH = 4096;

/**
 * Parses a process environment into a RelayNodeConfig. Throws ConfigError with one line naming the
 * variable and what is allowed; unknown variables are ignored.
 */
export function parseRelayEnv(env: Readonly<Record<string, string | undefined>>): RelayNodeConfig {
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const required = (name: string, allowed: string): string => {
    const v = get(name);
    if (v === undefined) throw new ConfigError(`${name} is not set: expected ${allowed}`);
    return v;
  };

  const site = required(RELAY_ENV.site, "a DNS-1123 label such as nyc");
  if (!DNS_LABEL.test(site)) {
    throw new ConfigError(
      `${RELAY_ENV.site}: "${clip(site)}" is not a DNS-1123 label (lower-case letters, digits and '-', 1..63 characters)`,
    );
  }
  const cluster = required(RELAY_ENV.cluster, "a cluster name such as relay");
  if (!CLUSTER_NAME.test(cluster)) {
    throw new ConfigError(
      `${RELAY_ENV.cluster}: "${clip(cluster)}" is not allowed: 1..128 characters of letters, digits, '.', '_' or '-'`,
    );
  }

  const dnsQuery = get(RELAY_ENV.dnsQuery);
  const staticMembers = get(RELAY_ENV.staticMembers);
  if (dnsQuery !== undefined && staticMembers !== undefined) {
    throw new ConfigError(
      `${RELAY_ENV.dnsQuery} and ${RELAY_ENV.staticMembers} are both set: set exactly one of the two`,
    );
  }
  let discovery: RelayNodeConfig["discovery"];
  if (dnsQuery !== undefined) {
    if (!HOST_NAME.test(dnsQuery)) {
      throw new ConfigError(
        `${RELAY_ENV.dnsQuery}: "${clip(dnsQuery)}" is not a DNS name (e.g. nyc-relay.default.svc.cluster.local)`,
      );
    }
    discovery = { kind: "dns", query: dnsQuery };
  } else if (staticMembers !== undefined) {
    discovery = { kind: "static", members: parseInitialHosts(staticMembers, RELAY_ENV.staticMembers) };
  } else {
    throw new ConfigError(
      `neither ${RELAY_ENV.dnsQuery} nor ${RELAY_ENV.staticMembers} is set: set exactly one (a headless-service FQDN, or host[port],host[port])`,
    );
  }

  const tunnelInitialHosts = parseInitialHosts(
    required(RELAY_ENV.tunnelInitialHosts, "host[port],host[port] (every router's endpoint)"),
    RELAY_ENV.tunnelInitialHosts,
  );

  const nodeName = required(RELAY_ENV.nodeName, "this node's unique name (the pod name in Kubernetes)");
  if (!NO_SPACE.test(nodeName)) {
    throw new ConfigError(
      `${RELAY_ENV.nodeName}: "${clip(nodeName)}" must be 1..253 characters without spaces`,
    );
  }
  const bindAddr = get(RELAY_ENV.bindAddr) ?? DEFAULT_BIND_ADDR;
  if (isIP(bindAddr) === 0) {
    throw new ConfigError(
      `${RELAY_ENV.bindAddr}: "${clip(bindAddr)}" is not an IP address (the pod IP; 127.0.0.1 for a local run)`,
    );
  }

  const bindPort = intVar(get(RELAY_ENV.bindPort), RELAY_ENV.bindPort, DEFAULT_BIND_PORT, 1, 65535);
  const httpPort = intVar(get(RELAY_ENV.httpPort), RELAY_ENV.httpPort, DEFAULT_HTTP_PORT, 1, 65535);
  if (bindPort === httpPort) {
    throw new ConfigError(
      `${RELAY_ENV.httpPort}: ${httpPort} is also ${RELAY_ENV.bindPort}; use two different ports`,
    );
  }
  const siteMasters = intVar(
    get(RELAY_ENV.siteMasters),
    RELAY_ENV.siteMasters,
    DEFAULT_SITE_MASTERS,
    1,
    MAX_SITE_MASTERS,
  );

  const tlsNames = [RELAY_ENV.tlsCert, RELAY_ENV.tlsKey, RELAY_ENV.tlsCa] as const;
  const tlsValues = tlsNames.map((n) => get(n));
  const tlsSet = tlsValues.filter((v) => v !== undefined).length;
  if (tlsSet !== 0 && tlsSet !== 3) {
    const missing = tlsNames.filter((_, i) => tlsValues[i] === undefined).join(", ");
    throw new ConfigError(
      `TLS is half configured: ${missing} missing; set all of TLS_CERT, TLS_KEY, TLS_CA or none`,
    );
  }
  for (let i = 0; i < tlsNames.length; i++) {
    const v = tlsValues[i];
    if (v !== undefined && v.length > MAX_PATH) {
      throw new ConfigError(`${tlsNames[i]}: path longer than ${MAX_PATH} characters`);
    }
  }
  const serverName = get(RELAY_ENV.tlsServerName);
  if (serverName !== undefined) {
    if (tlsSet === 0) {
      throw new ConfigError(
        `${RELAY_ENV.tlsServerName} is set without TLS: set TLS_CERT, TLS_KEY and TLS_CA too, or unset it`,
      );
    }
    if (!HOST_NAME.test(serverName)) {
      throw new ConfigError(
        `${RELAY_ENV.tlsServerName}: "${clip(serverName)}" is not a DNS name (e.g. gossip-router.relay.internal)`,
      );
    }
  }
  const tls =
    tlsSet === 3
      ? {
          cert: tlsValues[0]!,
          key: tlsValues[1]!,
          ca: tlsValues[2]!,
          ...(serverName !== undefined ? { serverName } : {}),
        }
      : undefined;

  const pathVar = (name: string): string | undefined => {
    const v = get(name);
    if (v !== undefined && v.length > MAX_PATH) {
      throw new ConfigError(`${name}: path longer than ${MAX_PATH} characters`);
    }
    return v;
  };

  return {
    site,
    cluster,
    discovery,
    tunnelInitialHosts,
    nodeName,
    bindAddr,
    bindPort,
    httpPort,
    siteMasters,
    tls,
    clusterSecretFile: pathVar(RELAY_ENV.clusterSecretFile),
    routerTokenFile: pathVar(RELAY_ENV.routerTokenFile),
    kv: parseKv(get, pathVar, { site, bindAddr, bindPort, httpPort }),
  };
}

const MAP_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** KV_MAPS and its companions; undefined when KV_MAPS is unset. */
function parseKv(
  get: (name: string) => string | undefined,
  pathVar: (name: string) => string | undefined,
  node: { site: string; bindAddr: string; bindPort: number; httpPort: number },
): KvConfig | undefined {
  const list = get(RELAY_ENV.kvMaps);
  const others = [
    RELAY_ENV.kvPort,
    RELAY_ENV.kvTokenFile,
    RELAY_ENV.kvBackupSites,
    RELAY_ENV.kvTlsCert,
    RELAY_ENV.kvTlsKey,
  ].filter((n) => get(n));
  if (list === undefined) {
    if (others.length > 0)
      throw new ConfigError(
        `${others.join(", ")} set without ${RELAY_ENV.kvMaps}: name the maps, or unset them`,
      );
    return undefined;
  }
  const maps = list.split(",").map((m) => m.trim());
  const bad = maps.find((m) => !MAP_NAME.test(m));
  if (bad !== undefined)
    throw new ConfigError(
      `${RELAY_ENV.kvMaps}: "${clip(bad)}" is not a map name (1..64 characters of letters, digits, '.', '_' or '-', comma-separated)`,
    );
  if (new Set(maps).size !== maps.length) throw new ConfigError(`${RELAY_ENV.kvMaps}: a map is named twice`);
  if (maps.length > MAX_KV_MAPS)
    throw new ConfigError(`${RELAY_ENV.kvMaps}: ${maps.length} maps, at most ${MAX_KV_MAPS}`);
  const port = intVar(get(RELAY_ENV.kvPort), RELAY_ENV.kvPort, DEFAULT_KV_PORT, 1, 65535);
  if (port === node.bindPort || port === node.httpPort)
    throw new ConfigError(`${RELAY_ENV.kvPort}: ${port} is also BIND_PORT or HTTP_PORT; use another port`);
  const tokenFile = pathVar(RELAY_ENV.kvTokenFile);
  const loopback = node.bindAddr.startsWith("127.") || node.bindAddr === "::1";
  if (tokenFile === undefined && !loopback)
    throw new ConfigError(
      `${RELAY_ENV.kvTokenFile} is not set: the maps' API on ${node.bindAddr} needs a bearer token file (only a loopback node may run it open)`,
    );
  const sites = get(RELAY_ENV.kvBackupSites);
  let backupSites: string[] | undefined;
  if (sites !== undefined) {
    backupSites = sites.split(",").map((s) => s.trim());
    const badSite = backupSites.find((s) => !DNS_LABEL.test(s) || s === node.site);
    if (badSite !== undefined)
      throw new ConfigError(
        `${RELAY_ENV.kvBackupSites}: "${clip(badSite)}" is not another site's name (DNS-1123 labels, comma-separated, not ${node.site} itself)`,
      );
  }
  const cert = pathVar(RELAY_ENV.kvTlsCert);
  const key = pathVar(RELAY_ENV.kvTlsKey);
  if ((cert === undefined) !== (key === undefined))
    throw new ConfigError(
      `the kv API's TLS is half configured: ${cert === undefined ? RELAY_ENV.kvTlsCert : RELAY_ENV.kvTlsKey} missing; set both ${RELAY_ENV.kvTlsCert} and ${RELAY_ENV.kvTlsKey} or neither`,
    );
  const tls = cert !== undefined && key !== undefined ? { cert, key } : undefined;
  return { maps, port, tokenFile, backupSites, tls };
}

function intVar(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,6}$/.test(value)) {
    throw new ConfigError(`${name}: "${clip(value)}" is not an integer in ${min}..${max}`);
  }
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`${name}: ${n} is outside ${min}..${max}`);
  return n;
}

/** Keeps error messages one short line even for hostile input. */
function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}
