// The router's Prometheus metrics, read from its plain counters at scrape time. They read the
// router through RouterMetricsSource, so this module does not import the router (no cycle).
// Cardinality is bounded: label values come from fixed sets (types, reasons, codes), except the
// group of `registrations{group}`, which exists only for the --metrics-groups largest groups; the
// rest are summed in `registrations_unlisted`. So /metrics stays small whatever clients register.
import { hostname } from "node:os";
import type { Registry } from "prom-client";
import {
  byLabel,
  counterFrom,
  createMetricsRegistry,
  gaugeFrom,
  histogramFrom,
} from "../observability/metrics.js";
import { RELAY_VERSION } from "../relay/version.js";
import { registerTlsMetrics } from "../tls/metrics.js";
import type { TlsReloadStats } from "../tls/watch.js";
import type { ResolvedRouterOptions } from "./options.js";
import type { Group, Registry as MemberRegistry, RegistrationOwner } from "./registry.js";
import { FLUSH_FRAME_BOUNDS, type RouterCounters, type RouterStats } from "./stats.js";

const P = "relay_router_";

/** What the metrics read from a router (GossipRouter is one). */
export interface RouterMetricsSource {
  readonly counters: RouterCounters;
  readonly registry: Pick<MemberRegistry<RegistrationOwner>, "groups">;
  readonly options: Pick<ResolvedRouterOptions, "metricsGroups">;
  stats(): RouterStats;
  flowStats(): { readonly pausedSenders: number; readonly queuedBytes: number };
  /** TLS reload counters; null or absent without TLS. */
  readonly tlsReload?: TlsReloadStats | null;
  limitStats(): {
    readonly maxConnections: number;
    readonly openSockets: number;
    readonly handshaking: number;
    readonly partialFrameBytes: number;
  };
}

/** The `n` groups with the most members (ties: the name), largest first, in one pass. */
export function largestGroups<G extends Pick<Group, "name" | "members">>(
  groups: Iterable<G>,
  n: number,
): G[] {
  const top: G[] = [];
  if (n <= 0) return top;
  const before = (a: G, b: G) =>
    a.members.size > b.members.size || (a.members.size === b.members.size && a.name < b.name);
  for (const g of groups) {
    if (top.length === n && !before(g, top[n - 1]!)) continue;
    let i = top.length === n ? n - 1 : top.length;
    if (top.length < n) top.push(g);
    while (i > 0 && before(g, top[i - 1]!)) {
      top[i] = top[i - 1]!;
      i--;
    }
    top[i] = g;
  }
  return top;
}

