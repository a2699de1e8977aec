// Prometheus view of the delivery guarantee (docs/DELIVERY.md), read from RelayChannel.stats() and
// backlog() at scrape time. RelayNode registers these next to its other relay metrics.
import type { Registry } from "prom-client";
import { counterFrom, gaugeFrom, type HistogramSeries, histogramFrom } from "../../observability/metrics.js";
import type { RelayChannel } from "../channel.js";
import type { NumericRelayStat } from "../types.js";

export function registerDeliveryMetrics(r: Registry, ch: RelayChannel): void {
  const stat = (k: NumericRelayStat) => () => ch.stats()[k];
  gaugeFrom(r, {
    name: "relay_send_buffer_messages",
    help: "Cross-site messages of this member not yet stable at every destination site",
    read: stat("bufferedMessages"),
  });
  gaugeFrom(r, {
    name: "relay_send_buffer_bytes",
    help: "Bytes of the cross-site messages of this member not yet stable",
    read: stat("bufferedBytes"),
  });
  gaugeFrom(r, {
    name: "relay_send_buffer_site_messages",
    help: "Messages of this member waiting for one destination site",
    labelNames: ["site"],
    read: () => ch.backlog().map((b) => [{ site: b.site }, b.messages] as const),
  });
  gaugeFrom(r, {
    name: "relay_send_buffer_limit_messages",
    help: "Messages the send buffer holds per destination site before it refuses sends (sendBuffer.maxMessages)",
    read: () => ch.sendBufferLimits().maxMessages,
  });
  gaugeFrom(r, {
    name: "relay_send_buffer_limit_bytes",
    help: "Bytes the send buffer holds per destination site before it refuses sends (sendBuffer.maxBytes)",
    read: () => ch.sendBufferLimits().maxBytes,
  });
  gaugeFrom(r, {
    name: "relay_site_unreachable",
    help: "1 while a destination site our messages wait for is unreachable (between the site-unreachable and site-reachable events)",
    labelNames: ["site"],
    read: () => ch.siteReachability().map((x) => [{ site: x.site }, x.unreachable ? 1 : 0] as const),
  });
  histogramFrom(r, {
    name: "relay_cross_site_stable_seconds",
    help: "Time from send() to the Stable report of the destination site (delivered by all its members), as the sender sees it",
    read: function* (): Iterable<HistogramSeries> {
      const latency = ch.deliveryLatency();
      for (const site of latency.sites()) {
        const h = latency.histogramSamples(site);
        if (h) yield { labels: { site }, buckets: h.buckets, sum: h.sumS, count: h.count };
      }
    },
  });
  counterFrom(r, {
    name: "relay_send_refused_total",
    help: "Sends refused because the send buffer was full (back-pressure)",
    read: stat("sendsRefused"),
  });
  counterFrom(r, {
    name: "relay_send_blocked_seconds_total",
    help: "Time the send buffer spent full",
    read: () => ch.stats().blockedMs / 1000,
  });
  counterFrom(r, {
    name: "relay_retransmitted_total",
    help: "Cross-site messages sent again (path change or no stability report in time)",
    read: stat("retransmitted"),
  });
  counterFrom(r, {
    name: "relay_duplicates_dropped_total",
    help: "Cross-site messages received again and dropped",
    read: stat("duplicates"),
  });
  gaugeFrom(r, {
    name: "relay_held_back_messages",
    help: "Cross-site messages received out of order, waiting for a gap to be filled",
    read: stat("heldBack"),
  });
  gaugeFrom(r, {
    name: "relay_receive_windows",
    help: "Remote senders this member keeps a receive window for (bounded; silent departed senders are freed)",
    read: stat("receiveWindows"),
  });
  gaugeFrom(r, {
    name: "relay_held_back_bytes",
    help: "Bytes of out-of-order cross-site messages held back over all senders (bounded in total)",
    read: stat("heldBackBytes"),
  });
  counterFrom(r, {
    name: "relay_delivery_gap_messages_total",
    help: "Messages of remote senders this member will never get (it was out of its site's primary view); each gap is a 'gap' event",
    read: stat("missed"),
  });
  counterFrom(r, {
    name: "relay_sites_gone_total",
    help: "Destination sites declared gone after being unreachable for siteGoneMs",
    read: stat("sitesGone"),
  });
  counterFrom(r, {
    name: "relay_send_buffer_dropped_for_gone_sites_total",
    help: "Buffered messages dropped because their destination site was declared gone",
    read: stat("droppedForGoneSites"),
  });
  gaugeFrom(r, {
    name: "relay_primary_view",
    help: "1 when this member's site view is primary (may certify stability), 0 in a minority view",
    read: () => (ch.stats().primaryView ? 1 : 0),
  });
  counterFrom(r, {
    name: "relay_held_back_overflows_total",
    help: "Out-of-order messages not kept because the hold-back bound was reached (sent again later)",
    read: stat("heldBackOverflows"),
  });
}
