// Who is on the bridge, merged over every router: which sites exist, which members act as their
// site masters, and through which routers each is reachable. Pure bookkeeping (no I/O, no timers;
// time is passed in): the channel feeds it GET_MBRS answers (merged over the routers by the tunnel
// client), the traffic it receives, SUSPECTs and announcements, and publishes the route changes.
//
// Model: a remote site master registers with every router (like JGroups TUNNEL), so it is taken to
// be reachable through each router we are registered with, except the routers that reported it
// with a SUSPECT (until it is heard through that router again, or a later snapshot still lists it
// once the suspicion is older than `suspectHoldMs`).
//
// Flap guard: a SUSPECT from one router does not take a site down while another router still has
// its site master. Only when every router we use has suspected it does it stop being a target; it
// leaves the route when a fresh snapshot no longer lists it (the channel re-queries right away).
import type { RouteInfo } from "./control.js";
import { pickFor } from "./routing.js";

/** A site master of another site as the bridge shows it. `A` is the transport's address type. */
export interface BridgeMember<A> {
  /** Address equality key (the router's registration key). */
  readonly key: string;
  readonly addr: A;
  readonly site: string;
  readonly name: string;
}

interface Entry<A> {
  member: BridgeMember<A>;
  /** router -> when it sent a SUSPECT for this member. */
  readonly suspectedVia: Map<string, number>;
}

/** A route to a site changed: up/down, its router set or its (reachable) site masters. */
export type RouteChange = RouteInfo;

/** How long a SUSPECT from one router outweighs a merged snapshot that still lists the member. */
export const DEFAULT_SUSPECT_HOLD_MS = 5000;
/**
 * Remote sites remembered at once. A site with no member on the bridge any more is still listed
 * as down (so its senders see it unreachable) until this many sites are known; then the oldest
 * such site is forgotten. Keeps the maps keyed by remote site names bounded.
 */
export const MAX_REMEMBERED_SITES = 256;
/** targetFor() answers kept at once (senders x sites); all forgotten when full. */
const MAX_CACHED_TARGETS = 4096;

export class BridgeMembership<A> {
  readonly #localSite: string;
  readonly #suspectHoldMs: number;
  readonly #entries = new Map<string, Entry<A>>();
  /** site -> site-master names in the order of the latest announcement. */
  readonly #announced = new Map<string, readonly string[]>();
  #routers: readonly string[] = [];
  #last = new Map<string, string>();
  /**
   * targetFor() answers (site + sender -> member), computed once per sender and forgotten at every
   * change of entries, routers or announcements (each such change goes through #settle or announce).
   */
  readonly #targets = new Map<string, BridgeMember<A> | undefined>();
  /** sites(), forgotten at the same changes. */
  #sites: string[] | null = null;

  constructor(localSite: string, suspectHoldMs = DEFAULT_SUSPECT_HOLD_MS) {
    this.#localSite = localSite;
    this.#suspectHoldMs = suspectHoldMs;
  }

  /** The routers we are currently registered with (everything is reached through them). */
  setRouters(routers: readonly string[]): RouteChange[] {
    this.#routers = [...routers].sort();
    return this.#settle();
  }

