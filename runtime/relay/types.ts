// The data RelayChannel hands to applications: addresses, messages, topology, events, backlog and
// counters.
import type { View } from "../cluster/member.js";
import type { TunnelStatusEvent } from "../tunnel/status.js";
import type { Undeliverable } from "./bridge-agent.js";
import type { ProbeInfo, RouteInfo, RouterInfo, SiteViewInfo } from "./control.js";
import type { Destination } from "./envelope.js";

/** A member anywhere: `name` in `site`. */
export interface RelayAddress {
  readonly name: string;
  readonly site: string;
}

export interface RelayMessage {
  readonly from: RelayAddress;
  readonly dest: Destination;
  /** The sender's sequence number for this message (per sender incarnation). */
  readonly seq: number;
  /**
   * The bytes as sent: yours to keep and read later, never changed under you. It is a view into
   * what the connection read (no copy), so a kept payload keeps that read (up to 64 KiB) alive:
   * copy it (`new Uint8Array(m.payload)`) when you keep many small ones for long.
   */
  readonly payload: Uint8Array;
}

/** What a member knows about every site. */
export interface Topology {
  readonly site: string;
  readonly self: string;
  /** Our site first, then the reachable remote sites by name. members[0] = coordinator. */
  readonly sites: readonly SiteViewInfo[];
  readonly routes: readonly RouteInfo[];
  /** The router connections of our site master (ours when we are one). */
  readonly routers: readonly RouterInfo[];
}

export interface RelayChannelEvents {
  message: [RelayMessage];
  /** Data of a runtime service (sendService), e.g. replicated maps: never emitted as "message". */
  service: [RelayMessage];
  /** Our site's view changed. */
  view: [View];
  /** Anything in topology() changed. */
  topology: [Topology];
  /** A route to another site changed (site masters only; others see it in topology). */
  route: [RouteInfo];
  /** We started or stopped acting as a site master. */
  "site-master": [{ readonly active: boolean }];
  "probe-response": [ProbeInfo];
  /** A message could not be sent towards a site (no route within the hold time). */
  undeliverable: [Undeliverable];
  /** Router connection events of our bridge link (site masters only). */
  "bridge-status": [TunnelStatusEvent];
  /** A destination whose share of the send buffer refused a send (BUFFER_FULL) is at most half full again, or was declared gone: retry. */
  drain: [];
  /** Messages of ours wait for a site that is unreachable (they stay buffered and flow once it is back). */
  "site-unreachable": [SiteBacklog];
  /** A site reported unreachable is reachable again; its waiting messages are being re-sent. */
  "site-reachable": [SiteBacklog];
  /**
   * A site was unreachable for `siteGoneMs`: it is declared gone and our backlog for it (lane seqs
   * `from`..`to`) is dropped. If it comes back, its members are told what they missed ("gap").
   */
  "site-gone": [SiteGone];
  /**
   * We will never get messages `first`..`last` of a remote sender's lane to our site: they became
   * stable while we were not in our site's primary view (frozen, partitioned away, or the sender
   * dropped them when it declared our site gone). Told once per gap, at the first message after it.
   */
  gap: [DeliveryGap];
}

export interface SiteGone {
  readonly site: string;
  readonly messages: number;
  readonly bytes: number;
  /** Lane seqs dropped (inclusive); 0..0 when nothing waited. */
  readonly from: number;
  readonly to: number;
}

export interface DeliveryGap {
  readonly from: RelayAddress;
  /** Lane seqs missed (inclusive): `last - first + 1` messages of that sender to our site. */
  readonly first: number;
  readonly last: number;
}

/** Our messages waiting for one site. */
export interface SiteBacklog {
  readonly site: string;
  readonly messages: number;
  readonly bytes: number;
}

/** The RelayStats fields that are numbers (what a metric can read). */
export type NumericRelayStat = {
  [K in keyof RelayStats]: RelayStats[K] extends number ? K : never;
}[keyof RelayStats];

/** Counters, for /metrics and /status. */
export interface RelayStats {
  readonly sent: number;
  readonly delivered: number;
  readonly forwarded: number;
  readonly fromBridge: number;
  readonly undeliverable: number;
  readonly decodeErrors: number;
  /** Envelopes from the bridge dropped for not coming from the site they speak for (bridge-agent.ts). */
  readonly bridgeRefused: number;
  readonly siteMasterChanges: number;
  /** Unstable cross-site messages buffered (reliable mode). */
  readonly bufferedMessages: number;
  readonly bufferedBytes: number;
  /** Sends refused with BUFFER_FULL, and the time spent full (ms, including the current stretch). */
  readonly sendsRefused: number;
  readonly blockedMs: number;
  /** Cross-site messages sent again (retransmissions). */
  readonly retransmitted: number;
  /** Duplicates dropped and out-of-order messages held / not kept by our receive windows. */
  readonly duplicates: number;
  readonly heldBack: number;
  readonly heldBackOverflows: number;
  /** Remote senders we keep a receive window for, and the bytes held back in all of them. */
  readonly receiveWindows: number;
  readonly heldBackBytes: number;
  /** Lane messages of remote senders we were told we will never get ("gap" events). */
  readonly missed: number;
  /** Sites declared gone ("site-gone" events) and the messages dropped with them. */
  readonly sitesGone: number;
  readonly droppedForGoneSites: number;
  /** Whether our site's current view is primary (only a primary view certifies stability). */
  readonly primaryView: boolean;
  /** The cluster port: handshakes that failed the cluster secret, refused handshakes, views refused, caught errors. */
  readonly clusterAuthFailures: number;
  readonly clusterHandshakesRefused: number;
  readonly clusterViewsRefused: number;
  readonly clusterInternalErrors: number;
  /** Bytes read from and written to the other members of our site (the mesh, framing included). */
  readonly clusterBytesIn: number;
  readonly clusterBytesOut: number;
}
