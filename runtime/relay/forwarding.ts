// The routing of envelopes between the local cluster, the bridge and the delivery engine: what
// arrives from another member of our site (by kind) and from the bridge, our own envelopes for our
// site and for other sites, lane copies through our forwarding site master, and the unicasts that
// must be passed on after the site masters changed. What is addressed to us goes back to the
// channel (ForwardingOwner.deliver).
import { type Member, memberKey, type View } from "../cluster/member.js";
import type { Logger } from "../observability/log.js";
import type { BridgeAgent, Undeliverable } from "./bridge-agent.js";
import type { DeliveryEngine } from "./delivery/engine.js";
import { decodeEnvelope, type Envelope, EnvelopeError, EnvelopeKind, encodeEnvelope } from "./envelope.js";
import { RelayError } from "./errors.js";
import { crossesSites, isAddressedTo, localDeliveryFor } from "./routing.js";

/** The channel's counters this path moves. */
export interface ForwardingCounters {
  forwarded: number;
  fromBridge: number;
  undeliverable: number;
  decodeErrors: number;
}

/** What the routing of envelopes needs from the channel. */
export interface ForwardingOwner {
  readonly site: string;
  readonly name: string;
  readonly log: Logger;
  readonly maxPayload: number;
  readonly stats: ForwardingCounters;
  readonly delivery: DeliveryEngine;
  isClosed(): boolean;
  view(): View | null;
  /** The local site master that carries `originName`'s traffic to other sites. */
  forwarderFor(originName: string): Member | undefined;
  isMe(m: Member | undefined): boolean;
  /** The local cluster's send: a member (memberKey) or, with null, every other member. */
  send(to: string | null, bytes: Uint8Array): boolean;
  /** The bridge while we are a site master. */
  bridge(): BridgeAgent | null;
  /** A TOPOLOGY from our primary site master. */
  onTopology(env: Envelope): void;
  /** An envelope addressed to us. */
  deliver(env: Envelope): void;
  /** Emits "undeliverable" (already counted). */
  undeliverable(u: Undeliverable): void;
}

/**
 * The same envelope with an empty payload, cut from its encoding (the payload and its u32 length
 * end every envelope), so no second encoding is made per message.
 */
function withoutPayload(bytes: Buffer, payloadLength: number): Buffer {
  const head = bytes.length - payloadLength - 4;
  const out = Buffer.allocUnsafe(head + 4);
  bytes.copy(out, 0, 0, head);
  out.writeUInt32BE(0, head);
  return out;
}

/** The entry of a dispatch table for a kind that place has nothing to do with. */
export const notForUs = (): void => {};

/** One log line per (unknown member, envelope kind) per this long. */
const UNKNOWN_LOG_MS = 30_000;