  /** A GET_MBRS answer merged over the routers: the complete list of bridge members right now. */
  snapshot(members: readonly BridgeMember<A>[], now: number): RouteChange[] {
    const listed = new Set<string>();
    for (const m of members) {
      if (m.site === this.#localSite) continue;
      listed.add(m.key);
      const e = this.#upsert(m);
      for (const [router, at] of e.suspectedVia) {
        if (now - at >= this.#suspectHoldMs) e.suspectedVia.delete(router);
      }
    }
    for (const key of [...this.#entries.keys()]) {
      if (!listed.has(key)) this.#entries.delete(key);
    }
    return this.#settle();
  }

  /** A frame from `m` arrived through `router`: it is alive and registered there. */
  heard(router: string, m: BridgeMember<A>): RouteChange[] {
    if (m.site === this.#localSite) return [];
    // The common case, once per envelope: a known member heard through a router that did not
    // suspect it. Nothing changes, so the routes are not recomputed.
    const known = this.#entries.get(m.key);
    if (known && !known.suspectedVia.has(router)) return [];
    this.#upsert(m).suspectedVia.delete(router);
    return this.#settle();
  }

  /** `router` reported `key` as gone from it. */
  suspect(key: string, router: string, now: number): RouteChange[] {
    const e = this.#entries.get(key);
    if (!e) return [];
    e.suspectedVia.set(router, now);
    return this.#settle();
  }

  /** The member said goodbye (graceful): forget it at once. */
  remove(key: string): RouteChange[] {
    this.#entries.delete(key);
    return this.#settle();
  }

  /** A site master announced its site's site masters (preference order). */
  announce(site: string, siteMasters: readonly string[]): void {
    if (site === this.#localSite) return;
    this.#announced.set(site, [...siteMasters]);
    this.#targets.clear();
  }

  /** Forget everything (we stopped being a site master). Returns the routes that changed. */
  clear(): RouteChange[] {
    this.#entries.clear();
    this.#announced.clear();
    this.#routers = [];
    return this.#settle();
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Remote sites with at least one reachable site master (computed once per change). */
  sites(): readonly string[] {
    this.#sites ??= this.routes()
      .filter((r) => r.up)
      .map((r) => r.site);
    return this.#sites;
  }

  /** Reachable members of `site`, announced site masters first. */
  membersOf(site: string): BridgeMember<A>[] {
    return this.#reachable(site).map((e) => e.member);
  }

  /**
   * The site master of `site` that receives traffic of sender `originName`: among the reachable
   * members the announced site masters are preferred; a stable hash of the sender spreads senders
   * over several site masters while keeping each sender on one path (FIFO).
   */
  targetFor(site: string, originName: string): BridgeMember<A> | undefined {
    const key = `${site}\0${originName}`;
    if (this.#targets.has(key)) return this.#targets.get(key);
    const target = this.#pickTarget(site, originName);
    if (this.#targets.size >= MAX_CACHED_TARGETS) this.#targets.clear();
    this.#targets.set(key, target);
    return target;
  }

  #pickTarget(site: string, originName: string): BridgeMember<A> | undefined {
    const pool = this.#reachable(site);
    const announced = this.#announced.get(site) ?? [];
    const preferred = pool.filter((e) => announced.includes(e.member.name));
    return pickFor(preferred.length > 0 ? preferred : pool, originName)?.member;
  }

  /** Route status of every remote site seen since the last clear() (down ones included). */
  routes(): RouteInfo[] {
    const sites = new Set<string>(this.#last.keys());
    for (const e of this.#entries.values()) sites.add(e.member.site);
    return [...sites].sort().map((site) => this.#route(site));
  }

  #upsert(m: BridgeMember<A>): Entry<A> {
    let e = this.#entries.get(m.key);
    if (!e) {
      e = { member: m, suspectedVia: new Map() };
      this.#entries.set(m.key, e);
    } else e.member = m;
    return e;
  }

  #via(e: Entry<A>): string[] {
    return this.#routers.filter((r) => !e.suspectedVia.has(r));
  }

  #reachable(site: string): Entry<A>[] {
    const announced = this.#announced.get(site) ?? [];
    const rank = (e: Entry<A>) => {
      const i = announced.indexOf(e.member.name);
      return i < 0 ? announced.length : i;
    };
    return [...this.#entries.values()]
      .filter((e) => e.member.site === site && this.#via(e).length > 0)
      .sort(
        (a, b) => rank(a) - rank(b) || cmp(a.member.name, b.member.name) || cmp(a.member.key, b.member.key),
      );
  }

  #route(site: string): RouteInfo {
    const reachable = this.#reachable(site);
    const routers = new Set<string>();
    for (const e of reachable) for (const r of this.#via(e)) routers.add(r);
    // Flap guard: suspected by every router but still listed in the last snapshot = still up.
    const listed = [...this.#entries.values()].some((e) => e.member.site === site);
    return {
      site,
      up: reachable.length > 0 || (listed && this.#routers.length > 0),
      routers: [...routers].sort(),
      siteMasters: reachable.map((e) => e.member.name),
    };
  }

  #settle(): RouteChange[] {
    this.#targets.clear();
    this.#sites = null;
    const changes: RouteChange[] = [];
    const next = new Map<string, string>();
    for (const r of this.routes()) {
      const sig = `${r.up}|${r.routers.join(",")}|${r.siteMasters.join(",")}`;
      next.set(r.site, sig);
      if (this.#last.get(r.site) !== sig) changes.push(r);
    }
    this.#last = next;
    this.#forgetExcessSites();
    return changes;
  }

  /** Beyond MAX_REMEMBERED_SITES, forgets the sites without any member on the bridge. */
  #forgetExcessSites(): void {
    if (this.#last.size <= MAX_REMEMBERED_SITES) return;
    const present = new Set([...this.#entries.values()].map((e) => e.member.site));
    for (const site of [...this.#last.keys()].sort()) {
      if (this.#last.size <= MAX_REMEMBERED_SITES) break;
      if (present.has(site)) continue;
      this.#last.delete(site);
      this.#announced.delete(site);
    }
  }

  /** Whether `site` is still remembered (listed in routes()). */
  knows(site: string): boolean {
    return this.#last.has(site) || [...this.#entries.values()].some((e) => e.member.site === site);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
