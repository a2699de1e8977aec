// The delivery guarantee of one member (docs/DELIVERY.md): the send buffer of our unstable
// cross-site messages and their retransmission, the receive windows of remote senders, the
// stability reports (member -> site master -> sender), and the drain / site-unreachable /
// site-reachable events. It reaches the local cluster and the bridge only through a DeliveryPath,
// so a test drives it with a fake path, a fake clock and tick().
import { EventEmitter } from "node:events";
import { ConfigError } from "../../../contract/errors.js";
import { everyAfterPoll } from "../../after-poll.js";
import { type Member, memberKey, type View } from "../../cluster/member.js";
import type { Logger } from "../../observability/log.js";
import {
  type Destination,
  decodeEnvelope,
  type Envelope,
  EnvelopeKind,
  encodedSize,
  encodeEnvelope,
  type Origin,
} from "../envelope.js";
import { RelayError } from "../errors.js";
import {
  DEFAULT_ACK_INTERVAL_MS,
  DEFAULT_RETRANSMIT_TIMEOUT_MS,
  DEFAULT_SITE_GONE_MS,
  type RelayChannelOptions,
} from "../options.js";
import { isAddressedTo } from "../routing.js";
import type { DeliveryGap, RelayAddress, RelayStats, SiteBacklog, SiteGone, Topology } from "../types.js";
import { StabilityCertifier } from "./certifier.js";
import { StableLatency } from "./latency.js";
import { SiteReachability } from "./reachability.js";
import { type AcceptResult, ReceiveWindows } from "./receive-window.js";
import {
  ackEnvelope,
  decodeAck,
  decodeStable,
  encodeStable,
  laneMarkEnvelope,
  MAX_MARKS_PER_ACK,
  viewTag,
} from "./reports.js";
import { type Outgoing, SendBuffer } from "./send-buffer.js";

/**
 * A remote sender's receive state is dropped when it has been silent this long and is gone from
 * its site's view, or its site has no view we know of (ms).
 */
const ORIGIN_GONE_MS = 30_000;
/** Period of the clean-up of receive and stability state (ms). */
const CLEANUP_INTERVAL_MS = 5000;
const NO_SITES: readonly string[] = Object.freeze([]);
/** Bound of the per-site [site] lists (destinations come from our own sends; sites are few). */
const MAX_SITE_LISTS = 256;
/**
 * Lane positions delivered since our last report after which we report at the end of this turn
 * instead of at the next tick, and the site master certifies what that report advances at once.
 * Under load a sender's unstable messages then live ~15 ms instead of 1-2 ack intervals: long
 * enough a life got them promoted out of V8's young generation, and the old generation's collections
 * were a quarter of a sender's CPU at 1 KB (bench/README.md, issue 14). At low rates nothing changes.
 */
export const EARLY_REPORT_MESSAGES = 512;

/** What the engine needs from its channel: who we are, our site's view and routes, and the ways out. */
export interface DeliveryPath {
  /** Us, as the origin of our envelopes. */
  readonly origin: Origin;
  readonly log: Logger;
  /** The clock (ms). */
  now(): number;
  /** Our site's current view, or null before the first one. */
  view(): View | null;
  /** The site masters of the current view. */
  siteMasters(): readonly Member[];
  /** The site master that carries our traffic to other sites, if any. */
  forwarder(): Member | undefined;
  isMe(m: Member): boolean;
  /** Routes to the remote sites and the views of our site and the reachable ones. */
  topology(): Pick<Topology, "routes" | "sites">;
  /** A lane envelope towards the bridge (through our forwarding site master). False: not sent. */
  sendLane(env: Envelope, bytes: Buffer): boolean;
  /** A report to a member of our site. Throws when it cannot be sent. */
  sendToMember(to: Member, bytes: Uint8Array): void;
  /** A Stable report to a sender of another site. Throws when it cannot be sent. */
  sendStable(to: RelayAddress, payload: Uint8Array): void;
  /** A remote sender's message addressed to us, in order and once. */
  deliver(env: Envelope): void;
}

/** The channel options the engine reads (docs/DELIVERY.md, "Options"). */
export type DeliveryOptions = Pick<
  RelayChannelOptions,
  "reliable" | "sendBuffer" | "receiveLimits" | "retransmitTimeoutMs" | "ackIntervalMs" | "siteGoneMs"
>;

export interface DeliveryEvents {
  /** Every lane that refused a message (admit threw BUFFER_FULL) is now at most half full or gone. */
  drain: [];
  "site-unreachable": [SiteBacklog];
  "site-reachable": [SiteBacklog];
  "site-gone": [SiteGone];
  gap: [DeliveryGap];
}

