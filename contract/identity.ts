// Site identity: the one name a site's certificate, a router's authorization and the relay layer
// agree on (docs/SECURITY.md). In the cloud topology RelayPki puts it in every certificate as a URI
// subject alternative name; the router reads it from the verified client certificate. Without TLS
// a site proves it with a per-site token instead (ROUTER_TOKEN_FILE / `--auth-tokens`).
// No dependencies besides the siblings in contract/.

/** Prefix of a site's identity URI; the site name (a DNS-1123 label) follows. */
export const SITE_IDENTITY_PREFIX = "spiffe://cross-cloud-relay/site/";

/** Prefix of a router's own identity URI (its server certificate); the site name follows. */
export const ROUTER_IDENTITY_PREFIX = "spiffe://cross-cloud-relay/router/";

/**
 * Prefix of the identity URI of a site's kv API server certificate (issue 11's maps); the site
 * name follows. Not a site identity: routers refuse it as a client.
 */
export const KV_API_IDENTITY_PREFIX = "spiffe://cross-cloud-relay/kv-api/";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `spiffe://cross-cloud-relay/site/nyc` for site `nyc`. */
export function siteIdentityUri(site: string): string {
  return `${SITE_IDENTITY_PREFIX}${site}`;
}

/** `spiffe://cross-cloud-relay/router/nyc` for the router of site `nyc`. */
export function routerIdentityUri(site: string): string {
  return `${ROUTER_IDENTITY_PREFIX}${site}`;
}

/** `spiffe://cross-cloud-relay/kv-api/nyc` for the kv API of site `nyc`. */
export function kvApiIdentityUri(site: string): string {
  return `${KV_API_IDENTITY_PREFIX}${site}`;
}

/** The site a site identity URI names, or null when `uri` is not one (wrong prefix, bad label). */
export function siteFromIdentityUri(uri: string): string | null {
  if (!uri.startsWith(SITE_IDENTITY_PREFIX)) return null;
  const site = uri.slice(SITE_IDENTITY_PREFIX.length);
  return DNS_LABEL.test(site) ? site : null;
}
