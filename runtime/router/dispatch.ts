// What the router does with each frame a client sends, by GossipType: MESSAGE routed from its
// header (with a per-connection cache of the last header), REGISTER / UNREGISTER on the registry,
// GET_MBRS answered from it, HEARTBEAT echoed. Replies and forwarded frames go to the Forwarder.
// Every frame first passes the connection's authorization (policy.ts, identity.ts): AUTH in token
// mode, then the per-identity rules for REGISTER, UNREGISTER, GET_MBRS and MESSAGE.
import type tls from "node:tls";
import type { Logger } from "../observability/log.js";
import { AUTH_TYPE, parseAuthFrame } from "../protocol/auth.js";
import { addressKey, decodeBody, decodeRouteHeader } from "../protocol/codec.js";
import { ALL_GROUPS_PREFIX, getMbrsRspFrame } from "../protocol/frames.js";
import { type Address, type GossipData, GossipType, type PingData } from "../protocol/types.js";
import { type ClientConnection, ROUTE_CACHE_MAX } from "./connection.js";
import type { Forwarder } from "./forwarding.js";
import { type Identity, identityText, OPEN_IDENTITY, siteFromSubjectAltName } from "./identity.js";
import type { RegistrationGate } from "./limits.js";
import type { ResolvedRouterOptions } from "./options.js";
import type { AuthzRefusal, RouterPolicy } from "./policy.js";
import { Group, type Registration, type Registry } from "./registry.js";
import type { RouterCounters, UndeliveredReason } from "./stats.js";

export { MAX_REGISTRATIONS_PER_CONNECTION } from "./limits.js";

/** Route target of a MESSAGE to a group the sender's identity may not use (cached like the others). */
const REFUSED_GROUP: unique symbol = Symbol("refused-group");

type RouteTarget =
  | Registration<ClientConnection>
  | Group<ClientConnection>
  | UndeliveredReason
  | typeof REFUSED_GROUP;

/** At most one warning per refusal reason per interval (plus how many were not logged). */
const REFUSAL_LOG_INTERVAL_MS = 1_000;

/** A remote-supplied name as logged: at most 128 characters (names may be 64 KiB long). */
function clip(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return s.length <= 128 ? s : `${s.slice(0, 128)}…(${s.length})`;
}

/**
 * End of a MESSAGE route header inside `f` (a whole frame, length prefix included) when it has the
 * shapes worth caching (group string or null + null/UUID dest), else -1. Only used as a cache key:
 * a header seen for the first time is always validated by decodeRouteHeader.
 */
function cacheableHeaderEnd(f: Buffer): number {
  const n = f.length;
  if (n < 7) return -1;
  let p = 6;
  if (f[5] === 1) {
    if (n < 8) return -1;
    p = 8 + ((f[6]! << 8) | f[7]!);
  }
  if (p >= n) return -1;
  const flag = f[p];
  if (flag === 1) p += 1;
  else if (flag === 2) p += 17;
  else return -1;
  return p <= n && p - 5 <= ROUTE_CACHE_MAX ? p : -1;
}

/** What the dispatch needs from the router. */
export interface DispatchOwner {
  readonly options: ResolvedRouterOptions;
  readonly registry: Registry<ClientConnection>;
  readonly counters: RouterCounters;
  readonly policy: RouterPolicy;
  /** Closes a connection whose authentication or authorization was refused (already counted). */
  refuseConnection(conn: ClientConnection, reason: AuthzRefusal): void;
  /** Per-connection and router-wide limits of REGISTER (limits.ts). */
  readonly registrationGate: RegistrationGate;
}

export class Dispatcher {
  readonly #owner: DispatchOwner;
  /** One limits object for every frame (decodeBody resolves it once). */
  readonly #decodeLimits: { readonly maxFrame: number };
  readonly #out: Forwarder;
  readonly #heartbeat: Buffer;
  readonly #log: Logger;
  readonly #refusalLog = new Map<string, { at: number; suppressed: number }>();