/** The engine's share of RelayStats, plus the reports it could not decode. */
export type DeliveryStats = Pick<
  RelayStats,
  | "bufferedMessages"
  | "bufferedBytes"
  | "sendsRefused"
  | "blockedMs"
  | "retransmitted"
  | "duplicates"
  | "heldBack"
  | "heldBackOverflows"
  | "decodeErrors"
  | "missed"
  | "receiveWindows"
  | "heldBackBytes"
  | "sitesGone"
  | "droppedForGoneSites"
  | "primaryView"
>;

export class DeliveryEngine extends EventEmitter<DeliveryEvents> {
  /** Whether the guarantee is on; off, only incoming lanes and reports are handled. */
  readonly reliable: boolean;
  readonly #path: DeliveryPath;
  readonly #outbox: SendBuffer;
  readonly #windows: ReceiveWindows<Envelope>;
  readonly #certifier: StabilityCertifier;
  readonly #retransmitTimeoutMs: number;
  readonly #ackIntervalMs: number;
  readonly #reachability: SiteReachability;
  /**
   * Remote sites that announced a view on the bridge and were not declared gone since: the
   * targets of "send to all" (unreachable ones included). Bounded by the send buffer's maxSites.
   */
  readonly #knownSites = new Set<string>();
  readonly #siteLists = new Map<string, readonly string[]>();
  /** Sites whose full lane refused a message since the last drain. */
  readonly #refusedSites = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  /** Lane positions delivered since our last report (EARLY_REPORT_MESSAGES). */
  #deliveredSinceReport = 0;
  /** A site master: a report arrived that the next early certification should take. */
  #reportArrived = false;
  #earlyScheduled = false;
  #closed = false;
  #fullReport = false;
  #routeSignature = "";
  #forwarderKey = "";
  #waitingForDrain = false;
  #blockedSince = 0;
  #blockedMs = 0;
  #sendsRefused = 0;
  #retransmitted = 0;
  #decodeErrors = 0;
  #sitesGone = 0;
  #droppedForGoneSites = 0;
  #lastCleanup = 0;
  /** Send -> Stable time of our cross-site messages, per destination site (latency.ts). */
  readonly latency: StableLatency;