export class Forwarding {
  readonly #o: ForwardingOwner;
  readonly #unknownLogged = new Map<string, { at: number; suppressed: number }>();
  /** What we do with an envelope from another member of our site, by kind. */
  readonly #fromLocal = {
    [EnvelopeKind.Data]: (_from, env, bytes) => this.#onLocalTraffic(env, bytes),
    [EnvelopeKind.SiteView]: notForUs, // bridge only
    [EnvelopeKind.SiteBye]: notForUs, // bridge only
    [EnvelopeKind.Topology]: (_from, env) => this.#o.onTopology(env),
    [EnvelopeKind.ProbeRequest]: (_from, env, bytes) => this.#onLocalTraffic(env, bytes),
    [EnvelopeKind.ProbeResponse]: (_from, env, bytes) => this.#onLocalTraffic(env, bytes),
    [EnvelopeKind.Ack]: (from, env) => this.#o.delivery.onAck(from, env),
    [EnvelopeKind.Stable]: (_from, env, bytes) => this.#onLocalTraffic(env, bytes),
    [EnvelopeKind.LaneMark]: (_from, env, bytes) => this.#onLocalTraffic(env, bytes),
  } satisfies Record<EnvelopeKind, (from: Member, env: Envelope, bytes: Buffer) => void>;

  constructor(owner: ForwardingOwner) {
    this.#o = owner;
  }

  /** An envelope from another member of our site. */
  fromLocal(from: Member, payload: Uint8Array): void {
    if (this.#o.isClosed()) return;
    let env: Envelope;
    try {
      env = decodeEnvelope(payload, { maxPayload: this.#o.maxPayload });
    } catch (err) {
      this.#o.stats.decodeErrors++;
      const code = err instanceof EnvelopeError ? err.code : "unknown";
      this.#o.log.warn({ from: from.name, code }, "bad envelope from a local member (dropped)");
      return;
    }
    const bytes = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.#fromLocal[env.kind](from, env, bytes);
  }

  /** An envelope from another site, handed over by our bridge agent. */
  fromBridge(env: Envelope, bytes: Buffer): void {
    const o = this.#o;
    o.stats.fromBridge++;
    if (env.lane) {
      if (env.lane.site !== o.site) return;
      // Every member of the site follows the sender's lane (even for a message to one member).
      if (env.dest.kind === "member" && env.kind === EnvelopeKind.Data) this.#laneToOne(env, bytes);
      else this.relaySend(null, bytes, env);
      o.delivery.onLane(env);
      return;
    }
    const plan = localDeliveryFor(env.dest, o.site, o.name);
    switch (plan.kind) {
      case "multicast":
        this.relaySend(null, bytes, env);
        o.deliver(env);
        return;
      case "self":
        o.deliver(env);
        return;
      case "unicast": {
        const key = this.#memberKeyOf(plan.name);
        if (key) this.relaySend(key, bytes, env);
        else {
          o.stats.undeliverable++;
          this.#unknownMember(plan.name, env);
        }
        return;
      }
      case "none":
        return;
    }
  }

  /** Our own envelope to the members of our site it is for (ourselves included). */
  sendInSite(env: Envelope, bytes: Buffer): void {
    const o = this.#o;
    const dest = env.dest;
    if (dest.kind !== "member") {
      o.send(null, bytes);
      this.#deliverSoon(env);
    } else if (dest.name === o.name) {
      this.#deliverSoon(env);
    } else {
      const key = this.#memberKeyOf(dest.name);
      if (!key) throw new RelayError("UNKNOWN_MEMBER", `${dest.name} is not a member of site ${o.site}`);
      o.send(key, bytes);
    }
  }

  /** Our own envelope for other sites, without the guarantee: to the bridge through our forwarder. */
  forwardOwn(env: Envelope, bytes: Buffer): void {
    const forwarder = this.#o.forwarderFor(this.#o.name);
    if (this.#o.isMe(forwarder)) this.#bridgeForward(env, bytes);
    else if (env.dest.kind !== "all" && forwarder) this.#o.send(memberKey(forwarder), bytes);
    // "all": the forwarder gets our local multicast and passes it on.
  }

  /** A lane envelope of ours, through our forwarding site master (or into the bridge if we are it). */
  sendLane(env: Envelope, bytes: Buffer): boolean {
    const forwarder = this.#o.forwarderFor(this.#o.name);
    if (!forwarder) return false;
    if (this.#o.isMe(forwarder)) {
      const bridge = this.#o.bridge();
      if (!bridge) return false;
      this.#o.stats.forwarded++;
      bridge.forward(env, bytes);
      return true;
    }
    try {
      this.#o.send(memberKey(forwarder), bytes);
      return true;
    } catch {
      return false; // e.g. the forwarder just left or its link is full: the timeout retries
    }
  }

  /**
   * A lane message for one member of our site: the body goes to that member only; the others get
   * the same lane position without the payload (nothing to deliver, but their window moves on
   * without a gap), so a unicast does not cost a multicast of its body to the whole site.
   */
  #laneToOne(env: Envelope, bytes: Buffer): void {
    const view = this.#o.view();
    if (!view) return;
    const dest = env.dest as { readonly name: string };
    let skip: Buffer | null = null;
    for (const m of view.members) {
      if (this.#o.isMe(m)) continue;
      if (m.name === dest.name) this.relaySend(memberKey(m), bytes, env);
      else {
        skip ??= withoutPayload(bytes, env.payload.length);
        this.relaySend(memberKey(m), skip, env);
      }
    }
  }

  /** Local send on behalf of someone else: a failure is logged and counted, never thrown. */
  relaySend(to: string | null, bytes: Uint8Array, env: Envelope): void {
    try {
      this.#o.send(to, bytes);
    } catch (err) {
      this.#o.stats.undeliverable++;
      this.#o.log.warn(
        { to: to ?? "*", origin: env.origin.name, seq: env.seq, err: (err as Error).message },
        "local send failed (dropped)",
      );
    }
  }

  /** Data, probes and Stable from a local member: on to the bridge and/or to us. */
  #onLocalTraffic(env: Envelope, bytes: Buffer): void {
    const o = this.#o;
    if (env.lane) {
      if (env.origin.site !== o.site) {
        o.delivery.onLane(env);
        return;
      }
      // A lane copy from a sender of our site, for the bridge.
      const forwarder = o.forwarderFor(env.origin.name);
      if (o.isMe(forwarder)) this.#bridgeForward(env, bytes);
      else this.#reroute(env, forwarder);
      return;
    }
    // Reliable senders send lane copies for other sites: their local multicast stays local.
    const bridgeIt = !(o.delivery.reliable && env.kind === EnvelopeKind.Data);
    if (bridgeIt && env.origin.site === o.site && crossesSites(env.dest, o.site)) {
      const forwarder = o.forwarderFor(env.origin.name);
      if (o.isMe(forwarder)) {
        this.#bridgeForward(env, bytes);
      } else if (env.dest.kind !== "all") {
        this.#reroute(env, forwarder);
      }
    }
    if (isAddressedTo(env.dest, o.site, o.name)) o.deliver(env);
  }

  /** A unicast meant for the site master reached us after the site masters changed: pass it on. */
  #reroute(env: Envelope, forwarder: Member | undefined): void {
    if (env.hops === 0 || !forwarder) {
      this.#o.stats.undeliverable++;
      this.#o.log.warn({ origin: env.origin.name, seq: env.seq }, "no site master to forward to (dropped)");
      return;
    }
    this.relaySend(memberKey(forwarder), encodeEnvelope({ ...env, hops: env.hops - 1 }), env);
  }

  #bridgeForward(env: Envelope, bytes: Buffer): void {
    const bridge = this.#o.bridge();
    if (bridge) {
      this.#o.stats.forwarded++;
      bridge.forward(env, bytes);
      return;
    }
    // A site master without routers configured (or closing): nothing can leave the site.
    this.#o.stats.undeliverable++;
    this.#o.undeliverable({
      site: env.dest.kind === "all" ? "*" : env.dest.site,
      reason: "no-route",
      envelope: env,
    });
  }

  #deliverSoon(env: Envelope): void {
    queueMicrotask(() => this.#o.deliver(env));
  }

  /**
   * An envelope for a member that is not in our view: dropped, logged once per (member, kind) per
   * UNKNOWN_LOG_MS with the count since. Stable reports for a sender that just died are expected
   * here for a while (its destination repeats them until it forgets it): those only at debug.
   */
  #unknownMember(name: string, env: Envelope): void {
    const kind = EnvelopeKind[env.kind] ?? String(env.kind);
    const key = `${name}|${kind}`;
    const now = Date.now();
    const seen = this.#unknownLogged.get(key);
    if (seen && now - seen.at < UNKNOWN_LOG_MS) {
      seen.suppressed++;
      return;
    }
    const fields = {
      to: name,
      kind,
      origin: `${env.origin.name}:${env.origin.site}`,
      since: seen?.suppressed ?? 0,
    };
    if (env.kind === EnvelopeKind.Stable)
      this.#o.log.debug(fields, "message for an unknown member (dropped)");
    else this.#o.log.warn(fields, "message for an unknown member (dropped)");
    if (!seen && this.#unknownLogged.size >= 256) this.#unknownLogged.clear(); // bounded: names are remote input
    this.#unknownLogged.set(key, { at: now, suppressed: 0 });
  }

  #memberKeyOf(name: string): string | null {
    const m = this.#o.view()?.members.find((x) => x.name === name);
    return m ? memberKey(m) : null;
  }
}