  constructor(owner: DispatchOwner, out: Forwarder, heartbeat: Buffer, log: Logger) {
    this.#owner = owner;
    this.#decodeLimits = { maxFrame: owner.options.maxFrame };
    this.#out = out;
    this.#heartbeat = heartbeat;
    this.#log = log;
  }

  /**
   * A new connection: its identity from the verified client certificate (mutual TLS), none yet
   * (token mode: AUTH awaited) or open. False (counted, logged) when it must be closed at once.
   */
  admit(conn: ClientConnection): boolean {
    const auth = conn.auth;
    switch (this.#owner.policy.mode) {
      case "open":
        auth.identity = OPEN_IDENTITY;
        return true;
      case "token":
        auth.awaitingToken = true;
        return true;
      case "mtls": {
        // Only a certificate the handshake verified against --tls-ca names anyone.
        const socket = conn.socket as tls.TLSSocket;
        let cert: tls.PeerCertificate | undefined;
        try {
          cert = socket.authorized === true ? socket.getPeerCertificate() : undefined;
        } catch {
          cert = undefined; // a socket torn down under us: no identity
        }
        const site = siteFromSubjectAltName(cert?.subjectaltname);
        if (site === null) {
          this.#refused(conn, "no-identity", { subject: clip(String(cert?.subject?.CN ?? "")) });
          return false;
        }
        auth.identity = { kind: "site", site };
        return true;
      }
    }
  }

  /** One whole frame (length prefix included) from an open connection. */
  onFrame(conn: ClientConnection, frame: Buffer): void {
    const counters = this.#owner.counters;
    const type = frame.length > 4 ? frame[4]! : 255;
    const id = conn.auth.identity;
    if (id === null || type === AUTH_TYPE) {
      this.#authenticate(conn, frame, id);
      return;
    }
    if (type <= GossipType.GetMbrsRspLast) {
      counters.framesIn[type]!++;
      counters.bytesIn[type]! += frame.length;
    }
    if (type === GossipType.Message) this.#routeMessage(conn, id, frame);
    else this.#control(conn, id, frame);
  }

