// The command line of a GossipRouter container: rendered by the GossipRouter construct and read by
// `relay router` (runtime/cli/commands/router.ts), the second seam between the two halves beside
// relay-env.ts. The flag names, their values and what they mean are defined here once; the CLI
// declares them to commander from ROUTER_FLAGS, so the two sides cannot drift. No dependencies
// besides the siblings in contract/.

import { ConfigError } from "./errors.js";
import { ROUTER_HTTP_PORT, ROUTER_PORT } from "./ports.js";

/** The `relay` command that runs a GossipRouter (the container's first argument). */
export const ROUTER_COMMAND = "router";

/** One flag of the contract: its name, its value's placeholder (none = a switch) and its help. */
export interface RouterFlag {
  readonly flag: `--${string}`;
  readonly value?: `<${string}>`;
  readonly description: string;
}

/**
 * The flags of the contract. Each key is the property commander derives from the flag
 * (`--http-port` -> `httpPort`), so the CLI's parsed options use the same names.
 */
export const ROUTER_FLAGS = {
  port: { flag: "--port", value: "<port>", description: "gossip port (0 = ephemeral)" },
  httpPort: {
    flag: "--http-port",
    value: "<port>",
    description: "port of /healthz and /metrics (0 = ephemeral)",
  },
  tlsCert: {
    flag: "--tls-cert",
    value: "<file>",
    description: "PEM certificate: serve TLS instead of plain TCP",
  },
  tlsKey: { flag: "--tls-key", value: "<file>", description: "PEM private key of --tls-cert" },
  tlsCa: { flag: "--tls-ca", value: "<file>", description: "PEM CA bundle that signs client certificates" },
  tlsClientAuth: {
    flag: "--tls-client-auth",
    description: "refuse clients without a certificate signed by --tls-ca",
  },
  authTokens: {
    flag: "--auth-tokens",
    value: "<dir>",
    description:
      "without TLS: one file per site (file name = site, content = its token); clients must present one",
  },
  allowGroups: {
    flag: "--allow-groups",
    value: "<spec>",
    description:
      "which site identities may use which groups: group=site,site;group=site (default: every identity, every group)",
  },
  // Connection hygiene and memory limits (runtime/router/options.ts has the defaults).
  expiry: {
    flag: "--expiry",
    value: "<ms>",
    description: "idle timeout: close connections silent for this long (0 = never)",
  },
  maxConnections: {
    flag: "--max-connections",
    value: "<n>",
    description: "open connections in total (lowered to fit the open-file limit)",
  },
  maxConnectionsPerAddress: {
    flag: "--max-connections-per-address",
    value: "<n>",
    description: "open connections from one source address (IPv6: per /64)",
  },
  tlsHandshakeTimeout: {
    flag: "--tls-handshake-timeout",
    value: "<ms>",
    description: "close TLS connections that have not finished the handshake this long after connecting",
  },
  firstFrameTimeout: {
    flag: "--first-frame-timeout",
    value: "<ms>",
    description: "close connections that sent no complete frame this long after connecting (0 = never)",
  },
  frameTimeout: {
    flag: "--frame-timeout",
    value: "<ms>",
    description: "close connections whose frame is not complete this long after its first byte (0 = never)",
  },
  maxPartialBytes: {
    flag: "--max-partial-bytes",
    value: "<bytes>",
    description:
      "bytes of partly received frames all connections together may hold; over it the largest holder is closed",
  },
  maxGroups: { flag: "--max-groups", value: "<n>", description: "groups the router holds" },
  maxRegistrations: {
    flag: "--max-registrations",
    value: "<n>",
    description: "registrations the router holds, all connections together",
  },
  maxGroupName: {
    flag: "--max-group-name",
    value: "<chars>",
    description: "longest group name a REGISTER may carry",
  },
  maxLogicalName: {
    flag: "--max-logical-name",
    value: "<chars>",
    description: "longest logical name a REGISTER may carry",
  },
  metricsGroups: {
    flag: "--metrics-groups",
    value: "<n>",
    description: "groups with their own registrations{group} series in /metrics, the largest (0 = none)",
  },
  congestionGrace: {
    flag: "--congestion-grace",
    value: "<ms>",
    description:
      "a receiver over --max-queue this long stops pausing its senders; multicast copies for it are dropped until it drains",
  },
} as const satisfies Record<string, RouterFlag>;

export type RouterFlagName = keyof typeof ROUTER_FLAGS;