export function createRouterMetrics(router: RouterMetricsSource): Registry {
  const registry = createMetricsRegistry();
  const c = router.counters;
  const stats = () => router.stats();
  histogramFrom(registry, {
    name: `${P}flush_frames`,
    help: "Frames per output batch: each read's frames for one receiver go out in one socket write (forwarding batch sizes)",
    read: () => {
      let acc = 0;
      const buckets = FLUSH_FRAME_BOUNDS.map((le, i) => {
        acc += c.flushFrames[i]!;
        return { le: String(le), value: acc };
      });
      acc += c.flushFrames[FLUSH_FRAME_BOUNDS.length]!;
      buckets.push({ le: "+Inf", value: acc });
      return [{ labels: {}, buckets, sum: c.flushFramesSum, count: acc }];
    },
  });
  gaugeFrom(registry, {
    name: "relay_build_info",
    help: "Always 1; the labels name the version of the relay and this router (its host name: the pod name)",
    labelNames: ["version", "node"],
    read: () => [[{ version: RELAY_VERSION, node: hostname() }, 1]],
  });
  gaugeFrom(registry, {
    name: `${P}connections`,
    help: "Open client connections",
    read: () => c.connections,
  });
  counterFrom(registry, {
    name: `${P}connections_accepted_total`,
    help: "Client connections accepted",
    read: () => c.connectionsTotal,
  });
  counterFrom(registry, {
    name: `${P}connections_closed_total`,
    help: "Client connections closed, by reason",
    labelNames: ["reason"],
    read: () => byLabel("reason", stats().closes),
  });
  gaugeFrom(registry, {
    name: `${P}groups`,
    help: "Groups with at least one member",
    read: () => router.registry.groups.size,
  });
  gaugeFrom(registry, {
    name: `${P}registrations`,
    help: "Registered members per group, for the largest groups only (--metrics-groups)",
    labelNames: ["group"],
    read: () =>
      largestGroups(router.registry.groups.values(), router.options.metricsGroups).map(
        (g) => [{ group: g.name }, g.members.size] as const,
      ),
  });
  gaugeFrom(registry, {
    name: `${P}registrations_unlisted`,
    help: "Registered members of the groups without a registrations{group} series",
    read: () => {
      const listed = largestGroups(router.registry.groups.values(), router.options.metricsGroups);
      return stats().registrations - listed.reduce((sum, g) => sum + g.members.size, 0);
    },
  });
  counterFrom(registry, {
    name: `${P}refused_total`,
    help: "Connections, REGISTERs and frames refused, by reason (limits, authentication, authorization)",
    labelNames: ["reason"],
    read: () => byLabel("reason", stats().refused),
  });
  gaugeFrom(registry, {
    name: `${P}max_connections`,
    help: "Connection limit in force (--max-connections, lowered to fit the open-file limit)",
    read: () => router.limitStats().maxConnections,
  });
  gaugeFrom(registry, {
    name: `${P}open_sockets`,
    help: "Open TCP connections counted against --max-connections (TLS handshakes included)",
    read: () => router.limitStats().openSockets,
  });
  gaugeFrom(registry, {
    name: `${P}tls_handshakes_in_progress`,
    help: "TLS handshakes under way",
    read: () => router.limitStats().handshaking,
  });
  gaugeFrom(registry, {
    name: `${P}partial_frame_bytes`,
    help: "Bytes held in reassembly buffers of frames received in part (--max-partial-bytes)",
    read: () => router.limitStats().partialFrameBytes,
  });
  counterFrom(registry, {
    name: `${P}frames_in_total`,
    help: "Frames received, by type",
    labelNames: ["type"],
    read: () => byLabel("type", stats().framesIn),
  });
  counterFrom(registry, {
    name: `${P}bytes_in_total`,
    help: "Frame bytes received (length prefix included), by type",
    labelNames: ["type"],
    read: () => byLabel("type", stats().bytesIn),
  });
  counterFrom(registry, {
    name: `${P}frames_out_total`,
    help: "Frames queued for sending, by type",
    labelNames: ["type"],
    read: () => byLabel("type", stats().framesOut),
  });
  counterFrom(registry, {
    name: `${P}bytes_out_total`,
    help: "Frame bytes queued for sending (length prefix included), by type",
    labelNames: ["type"],
    read: () => byLabel("type", stats().bytesOut),
  });
  counterFrom(registry, {
    name: `${P}undelivered_frames_total`,
    help: "Frames not delivered, by reason",
    labelNames: ["reason"],
    read: () => byLabel("reason", stats().undelivered),
  });
  counterFrom(registry, {
    name: `${P}ignored_frames_total`,
    help: "Frames received and deliberately ignored, by reason",
    labelNames: ["reason"],
    read: () => byLabel("reason", stats().ignored),
  });
  counterFrom(registry, {
    name: `${P}decode_errors_total`,
    help: "Connections closed for a malformed frame, by ProtocolError code",
    labelNames: ["code"],
    read: () => byLabel("code", stats().decodeErrors),
  });
  counterFrom(registry, {
    name: `${P}backpressure_pauses_total`,
    help: "Times a sender was paused because a receiver was over --max-queue",
    read: () => c.backpressurePauses,
  });
  counterFrom(registry, {
    name: `${P}congestion_sheds_total`,
    help: "Receivers congested past --congestion-grace: senders resumed, multicast copies for them dropped",
    read: () => c.congestionSheds,
  });
  counterFrom(registry, {
    name: `${P}tls_handshake_timeouts_total`,
    help: "TLS connections closed for not finishing the handshake within --tls-handshake-timeout",
    read: () => c.tlsHandshakeTimeouts,
  });
  counterFrom(registry, {
    name: `${P}slow_receiver_disconnects_total`,
    help: "Receivers disconnected for staying over --max-queue longer than --slow-timeout",
    read: () => c.slowReceiverDisconnects,
  });
  counterFrom(registry, {
    name: `${P}expired_connections_total`,
    help: "Connections closed by --expiry (silent for that long)",
    read: () => c.expiries,
  });
  counterFrom(registry, {
    name: `${P}tls_rejected_total`,
    help: "TLS handshakes refused (e.g. no client certificate signed by the CA)",
    read: () => c.tlsRejected,
  });
  gaugeFrom(registry, {
    name: `${P}paused_senders`,
    help: "Senders currently paused by back-pressure",
    read: () => router.flowStats().pausedSenders,
  });
  gaugeFrom(registry, {
    name: `${P}queued_bytes`,
    help: "Bytes queued towards all clients",
    read: () => router.flowStats().queuedBytes,
  });
  registerTlsMetrics(registry, P, () => router.tlsReload ?? null);
  return registry;
}
