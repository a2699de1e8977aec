// Every cloud the program knows, registered once. A topology's `cloud` values, the Site union and
// the kinds are all derived from this table: adding a cloud is one folder plus one line here.

import { eks } from "./eks/index.js";
import { existing } from "./existing/index.js";
import { gke } from "./gke/index.js";
import type { CloudModule, SiteBase } from "./types.js";

export const CLOUDS = { eks, gke, existing } as const;

/** The site of one registered cloud module. */
type SiteOf<M> = M extends CloudModule<infer S> ? S : never;

export type CloudKind = keyof typeof CLOUDS;
/** A site of any registered cloud (discriminated by `cloud`). */
export type Site = { [K in CloudKind]: SiteOf<(typeof CLOUDS)[K]> }[CloudKind];
/** The kinds in registration order (the order error messages list them in). */
export const CLOUD_KINDS = Object.keys(CLOUDS) as CloudKind[];

// Each entry is registered under its own kind and reads sites of that kind.
CLOUDS satisfies { [K in CloudKind]: CloudModule<SiteBase<K>> & { readonly kind: K } };

/** The module of `site`'s cloud. */
export function cloudOf<S extends Site>(site: S): CloudModule<S> {
  return CLOUDS[site.cloud] as unknown as CloudModule<S>;
}

export type { EksSite } from "./eks/site.js";
export type { ExistingSite } from "./existing/site.js";
export type { GkeSite } from "./gke/site.js";
export type { CloudModule, SiteBase } from "./types.js";
