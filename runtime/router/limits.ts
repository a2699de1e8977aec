// Limits on what REGISTER may make the router keep: registrations per connection, groups and
// registrations router-wide, and the length of the names stored. A refused REGISTER changes
// nothing (no reply: the protocol has none), is counted in `refused_total{reason}` and logged at
// most once a second per reason. Re-registering a member that is already there never grows
// anything, so it is only subject to the name lengths.
import type { Logger } from "../observability/log.js";
import { addressKey } from "../protocol/codec.js";
import type { GossipData } from "../protocol/types.js";
import type { ClientConnection } from "./connection.js";
import { clip, RateLimitedLog } from "./log-limit.js";
import type { ResolvedRouterOptions } from "./options.js";
import type { Registry } from "./registry.js";
import type { RefusedReason, RouterCounters } from "./stats.js";

/** Registrations one connection may hold (TUNNEL holds one per group; RELAY site masters a few). */
export const MAX_REGISTRATIONS_PER_CONNECTION = 4096;

export type RegistrationLimits = Pick<
  ResolvedRouterOptions,
  "maxGroups" | "maxRegistrations" | "maxGroupNameLength" | "maxLogicalNameLength"
>;

/** Why REGISTER(group, addr) from `conn` must be refused, or null when it may be stored. */
export function registrationRefusal(
  limits: RegistrationLimits,
  registry: Registry<ClientConnection>,
  conn: ClientConnection,
  data: Pick<GossipData, "group" | "addr" | "logicalName">,
): RefusedReason | null {
  const { group: name, addr, logicalName } = data;
  if (name === null || addr === null) return null; // ignored elsewhere, for its own reason
  if (name.length > limits.maxGroupNameLength) return "group-name-too-long";
  if (logicalName !== null && logicalName.length > limits.maxLogicalNameLength)
    return "logical-name-too-long";
  const group = registry.group(name);
  const existing = group?.members.get(addressKey(addr));
  if (existing?.conn === conn) return null;
  if (conn.registrations.size >= MAX_REGISTRATIONS_PER_CONNECTION) return "too-many-registrations";
  if (existing) return null; // a takeover: the router-wide totals do not change
  if (!group && registry.groups.size >= limits.maxGroups) return "max-groups";
  if (registry.size >= limits.maxRegistrations) return "max-registrations";
  return null;
}

/** The dispatcher's one call for the limits: true when the REGISTER was refused (and counted). */
export class RegistrationGate {
  readonly #limits: RegistrationLimits;
  readonly #registry: Registry<ClientConnection>;
  readonly #counters: RouterCounters;
  readonly #log: RateLimitedLog;

  constructor(
    limits: RegistrationLimits,
    registry: Registry<ClientConnection>,
    counters: RouterCounters,
    log: Logger | RateLimitedLog,
  ) {
    this.#limits = limits;
    this.#registry = registry;
    this.#counters = counters;
    this.#log = log instanceof RateLimitedLog ? log : new RateLimitedLog(log);
  }

  refuses(conn: ClientConnection, data: Pick<GossipData, "group" | "addr" | "logicalName">): boolean {
    const reason = registrationRefusal(this.#limits, this.#registry, conn, data);
    if (reason === null) return false;
    this.#counters.refused(reason);
    this.#log.warn(
      `register:${reason}`,
      {
        conn: conn.id,
        remote: conn.remote,
        reason,
        group: clip(data.group),
        member: clip(data.logicalName),
        groups: this.#registry.groups.size,
        registrations: this.#registry.size,
        held: conn.registrations.size,
      },
      "REGISTER refused",
    );
    return true;
  }
}
