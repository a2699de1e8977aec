// Metrics of a TlsReloader, under a component's prefix (`relay_router_`, `relay_`): reloads,
// refused reloads, and the notAfter of the certificate in use, for an alert well before expiry
// (e.g. `relay_router_tls_cert_not_after_seconds - time() < 7 * 86400`).
import type { Registry } from "prom-client";
import { counterFrom, gaugeFrom } from "../observability/metrics.js";
import type { TlsReloadStats } from "./watch.js";

/** `read` returns null while there is no TLS (the metrics then read 0 and the gauge is absent). */
export function registerTlsMetrics(
  registry: Registry,
  prefix: string,
  read: () => TlsReloadStats | null,
): void {
  counterFrom(registry, {
    name: `${prefix}tls_reloads_total`,
    help: "TLS certificate/key/CA files reloaded after a change (no restart)",
    read: () => read()?.reloads ?? 0,
  });
  counterFrom(registry, {
    name: `${prefix}tls_reload_rejected_total`,
    help: "Changed TLS files refused (unreadable, half-written, key not matching, expired); the previous material stays in use",
    read: () => read()?.rejected ?? 0,
  });
  gaugeFrom(registry, {
    name: `${prefix}tls_cert_not_after_seconds`,
    help: "notAfter of the TLS certificate in use, seconds since the epoch",
    read: () => {
      const notAfter = read()?.notAfter ?? null;
      return notAfter === null ? [] : [[{}, Math.floor(notAfter / 1000)] as const];
    },
  });
}
