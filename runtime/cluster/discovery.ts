// How a member finds the other members of its site: a static list (local runs) or the A records
// of the site's headless Service (Kubernetes). Discovery only returns candidate addresses; the
// membership protocol finds out who is behind each one.
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import { ConfigError, parseInitialHosts } from "../../contract/initial-hosts.js";

/** A candidate address of a member. */
export interface DiscoveredAddress {
  readonly host: string;
  readonly port: number;
}

/** Source of candidate members; queried at join and then every `discoveryIntervalMs`. */
export interface Discovery {
  find(): Promise<DiscoveredAddress[]>;
}

/** A fixed list, given as endpoints or as `host[port],host[port]` text. */
export class StaticDiscovery implements Discovery {
  readonly addresses: readonly DiscoveredAddress[];

  /** `variable` names the setting in error messages when `list` is text. */
  constructor(list: string | readonly DiscoveredAddress[], variable = "cluster initial hosts") {
    this.addresses = typeof list === "string" ? parseInitialHosts(list, variable) : [...list];
  }

  async find(): Promise<DiscoveredAddress[]> {
    return [...this.addresses];
  }
}

/** Options of DnsDiscovery. */
export interface DnsDiscoveryOptions {
  /**
   * Resolver to query. Give one whose `setServers([...])` was called to use a specific DNS server.
   * @default a new `dns.promises.Resolver` using the system's servers
   */
  readonly resolver?: Pick<Resolver, "resolve4">;
  /**
   * DNS servers (`ip` or `ip:port`) for the default resolver; ignored when `resolver` is given.
   * @default the system's servers
   */
  readonly servers?: readonly string[];
}

/**
 * The IPv4 A records of `name` (the headless Service of the site, `DNS_QUERY`), each with `port`.
 * Not found (NXDOMAIN / no data) yields an empty list: at startup the Service often has no ready
 * endpoints yet. Other resolver errors propagate so the caller can log them.
 */
export class DnsDiscovery implements Discovery {
  readonly #resolver: Pick<Resolver, "resolve4">;

  constructor(
    readonly name: string,
    readonly port: number,
    options: DnsDiscoveryOptions = {},
  ) {
    if (name.trim() === "") throw new ConfigError("DnsDiscovery: name (DNS_QUERY) is empty");
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ConfigError(`DnsDiscovery: port ${port} is outside 1..65535`);
    }
    if (options.resolver) {
      this.#resolver = options.resolver;
    } else {
      const r = new Resolver({ timeout: 2000, tries: 2 });
      if (options.servers) r.setServers([...options.servers]);
      this.#resolver = r;
    }
  }

  async find(): Promise<DiscoveredAddress[]> {
    // An IP literal needs no lookup (handy for local runs with DNS_QUERY=127.0.0.1).
    if (isIP(this.name) === 4) return [{ host: this.name, port: this.port }];
    try {
      const ips = await this.#resolver.resolve4(this.name);
      return [...new Set(ips)].sort().map((host) => ({ host, port: this.port }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "ENOTFOUND" || code === "ENODATA") return [];
      throw err;
    }
  }
}
