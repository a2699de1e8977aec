// The router's Prometheus metrics, read from its plain counters at scrape time. They read the
// router through RouterMetricsSource, so this module does not import the router (no cycle).
import type { Registry } from "prom-client";
import { byLabel, counterFrom, createMetricsRegistry, gaugeFrom } from "../observability/metrics.js";
import { registerTlsMetrics } from "../tls/metrics.js";
import type { TlsReloadStats } from "../tls/watch.js";
import type { Registry as MemberRegistry, RegistrationOwner } from "./registry.js";
import type { RouterCounters, RouterStats } from "./stats.js";

const P = "relay_router_";

/** What the metrics read from a router (GossipRouter is one). */
export interface RouterMetricsSource {
  readonly counters: RouterCounters;
  readonly registry: Pick<MemberRegistry<RegistrationOwner>, "groups">;
  stats(): RouterStats;
  flowStats(): { readonly pausedSenders: number; readonly queuedBytes: number };
  /** TLS reload counters; null or absent without TLS. */
  readonly tlsReload?: TlsReloadStats | null;
}

export function createRouterMetrics(router: RouterMetricsSource): Registry {
  const registry = createMetricsRegistry();
  const c = router.counters;
  const stats = () => router.stats();
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
    help: "Registered members per group",
    labelNames: ["group"],
    read: () => [...router.registry.groups.values()].map((g) => [{ group: g.name }, g.members.size] as const),
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
    name: `${P}slow_receiver_disconnects_total`,
    help: "Receivers disconnected for staying over --max-queue longer than --slow-timeout",
    read: () => c.slowReceiverDisconnects,
  });
  counterFrom(registry, {
    name: `${P}expired_connections_total`,
    help: "Connections closed by --expiry",
    read: () => c.expiries,
  });
  counterFrom(registry, {
    name: `${P}tls_rejected_total`,
    help: "TLS handshakes refused (e.g. no client certificate signed by the CA)",
    read: () => c.tlsRejected,
  });
  // ---- authorization (policy.ts) ----
  counterFrom(registry, {
    name: `${P}refused_total`,
    help: "Connections and frames refused by authentication or authorization, by reason",
    labelNames: ["reason"],
    read: () => byLabel("reason", stats().refused),
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
