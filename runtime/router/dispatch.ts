// What the router does with each frame a client sends, by GossipType: MESSAGE routed from its
// header (with a per-connection cache of the last header), REGISTER / UNREGISTER on the registry,
// GET_MBRS answered from it, HEARTBEAT echoed. Replies and forwarded frames go to the Forwarder.
import type { Logger } from "../observability/log.js";
import { addressKey, decodeBody, decodeRouteHeader } from "../protocol/codec.js";
import { ALL_GROUPS_PREFIX, getMbrsRspFrame } from "../protocol/frames.js";
import { type GossipData, GossipType, type PingData } from "../protocol/types.js";
import { type ClientConnection, ROUTE_CACHE_MAX } from "./connection.js";
import type { Forwarder } from "./forwarding.js";
import type { RegistrationGate } from "./limits.js";
import type { ResolvedRouterOptions } from "./options.js";
import { Group, type Registration, type Registry } from "./registry.js";
import type { RouterCounters, UndeliveredReason } from "./stats.js";

export { MAX_REGISTRATIONS_PER_CONNECTION } from "./limits.js";

type RouteTarget = Registration<ClientConnection> | Group<ClientConnection> | UndeliveredReason;

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
  /** Per-connection and router-wide limits of REGISTER (limits.ts). */
  readonly registrationGate: RegistrationGate;
}

export class Dispatcher {
  readonly #owner: DispatchOwner;
  readonly #out: Forwarder;
  readonly #heartbeat: Buffer;
  readonly #log: Logger;

  constructor(owner: DispatchOwner, out: Forwarder, heartbeat: Buffer, log: Logger) {
    this.#owner = owner;
    this.#out = out;
    this.#heartbeat = heartbeat;
    this.#log = log;
  }

  /** One whole frame (length prefix included) from an open connection. */
  onFrame(conn: ClientConnection, frame: Buffer): void {
    const counters = this.#owner.counters;
    const type = frame.length > 4 ? frame[4]! : 255;
    if (type <= GossipType.GetMbrsRspLast) {
      counters.framesIn[type]!++;
      counters.bytesIn[type]! += frame.length;
    }
    if (type === GossipType.Message) this.#routeMessage(conn, frame);
    else this.#control(conn, frame);
  }

  #routeMessage(conn: ClientConnection, frame: Buffer): void {
    const end = cacheableHeaderEnd(frame);
    let target: RouteTarget;
    if (end > 0 && conn.cacheGeneration === this.#owner.registry.generation && conn.cacheLen === end - 5) {
      const cache = conn.cacheBytes;
      let i = 5;
      while (i < end && frame[i] === cache[i - 5]) i++;
      target = i === end ? (conn.cacheTarget as RouteTarget) : this.#resolve(conn, frame, end);
    } else {
      target = this.#resolve(conn, frame, end);
    }
    if (typeof target === "string") {
      this.#out.undelivered(target, 1, conn);
    } else if (target instanceof Group) {
      // One copy per registration, as JGroups does (a connection holding two registrations in the
      // group gets the frame twice), the sender included.
      for (const reg of target.members.values()) this.#out.enqueueMulticast(reg.conn, frame);
    } else {
      this.#out.enqueueSlice(target.conn, frame, GossipType.Message);
    }
  }

  /** Decodes and looks up a route header (validating it), and caches the decision when possible. */
  #resolve(conn: ClientConnection, frame: Buffer, end: number): RouteTarget {
    const registry = this.#owner.registry;
    const hdr = decodeRouteHeader(frame.subarray(4));
    let target: RouteTarget;
    const group = hdr.group === null ? undefined : registry.group(hdr.group);
    if (!group) target = "unknown-group";
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

  #control(conn: ClientConnection, frame: Buffer): void {
    const { counters, registry } = this.#owner;
    // A REGISTER is kept in the registry: decode a private copy so that nothing it holds can alias
    // a read chunk or the splitter's reassembly buffer.
    const body = frame[4] === GossipType.Register ? Buffer.from(frame.subarray(4)) : frame.subarray(4);
    const data = decodeBody(body, { maxFrame: this.#owner.options.maxFrame });
    switch (data.type) {
      case GossipType.Register:
        this.#register(conn, data);
        break;
      case GossipType.Unregister:
        if (data.group === null) counters.ignoredFrame("missing-group");
        else if (data.addr === null) counters.ignoredFrame("missing-address");
        else {
          const reg = registry.unregister(data.group, data.addr);
          if (reg)
            this.#log.debug({ conn: conn.id, group: data.group, member: reg.logicalName }, "unregistered");
        }
        break;
      case GossipType.GetMbrs:
        this.#getMembers(conn, data.group);
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

  #register(conn: ClientConnection, data: GossipData): void {
    const { counters, registry } = this.#owner;
    if (data.group === null) {
      counters.ignoredFrame("missing-group");
      return;
    }
    if (data.addr === null) {
      counters.ignoredFrame("missing-address");
      return;
    }
    if (this.#owner.registrationGate.refuses(conn, data)) return;
    registry.register(data.group, data.addr, conn, data.logicalName, data.physicalAddr);
    this.#log.debug({ conn: conn.id, group: data.group, member: data.logicalName }, "registered");
  }

  #getMembers(conn: ClientConnection, group: string | null): void {
    const registry = this.#owner.registry;
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
      // Unknown group: JGroups answers nothing (the client hangs); we answer an empty LAST.
      out(getMbrsRspFrame(group, pings(registry.group(group)), true), GossipType.GetMbrsRspLast);
      return;
    }
    const groups = [...registry.groups.values()];
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
