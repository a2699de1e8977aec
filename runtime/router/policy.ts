// Authorization at the router (docs/ROUTER.md "Identity and authorization"): what an identity may
// register, unregister, list and send to. Open connections (no identity) keep JGroups' rules; an
// authenticated site may:
// - use (register in, send to, list) only the groups --allow-groups gives it (all without it);
// - register only SiteUUIDs of its own site, or plain UUIDs (JGroups members) in those groups;
// - take over (re-register) an address only from a connection of the same identity;
// - UNREGISTER only registrations of its identity;
// - hold at most maxRegistrationsPerIdentity registrations (all its connections together);
// - send MESSAGEs only with a sender address that the sending connection registered.
// The last rule is what lets the relay layer trust a MESSAGE's sender site (bridge-agent.ts).
import type { AllowGroups } from "../../contract/router-args.js";
import { addressKey, decodeMessageSender } from "../protocol/codec.js";
import type { Address } from "../protocol/types.js";
import { type AuthMode, type Identity, sameIdentity } from "./identity.js";
import type { Registration, RegistrationOwner } from "./registry.js";
import { senderStart } from "./source.js";
import type { TokenStore } from "./tokens.js";

/** Why the router refused something (metric `relay_router_refused_total{reason}`). */
export type AuthzRefusal =
  /** Mutual TLS: a verified client certificate without a site identity URI SAN. */
  | "no-identity"
  /** Token mode: the first frame was not an AUTH frame. */
  | "auth-missing"
  /** Token mode: unknown site or wrong token. */
  | "auth-failed"
  /** An AUTH frame naming another site than the certificate, or a second AUTH frame. */
  | "auth-conflict"
  /** REGISTER of an address that is not its own site's (or not a plain UUID). */
  | "foreign-address"
  /** REGISTER, MESSAGE or GET_MBRS of a group the identity may not use. */
  | "group"
  /** REGISTER of an address held by a connection of another identity. */
  | "takeover"
  /** UNREGISTER of a registration of another identity. */
  | "foreign-unregister"
  /** MESSAGE whose sender is not an address the sending connection registered. */
  | "source"
  /** REGISTER beyond maxRegistrationsPerIdentity. */
  | "identity-registrations";

/** Longest sender encoding remembered by the per-connection source cache. */
export const SOURCE_CACHE_MAX = 256;

/** Per-connection authorization state (ClientConnection.auth). */
export class ConnectionAuth {
  /** Who the connection is; null while a token is awaited (token mode) or when refused. */
  identity: Identity | null = null;
  /** Token mode: the next frame must be AUTH. */
  awaitingToken = false;
  // The last MESSAGE sender verified as registered by this connection, valid for one registry
  // generation (any registration change may have removed it). Allocated on first use: open and
  // unauthenticated connections never need it.
  sourceBytes: Buffer | null = null;
  sourceLen = -1;
  sourceGeneration = -1;
}

export interface RouterPolicyOptions {
  readonly mode: AuthMode;
  readonly allowGroups: AllowGroups | null;
  readonly tokens: TokenStore | null;
  readonly maxRegistrationsPerIdentity: number;
}

export class RouterPolicy {
  readonly mode: AuthMode;
  readonly tokens: TokenStore | null;
  readonly maxRegistrationsPerIdentity: number;
  /** group -> sites that may use it; null = every identity may use every group. */
  readonly #allow: ReadonlyMap<string, ReadonlySet<string>> | null;

  constructor(o: RouterPolicyOptions) {
    this.mode = o.mode;
    this.tokens = o.tokens;
    this.maxRegistrationsPerIdentity = o.maxRegistrationsPerIdentity;
    this.#allow = o.allowGroups
      ? new Map(Object.entries(o.allowGroups).map(([g, sites]) => [g, new Set(sites)]))
      : null;
  }

  /** Whether `id` may register in, send to and list `group`. */
  mayUseGroup(id: Identity, group: string): boolean {
    if (id.kind === "open" || this.#allow === null) return true;
    return this.#allow.get(group)?.has(id.site) ?? false;
  }

  /**
   * Why `id` may not register `addr` in `group` (null: it may). `existing` is the registration it
   * would replace, `held` the registrations `id` holds already.
   */
  registerRefusal(
    id: Identity,
    group: string,
    addr: Address,
    existing: Registration<RegistrationOwner & { readonly auth: ConnectionAuth }> | undefined,
    held: number,
  ): AuthzRefusal | null {
    if (id.kind === "open") {
      // Open connections may not take over what an authenticated site holds (mixed cannot
      // happen today: the mode is per router; kept for safety).
      const owner = existing?.conn.auth.identity;
      return owner && owner.kind === "site" ? "takeover" : null;
    }
    if (!this.mayUseGroup(id, group)) return "group";
    const ownSite = addr.kind === "site-uuid" && addr.site === id.site;
    const plainMember = addr.kind === "uuid" || addr.kind === "magic";
    if (!ownSite && !plainMember) return "foreign-address";
    if (existing) {
      const owner = existing.conn.auth.identity;
      if (owner === null || !sameIdentity(owner, id)) return "takeover";
      return null; // same identity: replaces one of its own, the count does not grow
    }
    if (held >= this.maxRegistrationsPerIdentity) return "identity-registrations";
    return null;
  }

  /** Why `id` may not UNREGISTER `reg` (null: it may). */
  unregisterRefusal(
    id: Identity,
    reg: Registration<RegistrationOwner & { readonly auth: ConnectionAuth }>,
  ): AuthzRefusal | null {
    const owner = reg.conn.auth.identity;
    if (owner !== null && sameIdentity(owner, id)) return null;
    return "foreign-unregister";
  }

  /**
   * Whether the sender of MESSAGE `frame` (length prefix included) is an address `conn` registered.
   * `destEnd`: where the destination ends in `frame` when the caller knows it, else -1.
   * Allocation-free when the sender is the one verified last in this registry generation.
   * Throws ProtocolError on a malformed header (the caller closes the connection, as for any).
   */
  sourceAllowed(
    conn: RegistrationOwner & { readonly auth: ConnectionAuth },
    frame: Buffer,
    destEnd: number,
    generation: number,
  ): boolean {
    const a = conn.auth;
    const len = a.sourceLen;
    if (a.sourceGeneration === generation && len > 0) {
      const start = senderStart(frame, destEnd);
      if (start > 0 && start + len <= frame.length) {
        const cache = a.sourceBytes!;
        let i = 0;
        while (i < len && frame[start + i] === cache[i]) i++;
        if (i === len) return true;
      }
    }
    const { sender, start, end } = decodeMessageSender(frame.subarray(4));
    if (sender === null) return false;
    const key = addressKey(sender);
    let found = false;
    for (const reg of conn.registrations) {
      if (reg.key === key) {
        found = true;
        break;
      }
    }
    if (!found) return false;
    if (end - start <= SOURCE_CACHE_MAX) {
      a.sourceBytes ??= Buffer.allocUnsafeSlow(SOURCE_CACHE_MAX);
      frame.copy(a.sourceBytes, 0, start + 4, end + 4);
      a.sourceLen = end - start;
      a.sourceGeneration = generation;
    }
    return true;
  }
}