  /** An AUTH frame, or any frame before the identity is known. */
  #authenticate(conn: ClientConnection, frame: Buffer, id: Identity | null): void {
    const policy = this.#owner.policy;
    const auth = parseAuthFrame(frame);
    if (id !== null) {
      // Already known: open mode, a certificate, or a token sent before. Only a repetition of
      // the same site is harmless (a client configured with a token talking to an mTLS router).
      if (auth !== null && policy.mode !== "token" && (id.kind === "open" || auth.site === id.site)) {
        this.#owner.counters.ignoredFrame("auth-frame");
        return;
      }
      this.#refuseClose(conn, "auth-conflict", { claimed: clip(auth?.site) });
      return;
    }
    if (!conn.auth.awaitingToken) {
      this.#refuseClose(conn, "no-identity", {});
      return;
    }
    if (auth === null) {
      this.#refuseClose(conn, "auth-missing", { type: frame.length > 4 ? frame[4] : null });
      return;
    }
    if (!policy.tokens?.verify(auth.site, auth.token)) {
      this.#refuseClose(conn, "auth-failed", { claimed: auth.site });
      return;
    }
    conn.auth.awaitingToken = false;
    conn.auth.identity = { kind: "site", site: auth.site };
    this.#log.debug({ conn: conn.id, remote: conn.remote, identity: auth.site }, "authenticated by token");
  }

  #refuseClose(conn: ClientConnection, reason: AuthzRefusal, detail: Record<string, unknown>): void {
    this.#refused(conn, reason, detail);
    this.#owner.refuseConnection(conn, reason);
  }

  /** Counts and logs (rate-limited per reason) one refusal. */
  #refused(conn: ClientConnection, reason: AuthzRefusal, detail: Record<string, unknown>): void {
    this.#owner.counters.refusedBy(reason);
    const now = Date.now();
    const entry = this.#refusalLog.get(reason);
    if (entry && now - entry.at < REFUSAL_LOG_INTERVAL_MS) {
      entry.suppressed++;
      return;
    }
    this.#log.warn(
      {
        conn: conn.id,
        remote: conn.remote,
        identity: identityText(conn.auth.identity),
        reason,
        ...detail,
        suppressed: entry?.suppressed ?? 0,
      },
      "refused",
    );
    this.#refusalLog.set(reason, { at: now, suppressed: 0 }); // keys: the AuthzRefusal values
  }

  #routeMessage(conn: ClientConnection, id: Identity, frame: Buffer): void {
    const end = cacheableHeaderEnd(frame);
    if (
      id.kind === "site" &&
      !this.#owner.policy.sourceAllowed(conn, frame, end, this.#owner.registry.generation)
    ) {
      this.#refused(conn, "source", {});
      return;
    }
    let target: RouteTarget;
    if (end > 0 && conn.cacheGeneration === this.#owner.registry.generation && conn.cacheLen === end - 5) {
      const cache = conn.cacheBytes;
      let i = 5;
      while (i < end && frame[i] === cache[i - 5]) i++;
      target = i === end ? (conn.cacheTarget as RouteTarget) : this.#resolve(conn, id, frame, end);
    } else {
      target = this.#resolve(conn, id, frame, end);
    }
    if (typeof target === "string") {
      this.#out.undelivered(target, 1, conn);
    } else if (target === REFUSED_GROUP) {
      this.#refused(conn, "group", {});
    } else if (target instanceof Group) {
      // One copy per registration, as JGroups does (a connection holding two registrations in the
      // group gets the frame twice), the sender included.
      for (const reg of target.members.values()) this.#out.enqueueMulticast(reg.conn, frame);
    } else {
      this.#out.enqueueSlice(target.conn, frame, GossipType.Message);
    }
  }

  /** Decodes and looks up a route header (validating it), and caches the decision when possible. */
  #resolve(conn: ClientConnection, id: Identity, frame: Buffer, end: number): RouteTarget {
    const registry = this.#owner.registry;
    const hdr = decodeRouteHeader(frame.subarray(4));
    let target: RouteTarget;
    const group = hdr.group === null ? undefined : registry.group(hdr.group);
    if (hdr.group !== null && !this.#owner.policy.mayUseGroup(id, hdr.group)) target = REFUSED_GROUP;
    else if (!group) target = "unknown-group";
    else if (hdr.addr === null) target = group;
    else target = group.members.get(addressKey(hdr.addr)) ?? "unknown-dest";
    if (end > 0) {
      frame.copy(conn.cacheBytes, 0, 5, end);
      conn.cacheLen = end - 5;
      conn.cacheGeneration = registry.generation;
      conn.cacheTarget = target;
    }
    return target;
  }

  #control(conn: ClientConnection, id: Identity, frame: Buffer): void {
    const { counters, registry, policy } = this.#owner;
    // A REGISTER is kept in the registry: decode a private copy so that nothing it holds can alias
    // a read chunk or the splitter's reassembly buffer.
    const body = frame[4] === GossipType.Register ? Buffer.from(frame.subarray(4)) : frame.subarray(4);
    const data = decodeBody(body, this.#decodeLimits);
    switch (data.type) {
      case GossipType.Register:
        this.#register(conn, id, data);
        break;
      case GossipType.Unregister:
        if (data.group === null) counters.ignoredFrame("missing-group");
        else if (data.addr === null) counters.ignoredFrame("missing-address");
        else {
          const held = registry.group(data.group)?.members.get(addressKey(data.addr));
          if (held && policy.unregisterRefusal(id, held) !== null) {
            this.#refused(conn, "foreign-unregister", {
              group: clip(data.group),
              member: clip(held.logicalName),
            });
            break;
          }
          const reg = registry.unregister(data.group, data.addr);
          if (reg)
            this.#log.debug({ conn: conn.id, group: data.group, member: reg.logicalName }, "unregistered");
        }
        break;
      case GossipType.GetMbrs:
        this.#getMembers(conn, id, data.group);
        break;
      case GossipType.Heartbeat:
        this.#out.enqueueBuffer(conn, this.#heartbeat, GossipType.Heartbeat);
        break;
      default:
        // GET_MBRS_RSP, GET_MBRS_RSP_LAST and SUSPECT are router -> client only.
        counters.ignoredFrame("response-type");
        break;
    }
  }

  #register(conn: ClientConnection, id: Identity, data: GossipData): void {
    const { counters, registry } = this.#owner;
    if (data.group === null) {
      counters.ignoredFrame("missing-group");
      return;
    }
    if (data.addr === null) {
      counters.ignoredFrame("missing-address");
      return;
    }
    if (!this.#authorizeRegister(conn, id, data.group, data.addr, data.logicalName)) return;
    if (this.#owner.registrationGate.refuses(conn, data)) return;
    registry.register(data.group, data.addr, conn, data.logicalName, data.physicalAddr);
    this.#log.debug({ conn: conn.id, group: data.group, member: data.logicalName }, "registered");
  }

  /** The identity rules of a REGISTER (policy.ts); false when refused (counted, logged, maybe closed). */
  #authorizeRegister(
    conn: ClientConnection,
    id: Identity,
    group: string,
    addr: Address,
    logicalName: string | null,
  ): boolean {
    const { registry, policy } = this.#owner;
    const existing = registry.group(group)?.members.get(addressKey(addr));
    const held = id.kind === "site" ? registry.heldBySite(id.site) : 0;
    const refusal = policy.registerRefusal(id, group, addr, existing, held);
    if (refusal === null) return true;
    const detail = {
      group: clip(group),
      member: clip(logicalName),
      holder: existing ? identityText(existing.conn.auth.identity) : null,
    };
    // Over the cap: ignored like the per-connection cap. Anything else is a client claiming what
    // is not its own: no honest client does that, so it is closed (it would reconnect and retry).
    if (refusal === "identity-registrations") this.#refused(conn, refusal, detail);
    else this.#refuseClose(conn, refusal, detail);
    return false;
  }

  #getMembers(conn: ClientConnection, id: Identity, group: string | null): void {
    const { registry, policy } = this.#owner;
    const pings = (g: Group<ClientConnection> | undefined): PingData[] =>
      g
        ? [...g.members.values()].map((r) => ({
            member: r.addr,
            flags: 0x01,
            logicalName: r.logicalName,
            physicalAddr: r.physicalAddr,
            mbrs: null,
          }))
        : [];
    const out = (buf: Buffer, type: GossipType) => this.#out.enqueueBuffer(conn, buf, type);
    if (group !== null) {
      // Unknown group: JGroups answers nothing (the client hangs); we answer an empty LAST. A
      // group the identity may not use is answered like an unknown one.
      const allowed = policy.mayUseGroup(id, group);
      if (!allowed) this.#refused(conn, "group", { group: clip(group) });
      out(
        getMbrsRspFrame(group, allowed ? pings(registry.group(group)) : [], true),
        GossipType.GetMbrsRspLast,
      );
      return;
    }
    const groups = [...registry.groups.values()].filter((g) => policy.mayUseGroup(id, g.name));
    if (groups.length === 0) {
      out(getMbrsRspFrame(null, [], true), GossipType.GetMbrsRspLast);
      return;
    }
    groups.forEach((g, i) => {
      const last = i === groups.length - 1;
      out(
        getMbrsRspFrame(ALL_GROUPS_PREFIX + g.name, pings(g), last),
        last ? GossipType.GetMbrsRspLast : GossipType.GetMbrsRsp,
      );
    });
  }
}
