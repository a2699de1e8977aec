// `relay chat` and `relay probe` join a site as a member. In a pod they read the node's env
// (through the same contract as `relay node`); flags override it for local runs.
import { ConfigError } from "../../contract/initial-hosts.js";
import { parseRelayEnv, RELAY_ENV, type RelayNodeConfig } from "../../contract/relay-env.js";

export interface MemberFlags {
  readonly site?: string;
  readonly cluster?: string;
  readonly members?: string;
  readonly dnsQuery?: string;
  readonly routers?: string;
  readonly bind?: string;
}

/** Which flag replaces which variable, for error messages. */
const FLAG_FOR: Record<string, string> = {
  [RELAY_ENV.site]: "--site",
  [RELAY_ENV.staticMembers]: "--members",
  [RELAY_ENV.dnsQuery]: "--dns-query",
  [RELAY_ENV.tunnelInitialHosts]: "--routers",
  [RELAY_ENV.bindAddr]: "--bind",
  [RELAY_ENV.cluster]: "--cluster",
};

export const DEFAULT_CLUSTER_NAME = "relay";

export function memberConfig(
  flags: MemberFlags,
  name: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): RelayNodeConfig {
  const e: Record<string, string | undefined> = { ...env };
  if (flags.site !== undefined) e[RELAY_ENV.site] = flags.site;
  if (flags.cluster !== undefined) e[RELAY_ENV.cluster] = flags.cluster;
  else e[RELAY_ENV.cluster] ??= DEFAULT_CLUSTER_NAME;
  if (flags.members !== undefined) {
    e[RELAY_ENV.staticMembers] = flags.members;
    delete e[RELAY_ENV.dnsQuery];
  } else if (flags.dnsQuery !== undefined) {
    e[RELAY_ENV.dnsQuery] = flags.dnsQuery;
    delete e[RELAY_ENV.staticMembers];
  }
  if (flags.routers !== undefined) e[RELAY_ENV.tunnelInitialHosts] = flags.routers;
  if (flags.bind !== undefined) e[RELAY_ENV.bindAddr] = flags.bind;
  e[RELAY_ENV.nodeName] = name;
  // This member serves no HTTP; the node's HTTP_PORT must not collide with anything here.
  delete e[RELAY_ENV.httpPort];
  try {
    return parseRelayEnv(e);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const hit = Object.keys(FLAG_FOR).find(
      (v) => err.message.startsWith(v) || err.message.includes(` ${v} `),
    );
    throw new ConfigError(hit ? `${err.message} (or pass ${FLAG_FOR[hit]})` : err.message);
  }
}
