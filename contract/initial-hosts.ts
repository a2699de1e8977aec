// The `TUNNEL_INITIAL_HOSTS` syntax shared by the constructs (render) and the runtime (parse):
// `host[port],host[port]`, as JGroups writes it. No dependencies: both halves import this file.

import { ConfigError } from "./errors.js";

export { ConfigError };

/** One router endpoint. */
export interface RouterEndpoint {
  readonly host: string;
  readonly port: number;
}

const ENTRY = /^([^[\],\s]+)\[(\d{1,5})\]$/;

/** Renders endpoints as `host[port],host[port]` (order kept). */
export function formatInitialHosts(endpoints: readonly RouterEndpoint[]): string {
  return endpoints.map((e) => formatEndpoint(e)).join(",");
}

/** `host[port]` for one endpoint. */
export function formatEndpoint(e: RouterEndpoint): string {
  return `${e.host}[${e.port}]`;
}

/**
 * Parses `host[port],host[port]`. Whitespace around entries is ignored; an empty list, a missing
 * port or a port outside 1..65535 is a ConfigError naming `variable`.
 */
export function parseInitialHosts(value: string, variable = "TUNNEL_INITIAL_HOSTS"): RouterEndpoint[] {
  const entries = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (entries.length === 0) {
    throw new ConfigError(`${variable} is empty: expected host[port],host[port] (e.g. 127.0.0.1[12001])`);
  }
  return entries.map((entry) => {
    const m = ENTRY.exec(entry);
    if (!m) {
      throw new ConfigError(`${variable}: "${entry}" is not host[port] (e.g. router.example.com[12001])`);
    }
    const port = Number(m[2]);
    if (port < 1 || port > 65535) {
      throw new ConfigError(`${variable}: port ${port} in "${entry}" is outside 1..65535`);
    }
    return { host: m[1]!, port };
  });
}
