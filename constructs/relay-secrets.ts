// The shared secrets that are not certificates: a site's cluster secret (the mesh handshake of its
// relay nodes, CLUSTER_SECRET_FILE), the bearer token of a site's replicated-maps API
// (KV_TOKEN_FILE) and, for routers without TLS, one router token per site (`--auth-tokens` on
// every router, ROUTER_TOKEN_FILE in the site). All are RandomHexSecret values: 64 hex
// characters, 32 bytes of entropy.

import { Construct } from "constructs";
import { checkSiteName, objectLabels } from "./labels.js";
import { KV_TOKEN_KEY, MESH_SECRET_KEY, OpaqueSecret, ROUTER_TOKEN_KEY } from "./pod-parts.js";
import { RandomHexSecret } from "./random-secret.js";
import { ValidationError } from "./validation-error.js";

/** Where a site's generated secret lives. */
export interface SiteSecretProps {
  /** The site the secret belongs to; names the Secret `<site>-<suffix>`. */
  readonly site: string;
  /** @default "default" */
  readonly namespace?: string;
}

/** A random secret of one site, in an Opaque Secret `<site>-<suffix>` under one key. */
abstract class SiteSecret extends Construct {
  /** The Secret's name (a reference to the resource). */
  readonly secretName: string;
  /** The secret itself (token; sensitive). */
  readonly value: string;
  readonly random: RandomHexSecret;
  readonly secret: OpaqueSecret;

  protected constructor(
    scope: Construct,
    id: string,
    props: SiteSecretProps,
    what: { readonly construct: string; readonly suffix: string; readonly key: string },
  ) {
    super(scope, id);
    checkSiteName(this, what.construct, props.site);
    this.random = new RandomHexSecret(this, "random");
    this.value = this.random.value;
    this.secret = new OpaqueSecret(this, "secret", {
      name: `${props.site}-${what.suffix}`,
      namespace: props.namespace ?? "default",
      data: { [what.key]: this.value },
      labels: objectLabels(props.site, "relay"),
    });
    this.secretName = this.secret.name;
  }
}

export type MeshSecretProps = SiteSecretProps;

/**
 * A site's cluster secret, generated in the site's own stack (nothing else reads it) and stored in
 * the Secret `<site>-relay-mesh` under the key `cluster-secret` (RelaySite.clusterSecretName).
 */
export class MeshSecret extends SiteSecret {
  constructor(scope: Construct, id: string, props: MeshSecretProps) {
    super(scope, id, props, { construct: "MeshSecret", suffix: "relay-mesh", key: MESH_SECRET_KEY });
  }
}

export type KvTokenSecretProps = SiteSecretProps;

/**
 * The bearer token of a site's replicated-maps API (runtime/kv/http-api.ts), generated in the
 * site's own stack and stored in the Secret `<site>-relay-kv-token` under the key `token`
 * (RelaySite `kv.tokenSecretName`). Clients of the API read it from there. One token per site:
 * a client that fails over to another site uses that site's token.
 */
export class KvTokenSecret extends SiteSecret {
  constructor(scope: Construct, id: string, props: KvTokenSecretProps) {
    super(scope, id, props, { construct: "KvTokenSecret", suffix: "relay-kv-token", key: KV_TOKEN_KEY });
  }
}

export interface RouterTokensProps {
  /** Every site of the topology; each gets its own token. */
  readonly sites: readonly string[];
}

/**
 * One router token per site, for routers without TLS. Lives in a stack of its own that every
 * router (all tokens) and every site (its own token) reads, so it can never be part of a cycle.
 */
export class RouterTokens extends Construct {
  /** Site -> token (tokens). */
  readonly tokens: ReadonlyMap<string, string>;

  constructor(scope: Construct, id: string, props: RouterTokensProps) {
    super(scope, id);
    if (props.sites.length === 0) throw new ValidationError(this, "RouterTokens: sites is empty");
    const tokens = new Map<string, string>();
    for (const site of props.sites) {
      checkSiteName(this, "RouterTokens", site);
      if (tokens.has(site)) throw new ValidationError(this, `RouterTokens: site "${site}" is listed twice`);
      tokens.set(site, new RandomHexSecret(this, site).value);
    }
    this.tokens = tokens;
  }

  /** The token of `site`; throws when the site has none. */
  tokenOf(site: string): string {
    const token = this.tokens.get(site);
    if (token === undefined) throw new ValidationError(this, `RouterTokens: no token for site "${site}"`);
    return token;
  }
}

/** The router's token directory: one key per site (file name = site, content = its token). */
export function routerTokensSecret(
  scope: Construct,
  id: string,
  props: { site: string; namespace: string; tokens: ReadonlyMap<string, string> },
): OpaqueSecret {
  return new OpaqueSecret(scope, id, {
    name: `${props.site}-router-tokens`,
    namespace: props.namespace,
    data: Object.fromEntries(props.tokens),
    labels: objectLabels(props.site, "router"),
  });
}

/** A site's own router token, under the key `token` (RelaySite.routerTokenSecretName). */
export function siteRouterTokenSecret(
  scope: Construct,
  id: string,
  props: { site: string; namespace: string; token: string },
): OpaqueSecret {
  return new OpaqueSecret(scope, id, {
    name: `${props.site}-relay-router-token`,
    namespace: props.namespace,
    data: { [ROUTER_TOKEN_KEY]: props.token },
    labels: objectLabels(props.site, "relay"),
  });
}
