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
 * IP Address:…`, entries separated by ", ", a value with a comma or quote in it written as a
 * JSON string), or null when it names none. Two different site identity URIs are ambiguous and
 * also null, and so is text that does not parse (nothing inside a quoted value can pose as an
 * entry of its own).
 */
export function siteFromSubjectAltName(san: string | undefined): string | null {
  if (typeof san !== "string" || san.length === 0 || san.length > 65_536) return null;
  let found: string | null = null;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(":", i);
    if (colon < 0) return null;
    const name = san.slice(i, colon);
    i = colon + 1;
    let value: string;
    if (san[i] === '"') {
      let j = i + 1;
      while (j < san.length && san[j] !== '"') j += san[j] === "\\" ? 2 : 1;
      if (j >= san.length) return null;
      try {
        value = JSON.parse(san.slice(i, j + 1)) as string;
      } catch {
        return null;
      }
      i = j + 1;
    } else {
      const comma = san.indexOf(", ", i);
      const end = comma < 0 ? san.length : comma;
      value = san.slice(i, end);
      i = end;
    }
    if (san.startsWith(", ", i)) i += 2;
    else if (i < san.length) return null;
    if (name !== "URI") continue;
    const site = siteFromIdentityUri(value);
    if (site === null) continue;
    if (found !== null && found !== site) return null;
    found = site;
  }
  return found;
}