/** `--port <port>`: the flag as commander's `.option()` takes it. */
export function routerOptionFlags(name: RouterFlagName): string {
  const f: RouterFlag = ROUTER_FLAGS[name];
  return f.value ? `${f.flag} ${f.value}` : f.flag;
}

/** TLS material of the router's gossip port (paths inside the container). */
export interface RouterTlsArgs {
  readonly cert: string;
  readonly key: string;
  /** CA bundle that signs client certificates; required with `clientAuth`. */
  readonly ca?: string;
  /** Refuse clients without a certificate signed by `ca`. */
  readonly clientAuth: boolean;
}

/** Which site identities may register in, send to and list which groups (router authorization). */
export type AllowGroups = Readonly<Record<string, readonly string[]>>;

/** What a router container is started with. */
export interface RouterArgsSpec {
  /** @default ROUTER_PORT (12001) */
  readonly port?: number;
  /** @default ROUTER_HTTP_PORT (9000) */
  readonly httpPort?: number;
  /** @default no TLS (plain TCP) */
  readonly tls?: RouterTlsArgs;
  /** Directory of per-site token files (token mode, without TLS). @default none */
  readonly authTokens?: string;
  /** @default every authenticated identity may use every group */
  readonly allowGroups?: AllowGroups;
}

const GROUP_NAME = /^[^=;,\s]{1,256}$/;
const SITE_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `relay-bridge=nyc,sfc;other=nyc` for `{ "relay-bridge": ["nyc", "sfc"], other: ["nyc"] }`. */
export function renderAllowGroups(allow: AllowGroups): string {
  return Object.entries(allow)
    .map(([group, sites]) => `${group}=${sites.join(",")}`)
    .join(";");
}

/**
 * Reads `--allow-groups`: `group=site,site;group=site`. Group names have no `=`, `;`, `,` or
 * spaces (at most 256 characters); sites are DNS-1123 labels; each group once, with at least one
 * site. ConfigError naming the flag and the bad entry otherwise.
 */
export function parseAllowGroups(spec: string): AllowGroups {
  const flag = ROUTER_FLAGS.allowGroups.flag;
  const out: Record<string, string[]> = {};
  for (const entry of spec.split(";")) {
    if (entry.trim() === "") continue;
    const eq = entry.indexOf("=");
    const group = eq === -1 ? "" : entry.slice(0, eq).trim();
    if (!GROUP_NAME.test(group)) {
      throw new ConfigError(`${flag}: "${entry.slice(0, 64)}" is not group=site,site (a group name first)`);
    }
    if (Object.hasOwn(out, group)) throw new ConfigError(`${flag}: group "${group}" is listed twice`);
    const sites = entry
      .slice(eq + 1)
      .split(",")
      .map((x) => x.trim());
    for (const site of sites) {
      if (!SITE_LABEL.test(site)) {
        throw new ConfigError(
          `${flag}: "${site.slice(0, 64)}" in group "${group}" is not a site name (a DNS-1123 label)`,
        );
      }
    }
    out[group] = sites;
  }
  if (Object.keys(out).length === 0) throw new ConfigError(`${flag}: no group=site entry`);
  return out;
}

/** The TLS flags as they were given (any of them may be missing). */
export interface RouterTlsFlags {
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsCa?: string | undefined;
  readonly tlsClientAuth?: boolean | undefined;
}

/**
 * What the TLS flags mean together: none of them = plain TCP (undefined); otherwise both
 * --tls-cert and --tls-key, and --tls-client-auth only with --tls-ca. ConfigError otherwise.
 */
export function routerTlsFromFlags(o: RouterTlsFlags): RouterTlsArgs | undefined {
  if (!o.tlsCert && !o.tlsKey && !o.tlsCa && !o.tlsClientAuth) return undefined;
  if (!o.tlsCert || !o.tlsKey) {
    throw new ConfigError(`TLS needs both ${ROUTER_FLAGS.tlsCert.flag} and ${ROUTER_FLAGS.tlsKey.flag}`);
  }
  if (o.tlsClientAuth && !o.tlsCa) {
    throw new ConfigError(
      `${ROUTER_FLAGS.tlsClientAuth.flag} needs ${ROUTER_FLAGS.tlsCa.flag} (the CA that signs clients)`,
    );
  }
  return {
    cert: o.tlsCert,
    key: o.tlsKey,
    ...(o.tlsCa ? { ca: o.tlsCa } : {}),
    clientAuth: !!o.tlsClientAuth,
  };
}

