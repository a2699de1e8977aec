// TLS material loading, checking and reloading, shared by the router and the tunnel client.
export {
  checkTlsMaterial,
  describeMaterial,
  isPemText,
  loadTlsMaterial,
  type PemSource,
  readTlsMaterial,
  type TlsMaterial,
  TlsMaterialError,
  type TlsSources,
} from "./material.js";
export { registerTlsMetrics } from "./metrics.js";
export {
  DEFAULT_TLS_RELOAD_INTERVAL_MS,
  serveReloads,
  type TlsCheckResult,
  TlsReloader,
  type TlsReloaderOptions,
  type TlsReloadStats,
} from "./watch.js";