  constructor(path: DeliveryPath, options: DeliveryOptions = {}) {
    super();
    this.#path = path;
    this.#certifier = new StabilityCertifier(path.log);
    this.reliable = options.reliable ?? true;
    this.#outbox = new SendBuffer(options.sendBuffer);
    this.latency = new StableLatency(this.#outbox.limits.maxSites);
    this.#windows = new ReceiveWindows(options.receiveLimits);
    this.#retransmitTimeoutMs = options.retransmitTimeoutMs ?? DEFAULT_RETRANSMIT_TIMEOUT_MS;
    this.#ackIntervalMs = options.ackIntervalMs ?? DEFAULT_ACK_INTERVAL_MS;
    const siteGoneMs = options.siteGoneMs ?? DEFAULT_SITE_GONE_MS;
    for (const [k, v, max] of [
      ["retransmitTimeoutMs", this.#retransmitTimeoutMs, 600_000],
      ["ackIntervalMs", this.#ackIntervalMs, 600_000],
      ["siteGoneMs", siteGoneMs, 7 * 24 * 3_600_000],
    ] as const) {
      if (!(Number.isFinite(v) && v >= 1 && v <= max))
        throw new ConfigError(`${k} must be a number of ms in 1..${max} (got ${v})`);
    }
    this.#reachability = new SiteReachability(3 * this.#retransmitTimeoutMs, siteGoneMs);
  }

  /** Starts the periodic reports and checks (reliable mode). */
  start(): void {
    if (this.reliable && !this.#closed && !this.#timer) {
      // The tick judges lanes by how long their acknowledgements have been missing: after a stall
      // of this process it reads the stability reports waiting unread first (test/relay/delivery-stall.test.ts).
      this.#timer = everyAfterPoll(() => this.tick(), this.#ackIntervalMs);
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** False while some lane of the send buffer (or its total) is full. */
  get writable(): boolean {
    return !this.#outbox.full;
  }

  /** False while a cross-site message to `dest` would be refused with BUFFER_FULL. */
  writableTo(dest: Destination): boolean {
    return this.#outbox.canTake(128, this.#targetSites(dest));
  }

  /** The send buffer's limits in force (per site and in total). */
  get sendBufferLimits(): SendBuffer["limits"] {
    return this.#outbox.limits;
  }

  /** Our unstable messages per destination site. */
  backlog(): SiteBacklog[] {
    return this.#outbox.lanes().map((l) => ({ site: l.site, messages: l.messages, bytes: l.bytes }));
  }

  /** Destination sites with a lane, and whether each is unreachable now ("site-unreachable" told). */
  reachability(): { site: string; unreachable: boolean }[] {
    return this.#outbox
      .sites()
      .map((site) => ({ site, unreachable: this.#reachability.isUnreachable(site) }));
  }

  stats(): DeliveryStats {
    const w = this.#windows.stats();
    return {
      bufferedMessages: this.#outbox.messages,
      bufferedBytes: this.#outbox.bytes,
      sendsRefused: this.#sendsRefused,
      blockedMs: this.#blockedMs + (this.#blockedSince ? this.#path.now() - this.#blockedSince : 0),
      retransmitted: this.#retransmitted,
      duplicates: w.duplicates,
      heldBack: w.held,
      heldBackOverflows: w.overflows,
      decodeErrors: this.#decodeErrors,
      missed: w.missed,
      receiveWindows: w.origins,
      heldBackBytes: w.heldBytes,
      sitesGone: this.#sitesGone,
      droppedForGoneSites: this.#droppedForGoneSites,
      primaryView: this.#certifier.primary,
    };
  }

  // ---- Our messages ----

  /** Throws BUFFER_FULL when a cross-site message of `size` payload bytes to `dest` does not fit. */
  admit(dest: Destination, size: number): void {
    const sites = this.#targetSites(dest);
    if (sites.length > 0 && !this.#outbox.canTake(size + 128, sites)) {
      const refusing = this.#outbox.refusingSites(size + 128, sites);
      for (const s of refusing) this.#refusedSites.add(s);
      this.#sendsRefused++;
      this.#blockedSince ||= this.#path.now();
      this.#waitingForDrain = true;
      const which = refusing.length > 0 ? `for ${refusing.join(", ")}` : "(total or number of sites)";
      throw new RelayError(
        "BUFFER_FULL",
        `send buffer full ${which} (${this.#outbox.messages} messages, ${this.#outbox.bytes} bytes unstable): wait for 'drain'`,
      );
    }
  }

  /**
   * Buffers a Data envelope of ours for each target site and sends it on that site's lane.
   * `encodedBytes`: its encoded size when the caller knows it. The caller may reuse its payload's
   * buffer afterwards: what is kept is our encoding (Outgoing.bytes).
   */
  enqueue(env: Envelope, encodedBytes?: number): void {
    const now = this.#path.now();
    const size = encodedBytes ?? encodedSize(env);
    for (const site of this.#targetSites(env.dest))
      this.#transmit(site, this.#outbox.add(site, size, now), now, env);
  }

  /** Remote sites a reliable message to `dest` is buffered for. */
  #targetSites(dest: Destination): readonly string[] {
    if (dest.kind !== "all")
      return dest.site === this.#path.origin.site ? NO_SITES : this.#oneSite(dest.site);
    return [...this.#knownSites].sort();
  }

  /** [site], one array per site (read-only: this runs for every message sent). */
  #oneSite(site: string): readonly string[] {
    let a = this.#siteLists.get(site);
    if (!a) {
      if (this.#siteLists.size >= MAX_SITE_LISTS) this.#siteLists.clear();
      a = Object.freeze([site]);
      this.#siteLists.set(site, a);
    }
    return a;
  }

  /**
   * Sends (or re-sends) one buffered message towards `site` along the current path. `first`: the
   * message itself, on its first send; a re-send decodes it from that send's encoding, which the
   * send buffer keeps (one buffer per unstable message and no object graph: what a message leaves
   * for the GC until it is stable, bench/README.md, issue 14).
   */
  #transmit(site: string, o: Outgoing, now: number, first?: Envelope): boolean {
    o.sentAt = now;
    o.sends++;
    const e = first ?? decodeEnvelope(o.bytes!);
    const low = this.#outbox.lowOf(site);
    const lane = o.sends > 1 ? { site, seq: o.laneSeq, low, retry: true } : { site, seq: o.laneSeq, low };
    // Spelled out rather than spread: this runs for every message sent.
    const env: LaneEnvelope = {
      kind: e.kind,
      hops: e.hops,
      origin: e.origin,
      seq: e.seq,
      dest: e.dest,
      payload: e.payload,
      lane,
    };
    const bytes = encodeEnvelope(e.service ? { ...env, service: true } : env);
    if (first) {
      o.bytes = bytes;
      // What the path may hold on to (a held or undeliverable envelope): not the caller's buffer.
      env.payload = bytes.subarray(bytes.length - e.payload.length);
    }
    return this.#path.sendLane(env, bytes);
  }

  /** Re-sends the unstable messages for `site` (only those last sent before `sentBefore`), in order. */
  #retransmit(site: string, now: number, sentBefore = Number.POSITIVE_INFINITY): void {
    for (const o of this.#outbox.pending(site)) {
      if (o.sentAt > sentBefore) break;
      if (!this.#transmit(site, o, now)) break;
      this.#retransmitted++;
    }
  }

  #retransmitAll(why: string): void {
    if (!this.reliable || this.#outbox.messages === 0) return;
    const now = this.#path.now();
    const routes = this.#path.topology().routes;
    this.#path.log.debug({ why, messages: this.#outbox.messages }, "retransmitting unstable messages");
    for (const site of this.#outbox.sites()) {
      const route = routes.find((r) => r.site === site);
      if (route && !route.up) continue;
      this.#retransmit(site, now);
    }
  }

  /**
   * "drain" as soon as one lane that refused a message is at most half full again (or gone):
   * waiters retry, and a send to another, still full site is refused again. One full site never
   * holds back the drain of the others.
   */
  #maybeDrain(): void {
    if (!this.#waitingForDrain) return;
    if (this.#outbox.bytes > this.#outbox.limits.maxTotalBytes / 2) return;
    let freed = this.#refusedSites.size === 0; // refused by the total or the number of sites
    for (const site of [...this.#refusedSites]) {
      if (this.#outbox.fillOf(site) <= 0.5) {
        this.#refusedSites.delete(site);
        freed = true;
      }
    }
    if (!freed) return;
    if (this.#refusedSites.size === 0) {
      this.#waitingForDrain = false;
      if (this.#blockedSince) this.#blockedMs += this.#path.now() - this.#blockedSince;
      this.#blockedSince = 0;
    }
    this.emit("drain");
  }

  // ---- What arrives ----

  /** A lane envelope for our site: into the sender's window, out in order, exactly once. */
  onLane(env: Envelope): void {
    const lane = env.lane!;
    const me = this.#path.origin;
    if (lane.site !== me.site) return;
    if (env.kind === EnvelopeKind.LaneMark) {
      this.#afterAccept(this.#windows.advance(env.origin, lane.low, this.#path.now()));
      return;
    }
    if (env.kind !== EnvelopeKind.Data) return;
    // The payload may be a view into a receive buffer that is reused after this call: a message
    // that will be held back gets its own copy, in memory of its own (a slice of Node's pool would
    // keep an 8 KiB slab alive per held message, past the window's byte bound).
    const next = Math.max(this.#windows.nextOf(env.origin.incarnation) ?? 1, lane.low);
    const item = lane.seq > next ? { ...env, payload: ownCopy(env.payload) } : env;
    const r = this.#windows.accept(
      env.origin,
      lane.seq,
      lane.low,
      item,
      env.payload.length,
      this.#path.now(),
    );
    this.#afterAccept(r);
  }

  /** What a window gave back: the gap it reports (if any), then the envelopes now in order. */
  #afterAccept(r: AcceptResult<Envelope>): void {
    const me = this.#path.origin;
    if (r.missed) {
      const gap: DeliveryGap = {
        from: { site: r.missed.origin.site, name: r.missed.origin.name },
        first: r.missed.from,
        last: r.missed.to,
      };
      this.#path.log.warn(
        { from: `${gap.from.name}:${gap.from.site}`, first: gap.first, last: gap.last },
        "messages of a remote sender became stable without us (we were out of the primary view): gap",
      );
      this.emit("gap", gap);
    }
    for (const e of r.deliver) if (isAddressedTo(e.dest, me.site, me.name)) this.#path.deliver(e);
    this.#deliveredSinceReport += r.deliver.length;
    if (this.#deliveredSinceReport >= EARLY_REPORT_MESSAGES) this.#scheduleEarly();
  }

  /** Reports and certification at the end of this turn (once per turn, whoever asks). */
  #scheduleEarly(): void {
    if (this.#earlyScheduled || this.#closed) return;
    this.#earlyScheduled = true;
    setImmediate(() => {
      this.#earlyScheduled = false;
      if (this.#closed || !this.#path.view()) return;
      const now = this.#path.now();
      try {
        if (this.#deliveredSinceReport >= EARLY_REPORT_MESSAGES) this.#sendReports(now);
        if (this.#reportArrived && this.#amSiteMaster()) {
          this.#reportArrived = false;
          for (const m of this.#certifier.take(now)) this.#sendStable(m);
        }
      } catch (err) {
        this.#path.log.warn({ err: (err as Error).message }, "early delivery report failed");
      }
    });
  }

  /** A member's delivered positions (counted while we are a site master). */
  onAck(from: Member, env: Envelope): void {
    if (!this.#amSiteMaster()) return;
    try {
      const ack = decodeAck(env.payload);
      this.#certifier.report(memberKey(from), ack.marks, this.#path.now(), ack.view);
      this.#reportArrived = true;
      this.#scheduleEarly();
    } catch (err) {
      this.#decodeErrors++;
      this.#path.log.warn({ from: from.name, err: (err as Error).message }, "bad delivery report (dropped)");
    }
  }

  /** A site says every member of it has delivered our messages up to seq. */
  onStable(env: Envelope): void {
    let r: { incarnation: string; seq: number };
    try {
      r = decodeStable(env.payload);
    } catch (err) {
      this.#decodeErrors++;
      this.#path.log.warn(
        { site: env.origin.site, err: (err as Error).message },
        "bad stable report (dropped)",
      );
      return;
    }
    if (r.incarnation !== this.#path.origin.incarnation) return;
    const site = env.origin.site;
    if (this.#outbox.stable(site, r.seq, this.latency.forSite(site), this.#path.now()) > 0)
      this.#maybeDrain();
  }

  /** Our site's view changed (the channel has installed it). */
  onView(view: View): void {
    if (!this.reliable) return;
    const own = view.members[0] !== undefined && this.#path.isMe(view.members[0]);
    this.#certifier.onView(view, own, viewTag(view));
    // A new site master rebuilds its stability table from everyone's next (full) report.
    this.#fullReport = true;
    const f = this.#path.forwarder();
    const key = f ? memberKey(f) : "";
    if (key !== this.#forwarderKey) {
      const changed = this.#forwarderKey !== "";
      this.#forwarderKey = key;
      if (changed) queueMicrotask(() => this.#retransmitAll("our site master changed"));
    }
  }

  /** Routes changed (remote site masters, routers, up/down): re-send what may have been lost on the way. */
  onRoutes(): void {
    if (!this.reliable || this.#closed) return;
    const { routes, sites } = this.#path.topology();
    // A site is a target of "send to all" once one of its site masters announced its view.
    for (const s of sites) {
      if (s.site !== this.#path.origin.site && this.#knownSites.size < this.#outbox.limits.maxSites) {
        this.#knownSites.add(s.site);
      }
    }
    const sig = routes
      .map((r) => `${r.site}:${r.up}:${r.routers.join(",")}:${r.siteMasters.join(",")}`)
      .join(";");
    if (sig === this.#routeSignature) return;
    this.#routeSignature = sig;
    this.#retransmitAll("route change");
  }

  // ---- Periodic work ----

  /** Reports, stability, retransmission by timeout, reachability, drain, clean-up (every ackIntervalMs). */
  tick(): void {
    if (this.#closed || !this.#path.view()) return;
    const now = this.#path.now();
    try {
      this.#sendReports(now);
      // Only a primary view certifies stability: a minority side (a frozen site master that woke
      // up alone, half of a split site) must never make a sender drop what the other side lacks.
      if (this.#amSiteMaster()) {
        this.#reportArrived = false;
        for (const m of this.#certifier.take(now)) this.#sendStable(m);
      }
      this.#checkLanes(now);
      this.#maybeDrain();
      if (now - this.#lastCleanup >= CLEANUP_INTERVAL_MS) this.#cleanup(now);
    } catch (err) {
      this.#path.log.warn({ err: (err as Error).message }, "delivery tick failed");
    }
  }

  #amSiteMaster(): boolean {
    return this.#path.siteMasters().some((m) => this.#path.isMe(m));
  }

  /** Our delivered positions to our site masters (only what changed; everything after a view change). */
  #sendReports(now: number): void {
    const view = this.#path.view();
    if (!view || (!this.#fullReport && !this.#windows.hasReport)) return;
    const tag = viewTag(view);
    this.#deliveredSinceReport = 0;
    const marks = this.#windows.takeReport(this.#fullReport);
    this.#fullReport = false;
    // A full report goes out even when empty: it tells the site masters which view we are in.
    for (let i = 0; i < Math.max(marks.length, 1); i += MAX_MARKS_PER_ACK) {
      const chunk = marks.slice(i, i + MAX_MARKS_PER_ACK);
      let bytes: Buffer | null = null;
      for (const sm of this.#path.siteMasters()) {
        if (this.#path.isMe(sm)) {
          this.#certifier.report(memberKey(sm), chunk, now, tag);
          this.#reportArrived = true;
          continue;
        }
        bytes ??= encodeEnvelope(ackEnvelope(this.#path.origin, tag, chunk));
        try {
          this.#path.sendToMember(sm, bytes);
        } catch {
          this.#fullReport = true; // try again with everything next time
        }
      }
    }
  }

  #sendStable(m: { site: string; name: string; incarnation: string; seq: number }): void {
    try {
      this.#path.sendStable(
        { site: m.site, name: m.name },
        encodeStable({ incarnation: m.incarnation, seq: m.seq }),
      );
    } catch (err) {
      this.#path.log.debug(
        { to: `${m.name}:${m.site}`, err: (err as Error).message },
        "stable report not sent",
      );
    }
  }

  /** Retransmission by timeout, and the unreachable/reachable events of sites we have messages for. */
  #checkLanes(now: number): void {
    if (this.#outbox.messages === 0 && !this.#reachability.anyUnreachable) return;
    const routes = this.#path.topology().routes;
    for (const lane of this.#outbox.lanes()) {
      const verdict = this.#reachability.assess(
        lane,
        routes.find((r) => r.site === lane.site),
        now,
      );
      const backlog = { site: lane.site, messages: lane.messages, bytes: lane.bytes };
      switch (verdict.kind) {
        case "gone":
          this.#declareGone(lane.site, verdict.downMs);
          break;
        case "unreachable":
          this.#path.log.warn(backlog, "site unreachable: our messages wait for it");
          this.emit("site-unreachable", backlog);
          break;
        case "reachable":
          this.#path.log.info(backlog, "site reachable again: re-sending what waits for it");
          this.emit("site-reachable", backlog);
          this.#retransmit(lane.site, now);
          break;
        case "down":
          break;
        case "up":
          if (lane.oldestSentAt !== null && now - lane.oldestSentAt >= this.#retransmitTimeoutMs) {
            this.#retransmit(lane.site, now, now - this.#retransmitTimeoutMs);
          }
          break;
      }
    }
  }

  /** Drops everything we keep for `site`: it has been unreachable for siteGoneMs. */
  #declareGone(site: string, downMs: number): void {
    const dropped = this.#outbox.dropSite(site);
    this.#reachability.forget(site);
    this.#knownSites.delete(site);
    this.#sitesGone++;
    this.#droppedForGoneSites += dropped.messages;
    this.#path.log.warn(
      { ...dropped, downMs },
      "site gone: unreachable too long, our backlog for it is dropped (its members will see a gap)",
    );
    this.emit("site-gone", dropped);
    this.#maybeDrain();
  }

  /**
   * A lane mark for every idle lane (nothing unstable in it): its next lane seq as `low`, so a
   * member of that site that missed messages while out of its primary view hears of it now.
   */
  #sendLaneMarks(): void {
    for (const lane of this.#outbox.lanes()) {
      if (lane.messages > 0 || lane.nextSeq <= 1) continue;
      const env = laneMarkEnvelope(this.#path.origin, lane.site, lane.nextSeq);
      this.#path.sendLane(env, encodeEnvelope(env));
    }
  }

  /** Forgets the receive state of senders gone from their site, and idle stability entries. */
  #cleanup(now: number): void {
    this.#lastCleanup = now;
    this.#sendLaneMarks();
    this.#fullReport = true; // a periodic full report repairs a lost one
    const sites = this.#path.topology().sites;
    this.#windows.retain((ref, lastHeard) => {
      if (now - lastHeard < ORIGIN_GONE_MS) return true;
      const view = sites.find((s) => s.site === ref.site);
      return view?.members.some((m) => m.name === ref.name) === true;
    });
    this.#certifier.forgetIdle(now - 2 * ORIGIN_GONE_MS);
  }
}

/** A lane envelope just built for one send: the engine may still set its payload. */
type LaneEnvelope = Omit<Envelope, "payload"> & { payload: Uint8Array };

/** A Buffer (as every payload we deliver is) with memory of its own. */
function ownCopy(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  out.set(bytes);
  return out;
}
