// Who a router connection is (docs/ROUTER.md "Identity and authorization"): a site, proved by the
// URI SAN of a verified client certificate (mutual TLS) or by a per-site token sent in an AUTH
// frame before anything else (token mode); or nobody in particular (open mode, today's JGroups
// behaviour). Pure functions; the AUTH frame is in protocol/auth.ts, the checks in policy.ts.
import { siteFromIdentityUri } from "../../contract/identity.js";

/** How the router learns its clients' identities. */
export type AuthMode = "mtls" | "token" | "open";

/**
 * The identity of a connection. `open`: the router authenticates nobody (every open connection has
 * this same identity, so the rules between them are JGroups' rules). `site`: an authenticated site.
 */
export type Identity = { readonly kind: "open" } | { readonly kind: "site"; readonly site: string };

export const OPEN_IDENTITY: Identity = Object.freeze({ kind: "open" });

/** Identities are equal when they name the same site (or are both open). */
export function sameIdentity(a: Identity, b: Identity): boolean {
  return a.kind === "open" ? b.kind === "open" : b.kind === "site" && a.site === b.site;
}

/** `nyc` or `open`, for logs. */
export function identityText(id: Identity | null): string {
  return id === null ? "none" : id.kind === "open" ? "open" : id.site;
}

/**
 * The site named by a certificate's `subjectaltname` (Node's text form: `URI:spiffe://…, DNS:x,
 * IP Address:…`), or null when it has no site identity URI. More than one distinct site identity
 * URI is ambiguous and also null. Quoted entries (Node quotes values with a comma or quote in
 * them) never parse as a site: a DNS-1123 label has no such characters.
 */
export function siteFromSubjectAltName(san: string | undefined): string | null {
  if (typeof san !== "string" || san.length === 0 || san.length > 16_384) return null;
  let found: string | null = null;
  for (const raw of san.split(", ")) {
    const entry = raw.trim();
    if (!entry.startsWith("URI:")) continue;
    const site = siteFromIdentityUri(entry.slice(4));
    if (site === null) continue;
    if (found !== null && found !== site) return null;
    found = site;
  }
  return found;
}
