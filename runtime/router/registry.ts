// Who is registered where: group -> member key (addressKey) -> registration. Several registrations
// may share one connection, in one group or several. Every change bumps `generation`, which lets
// connections cache routing decisions (see RouteCache) and drop them when anything changes.
// Registrations are also counted per site identity (the per-identity cap of policy.ts).
import { addressKey } from "../protocol/codec.js";
import type { Address } from "../protocol/types.js";
import type { Identity } from "./identity.js";

/** The side of a connection the registry needs; the router's ClientConnection implements it. */
export interface RegistrationOwner {
  readonly registrations: Set<Registration>;
  /** Who the connection is (set before its first registration, never changed after). */
  readonly auth?: { readonly identity: Identity | null };
}

function siteOf(owner: RegistrationOwner): string | null {
  const id = owner.auth?.identity;
  return id && id.kind === "site" ? id.site : null;
}

export interface Registration<C extends RegistrationOwner = RegistrationOwner> {
  readonly group: Group<C>;
  readonly key: string;
  readonly addr: Address;
  readonly conn: C;
  readonly logicalName: string | null;
  readonly physicalAddr: Address | null;
}

export class Group<C extends RegistrationOwner = RegistrationOwner> {
  /** Insertion order = registration order (GET_MBRS lists members in this order). */
  readonly members = new Map<string, Registration<C>>();
  constructor(readonly name: string) {}
}

export class Registry<C extends RegistrationOwner> {
  readonly #groups = new Map<string, Group<C>>();
  /** Registrations per site identity (bounded by the sites that authenticated). */
  readonly #perSite = new Map<string, number>();
  #registrations = 0;
  /** Incremented on every change; cached routing decisions older than this are stale. */
  generation = 0;

  get groups(): ReadonlyMap<string, Group<C>> {
    return this.#groups;
  }

  get size(): number {
    return this.#registrations;
  }

  group(name: string): Group<C> | undefined {
    return this.#groups.get(name);
  }

  /** Registrations held by connections of site identity `site`. */
  heldBySite(site: string): number {
    return this.#perSite.get(site) ?? 0;
  }

  #count(owner: C, delta: 1 | -1): void {
    const site = siteOf(owner);
    if (site === null) return;
    const n = (this.#perSite.get(site) ?? 0) + delta;
    if (n <= 0) this.#perSite.delete(site);
    else this.#perSite.set(site, n);
  }

  /** Adds or overwrites (group, addr). Returns the new registration. */
  register(
    groupName: string,
    addr: Address,
    conn: C,
    logicalName: string | null,
    physicalAddr: Address | null,
  ): Registration<C> {
    let group = this.#groups.get(groupName);
    if (!group) {
      group = new Group<C>(groupName);
      this.#groups.set(groupName, group);
    }
    const key = addressKey(addr);
    const previous = group.members.get(key);
    if (previous) {
      previous.conn.registrations.delete(previous);
      this.#count(previous.conn, -1);
      this.#registrations--;
    }
    const reg: Registration<C> = { group, key, addr, conn, logicalName, physicalAddr };
    // Overwriting keeps the member's place in the group (Map.set on an existing key).
    group.members.set(key, reg);
    conn.registrations.add(reg);
    this.#count(conn, 1);
    this.#registrations++;
    this.generation++;
    return reg;
  }

  /** Removes (group, addr) whoever registered it. Returns the removed registration, if any. */
  unregister(groupName: string, addr: Address): Registration<C> | undefined {
    const group = this.#groups.get(groupName);
    const reg = group?.members.get(addressKey(addr));
    if (reg) this.remove(reg);
    return reg;
  }

  /** Removes one registration; deletes its group when it becomes empty. */
  remove(reg: Registration<C>): void {
    const { group } = reg;
    if (group.members.get(reg.key) !== reg) return;
    group.members.delete(reg.key);
    reg.conn.registrations.delete(reg);
    this.#count(reg.conn, -1);
    this.#registrations--;
    if (group.members.size === 0) this.#groups.delete(group.name);
    this.generation++;
  }

  /** Removes every registration of a connection and returns them (in registration order). */
  removeConnection(conn: C): Registration<C>[] {
    // A connection only ever holds registrations made through this registry, i.e. Registration<C>.
    const regs = [...conn.registrations] as Registration<C>[];
    for (const reg of regs) this.remove(reg);
    return regs;
  }
}
