// The replicated maps a relay node hosts (KV_MAPS): the KvService on the node's channel, one map per
// name, their HTTP/JSON API on KV_PORT and their metrics. RelayNode owns one when KV_MAPS is set.
import type { Registry } from "prom-client";
import type { KvConfig } from "../../contract/relay-env.js";
import type { Logger } from "../observability/log.js";
import { counterFrom, gaugeFrom } from "../observability/metrics.js";
import type { RelayChannel } from "../relay/channel.js";
import { KvHttpApi } from "./http-api.js";
import type { MapStatus } from "./replicated-map.js";
import { KvService } from "./service.js";

export class NodeMaps {
  readonly service: KvService;
  readonly #api: KvHttpApi;
  readonly #config: KvConfig;
  readonly #log: Logger;

  constructor(channel: RelayChannel, config: KvConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.service = new KvService(channel, { logger: log });
    for (const name of config.maps)
      this.service.open(name, config.backupSites ? { backupSites: config.backupSites } : {});
    this.#api = new KvHttpApi({
      service: this.service,
      logger: log,
      tokenFile: config.tokenFile ?? null,
      ...(config.tls ? { tls: { certFile: config.tls.cert, keyFile: config.tls.key } } : {}),
    });
  }

  get port(): number | null {
    return this.#api.port;
  }

  /** True once every map holds its site's data (state transfer done). */
  get ready(): boolean {
    return this.service.names().every((n) => this.service.get(n)!.isReady);
  }

  async listen(host: string, port = this.#config.port): Promise<number> {
    const p = await this.#api.listen(port, host);
    this.#log.info(
      {
        port: p,
        host,
        scheme: this.#api.scheme,
        maps: this.#config.maps,
        token: this.#config.tokenFile !== undefined,
      },
      "kv API listening",
    );
    return p;
  }

  status(): MapStatus[] {
    return this.service.names().map((n) => this.service.get(n)!.status());
  }

  async close(): Promise<void> {
    await this.#api.close();
    this.service.close();
  }

  /** relay_kv_* on the node's /metrics (per map, and per map and backup site). */
  registerMetrics(r: Registry): void {
    const perMap = (read: (s: MapStatus) => number) => () =>
      this.status().map((s) => [{ map: s.map }, read(s)] as const);
    const perBackup = (read: (b: MapStatus["backups"][number]) => number) => () =>
      this.status().flatMap((s) => s.backups.map((b) => [{ map: s.map, site: b.site }, read(b)] as const));
    gaugeFrom(r, {
      name: "relay_kv_entries",
      help: "Live entries of a replicated map on this member",
      labelNames: ["map"],
      read: perMap((s) => s.entries),
    });
    gaugeFrom(r, {
      name: "relay_kv_tombstones",
      help: "Deleted keys kept until every backup site has them",
      labelNames: ["map"],
      read: perMap((s) => s.tombstones),
    });
    gaugeFrom(r, {
      name: "relay_kv_ready",
      help: "1 once this member holds its site's map (state transfer done)",
      labelNames: ["map"],
      read: perMap((s) => (s.ready ? 1 : 0)),
    });
    counterFrom(r, {
      name: "relay_kv_conflicts_total",
      help: "Writes of this member that another site overwrote or lost to without having seen them (concurrent writes)",
      labelNames: ["map"],
      read: perMap((s) => s.conflicts),
    });
    counterFrom(r, {
      name: "relay_kv_refused_entries_total",
      help: "Replicated entries refused (limits, clock drift)",
      labelNames: ["map"],
      read: perMap((s) => s.refusedEntries),
    });
    counterFrom(r, {
      name: "relay_kv_sync_entries_received_total",
      help: "Entries received by anti-entropy and state transfer",
      labelNames: ["map"],
      read: perMap((s) => s.syncs.entriesReceived),
    });
    counterFrom(r, {
      name: "relay_kv_sync_entries_sent_total",
      help: "Entries pushed by anti-entropy",
      labelNames: ["map"],
      read: perMap((s) => s.syncs.entriesSent),
    });
    counterFrom(r, {
      name: "relay_kv_sync_entries_served_total",
      help: "Entries sent in answers to anti-entropy sessions other replicas started",
      labelNames: ["map"],
      read: perMap((s) => s.syncs.entriesServed),
    });
    counterFrom(r, {
      name: "relay_kv_sync_retries_total",
      help: "Steps of this member's anti-entropy sessions asked for again after a timeout (a lost or corrupt answer)",
      labelNames: ["map"],
      read: perMap((s) => s.syncs.retries),
    });
    counterFrom(r, {
      name: "relay_kv_syncs_total",
      help: "Anti-entropy sessions completed by this member",
      labelNames: ["map"],
      read: perMap((s) => s.syncs.completed),
    });
    counterFrom(r, {
      name: "relay_kv_syncs_failed_total",
      help: "Anti-entropy sessions that failed (retried later)",
      labelNames: ["map"],
      read: perMap((s) => s.syncs.failed),
    });
    gaugeFrom(r, {
      name: "relay_kv_pending_keys",
      help: "Keys this member changed that the backup site has not acknowledged (the RPO if this site died now)",
      labelNames: ["map", "site"],
      read: perBackup((b) => b.pendingKeys),
    });
    gaugeFrom(r, {
      name: "relay_kv_pending_bytes",
      help: "Bytes of those changes",
      labelNames: ["map", "site"],
      read: perBackup((b) => b.pendingBytes),
    });
    gaugeFrom(r, {
      name: "relay_kv_replication_lag_seconds",
      help: "Age of the oldest change the backup site has not acknowledged (0 when none)",
      labelNames: ["map", "site"],
      read: perBackup((b) => (b.lagMs ?? 0) / 1000),
    });
    gaugeFrom(r, {
      name: "relay_kv_backup_online",
      help: "1 while the backup site is online for this member (0: taken offline, anti-entropy when it answers)",
      labelNames: ["map", "site"],
      read: perBackup((b) => (b.online ? 1 : 0)),
    });
    gaugeFrom(r, {
      name: "relay_kv_backup_away_seconds",
      help: "How long the backup site has been away (not visible or offline) as this member saw it; 0 while up. Past relay_kv_tombstone_max_hold_seconds it must be re-seeded before it comes back",
      labelNames: ["map", "site"],
      read: perBackup((b) => (b.awayMs ?? 0) / 1000),
    });
    gaugeFrom(r, {
      name: "relay_kv_tombstone_max_hold_seconds",
      help: "How long a tombstone waits at most for a backup site that is away (tombstoneMaxHoldMs)",
      labelNames: ["map"],
      read: perMap((s) => s.tombstoneMaxHoldMs / 1000),
    });
    counterFrom(r, {
      name: "relay_kv_long_absences_total",
      help: "Backup sites that came back after an absence longer than the tombstone hold (keys deleted meanwhile may come back from them)",
      labelNames: ["map"],
      read: perMap((s) => s.longAbsences),
    });
  }
}