/**
 * The container args of a router: `router --port P --http-port H [--tls-cert C --tls-key K
 * [--tls-ca A] [--tls-client-auth]]`. Values are passed through (tokens allowed).
 */
export function renderRouterArgs(spec: RouterArgsSpec): string[] {
  const args = [
    ROUTER_COMMAND,
    ROUTER_FLAGS.port.flag,
    String(spec.port ?? ROUTER_PORT),
    ROUTER_FLAGS.httpPort.flag,
    String(spec.httpPort ?? ROUTER_HTTP_PORT),
  ];
  if (spec.tls) {
    // Checked with the CLI's own rule, so a rendered command line is one the router accepts.
    const tls = routerTlsFromFlags({
      tlsCert: spec.tls.cert,
      tlsKey: spec.tls.key,
      tlsCa: spec.tls.ca,
      tlsClientAuth: spec.tls.clientAuth,
    })!;
    args.push(ROUTER_FLAGS.tlsCert.flag, tls.cert, ROUTER_FLAGS.tlsKey.flag, tls.key);
    if (tls.ca !== undefined) args.push(ROUTER_FLAGS.tlsCa.flag, tls.ca);
    if (tls.clientAuth) args.push(ROUTER_FLAGS.tlsClientAuth.flag);
  }
  if (spec.authTokens !== undefined) args.push(ROUTER_FLAGS.authTokens.flag, spec.authTokens);
  if (spec.allowGroups !== undefined) {
    const rendered = renderAllowGroups(spec.allowGroups);
    parseAllowGroups(rendered); // the router's own rule: a rendered spec is one it accepts
    args.push(ROUTER_FLAGS.allowGroups.flag, rendered);
  }
  return args;
}

/** A router command line read back: every default applied. */
export interface ParsedRouterArgs {
  readonly port: number;
  readonly httpPort: number;
  readonly tls: RouterTlsArgs | undefined;
  readonly authTokens: string | undefined;
  readonly allowGroups: AllowGroups | undefined;
}

/** Parses a port value: an integer in 0..65535 (0 = ephemeral), as `relay router` accepts it. */
function portValue(flag: string, value: string): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 0 && n <= 65535)) throw new ConfigError(`${flag} must be an integer between 0 and 65535.`);
  return n;
}

/**
 * Reads back what renderRouterArgs renders: `router` followed by the contract's flags (`--flag
 * value` or `--flag=value`). Flags left out take the CLI's defaults; a flag outside the contract,
 * a missing value or a bad port is a ConfigError naming the flag.
 */
export function parseRouterArgs(argv: readonly string[]): ParsedRouterArgs {
  if (argv[0] !== ROUTER_COMMAND) {
    throw new ConfigError(`a router command line starts with "${ROUTER_COMMAND}", got "${argv[0] ?? ""}"`);
  }
  const byFlag = new Map<string, RouterFlagName>(
    Object.entries(ROUTER_FLAGS).map(([name, f]) => [f.flag, name as RouterFlagName]),
  );
  const values: Partial<Record<RouterFlagName, string | true>> = {};
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const name = byFlag.get(flag);
    if (name === undefined) {
      throw new ConfigError(`${flag}: not a flag of the router contract (${[...byFlag.keys()].join(", ")})`);
    }
    const spec: RouterFlag = ROUTER_FLAGS[name];
    if (!spec.value) {
      if (eq !== -1) throw new ConfigError(`${flag} takes no value`);
      values[name] = true;
      continue;
    }
    const value = eq !== -1 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`${flag} needs a value ${spec.value}`);
    values[name] = value;
  }
  const str = (name: RouterFlagName): string | undefined => {
    const v = values[name];
    return typeof v === "string" ? v : undefined;
  };
  const port = str("port");
  const httpPort = str("httpPort");
  return {
    port: port === undefined ? ROUTER_PORT : portValue(ROUTER_FLAGS.port.flag, port),
    httpPort: httpPort === undefined ? ROUTER_HTTP_PORT : portValue(ROUTER_FLAGS.httpPort.flag, httpPort),
    tls: routerTlsFromFlags({
      tlsCert: str("tlsCert"),
      tlsKey: str("tlsKey"),
      tlsCa: str("tlsCa"),
      tlsClientAuth: values.tlsClientAuth === true,
    }),
    authTokens: str("authTokens"),
    allowGroups: str("allowGroups") === undefined ? undefined : parseAllowGroups(str("allowGroups")!),
  };
}
