// Routing decisions of the relay layer as pure functions: who is a site master, which site master
// carries a given sender's traffic, which sites a destination reaches, what a site master does with
// an envelope that arrives from the bridge.
import type { Destination } from "./envelope.js";

/** The site masters of a view: its `count` oldest members (members[0] is the coordinator). */
export function siteMastersOf<T>(members: readonly T[], count: number): T[] {
  return members.slice(0, Math.max(1, count));
}

/** 32-bit FNV-1a of a string's UTF-16 code units: cheap, stable across processes. */
export function stableHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The element of `list` that carries traffic for `key` (a sender name). Every member computes the
 * same answer from the same list, so one sender's traffic always takes the same path (per-sender
 * FIFO) and exactly one site master forwards a given multicast.
 */
export function pickFor<T>(list: readonly T[], key: string): T | undefined {
  if (list.length === 0) return undefined;
  return list[stableHash(key) % list.length];
}

/** True when `dest` includes the member `name` of site `site`. */
export function isAddressedTo(dest: Destination, site: string, name: string): boolean {
  switch (dest.kind) {
    case "all":
      return true;
    case "site":
      return dest.site === site;
    case "member":
      return dest.site === site && dest.name === name;
  }
}

/** True when `dest` reaches at least one site other than `localSite` (so it needs the bridge). */
export function crossesSites(dest: Destination, localSite: string): boolean {
  return dest.kind === "all" || dest.site !== localSite;
}

/** True when `dest` reaches members of `localSite` other than possibly one named member. */
export function reachesSite(dest: Destination, localSite: string): boolean {
  return dest.kind === "all" || dest.site === localSite;
}

/** The remote sites `dest` reaches, given the sites currently known on the bridge. */
export function remoteSitesFor(dest: Destination, localSite: string, knownSites: Iterable<string>): string[] {
  if (dest.kind === "all") return [...knownSites].filter((s) => s !== localSite).sort();
  return dest.site === localSite ? [] : [dest.site];
}

/** What a site master does inside its own site with an envelope that came over the bridge. */
export type LocalDelivery =
  /** Deliver to itself and multicast to every other local member. */
  | { readonly kind: "multicast" }
  /** Deliver to itself only. */
  | { readonly kind: "self" }
  /** Pass it to one other local member. */
  | { readonly kind: "unicast"; readonly name: string }
  /** Not for this site (a stray or misrouted envelope). */
  | { readonly kind: "none" };

export function localDeliveryFor(dest: Destination, localSite: string, selfName: string): LocalDelivery {
  if (dest.kind === "all") return { kind: "multicast" };
  if (dest.site !== localSite) return { kind: "none" };
  if (dest.kind === "site") return { kind: "multicast" };
  return dest.name === selfName ? { kind: "self" } : { kind: "unicast", name: dest.name };
}

/** A destination in the CLI's words: `*` (everyone), `site:` (a whole site), `name:site`. */
export function describeDestination(dest: Destination): string {
  switch (dest.kind) {
    case "all":
      return "*";
    case "site":
      return `${dest.site}:`;
    case "member":
      return `${dest.name}:${dest.site}`;
  }
}
