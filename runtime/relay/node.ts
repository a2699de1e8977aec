// RelayNode: what `relay node` runs in every pod. A RelayChannel that answers chat lines like the
// walkthrough's RelayDemo, plus the cluster-internal HTTP endpoint (the shared
// ObservabilityServer): /healthz, /metrics, and the node's /readyz and /status.
import { Histogram, type Registry } from "prom-client";
import type { RelayNodeConfig } from "../../contract/relay-env.js";
import { NodeMaps } from "../kv/node-maps.js";
import type { MapStatus } from "../kv/replicated-map.js";
import { ObservabilityServer } from "../observability/http.js";
import type { Logger } from "../observability/log.js";
import { counterFrom, createMetricsRegistry, gaugeFrom } from "../observability/metrics.js";
import { registerTlsMetrics } from "../tls/metrics.js";
import { DEFAULT_TLS_RELOAD_INTERVAL_MS, TlsReloader } from "../tls/watch.js";
import { describeView, RelayChannel } from "./channel.js";
import { type ChannelOverrides, channelOptionsFor } from "./config.js";
import { registerDeliveryMetrics } from "./delivery/metrics.js";
import { RelayError } from "./errors.js";
import { answerBroadcasts } from "./responder.js";
import { observeInto, ROUTE_DOWN_BUCKETS_S, RouteGaps } from "./route-gaps.js";
import type { NumericRelayStat, Topology } from "./types.js";
import { RELAY_VERSION } from "./version.js";

/** Everything /status shows. */
export interface NodeStatus {
  readonly name: string;
  readonly site: string;
  readonly cluster: string;
  readonly version: string;
  readonly incarnation: string;
  readonly ready: boolean;
  readonly siteMaster: boolean;
  readonly addresses: { readonly mesh: string; readonly http: number | null; readonly uuid: string };
  readonly view: {
    readonly id: string;
    readonly members: readonly { name: string; host: string; port: number }[];
  } | null;
  /** Site masters of our site. */
  readonly siteMasters: readonly string[];
  readonly sites: Topology["sites"];
  readonly routes: Topology["routes"];
  readonly routers: Topology["routers"];
  readonly stats: ReturnType<RelayChannel["stats"]>;
  /** The replicated maps this node hosts (KV_MAPS), with the port of their API. */
  readonly kv?: { readonly port: number | null; readonly maps: readonly MapStatus[] };
}

export interface RelayNodeOptions extends ChannelOverrides {
  /** HTTP host. @default the bind address when it is loopback, else 0.0.0.0 (kubelet probes). */
  readonly httpHost?: string;
  /** HTTP port (0 = ephemeral). @default HTTP_PORT */
  readonly httpPort?: number;
  /** Port of the maps' API (0 = ephemeral). @default KV_PORT */
  readonly kvPort?: number;
  /** Period of the check of the TLS files for rotated content, ms; 0 = only at each connect. @default DEFAULT_TLS_RELOAD_INTERVAL_MS (10 s) */
  readonly tlsReloadIntervalMs?: number;
  readonly logger: Logger;
}

export class RelayNode {
  readonly channel: RelayChannel;
  readonly #config: RelayNodeConfig;
  readonly #o: RelayNodeOptions;
  readonly #log: Logger;
  readonly #metrics: Registry;
  readonly #http: ObservabilityServer;
  #starting: Promise<unknown> | null = null;
  #stopping: Promise<void> | null = null;
  /** The TLS files towards the routers, polled for rotation (null without TLS). */
  readonly #tls: TlsReloader | null;
  /** The replicated maps (KV_MAPS), null without. */
  readonly maps: NodeMaps | null;

  constructor(config: RelayNodeConfig, options: RelayNodeOptions) {
    this.#config = config;
    this.#o = options;
    this.#log = options.logger;
    this.#tls = config.tls
      ? new TlsReloader({
          sources: { cert: config.tls.cert, key: config.tls.key, ca: config.tls.ca },
          intervalMs: options.tlsReloadIntervalMs ?? DEFAULT_TLS_RELOAD_INTERVAL_MS,
          log: this.#log,
        })
      : null;
    this.channel = new RelayChannel(
      channelOptionsFor(config, { ...options, ...(this.#tls ? { tlsReloader: this.#tls } : {}) }),
    );
    answerBroadcasts(this.channel);
    this.channel.on("message", (m) =>
      this.#log.debug(
        { from: `${m.from.name}:${m.from.site}`, seq: m.seq, bytes: m.payload.length },
        "message",
      ),
    );
    this.channel.on("route", (r) => this.#log.info({ ...r }, r.up ? "route up" : "route down"));
    this.channel.on("site-unreachable", (b) =>
      this.#log.warn({ ...b }, "site unreachable: messages to it wait in the send buffer"),
    );
    this.channel.on("site-reachable", (b) => this.#log.info({ ...b }, "site reachable again: resending"));
    this.maps = config.kv ? new NodeMaps(this.channel, config.kv, this.#log.child({ part: "kv" })) : null;
    this.#metrics = this.#createMetrics();
    this.#http = this.#createHttp();
  }

  get httpPort(): number | null {
    return this.#http.port;
  }

  /** True once stop() was called. */
  get stopping(): boolean {
    return this.#stopping !== null;
  }

  /**
   * Starts the HTTP endpoint first (liveness during the join), then joins the site. Rejects with
   * a RelayError CLOSED when stop() is called before it is done; a start-up failure (a port in
   * use...) closes what was opened and rejects with an error naming the setting.
   */
  start(): Promise<{ meshPort: number; httpPort: number }> {
    if (this.#starting) return Promise.reject(new Error("start() can be called once"));
    const starting = this.#start();
    this.#starting = starting;
    return starting;
  }

  async #start(): Promise<{ meshPort: number; httpPort: number }> {
    this.#throwIfStopping();
    const loopback = this.#config.bindAddr.startsWith("127.") || this.#config.bindAddr === "::1";
    const host = this.#o.httpHost ?? (loopback ? this.#config.bindAddr : "0.0.0.0");
    const port = this.#o.httpPort ?? this.#config.httpPort;
    let httpPort: number;
    try {
      httpPort = await this.#http.listen(port, host);
    } catch (err) {
      throw listenError("HTTP_PORT", port, host, err);
    }
    this.#throwIfStopping();
    if (this.maps) {
      const kvPort = this.#o.kvPort ?? this.#config.kv!.port;
      try {
        await this.maps.listen(host, kvPort);
      } catch (err) {
        await this.#http.close();
        throw listenError("KV_PORT", kvPort, host, err);
      }
      this.#throwIfStopping();
    }
    // First load now, so bad files are logged at start-up (not only at the first site-master turn).
    this.#tls?.check();
    this.#tls?.start();
    try {
      await this.channel.connect();
    } catch (err) {
      this.#throwIfStopping();
      // Not stop(): it waits for this start() to end. Close what was opened, then report.
      this.#tls?.stop();
      await this.maps?.close();
      await this.channel.close().catch(() => undefined);
      await this.#http.close();
      throw listenError("BIND_PORT", this.#config.bindPort, this.#config.bindAddr, err);
    }
    this.#throwIfStopping();
    const meshPort = this.channel.localMember.port;
    this.#log.info(
      { name: this.channel.name, site: this.channel.site, meshPort, httpPort },
      "relay node started",
    );
    return { meshPort, httpPort };
  }

  #throwIfStopping(): void {
    if (this.#stopping) throw new RelayError("CLOSED", "the node was stopped while starting");
  }

  status(): NodeStatus {
    const ch = this.channel;
    const view = ch.view;
    const t = ch.topology();
    const me = view ? ch.localMember : null;
    return {
      name: ch.name,
      site: ch.site,
      cluster: ch.clusterName,
      version: RELAY_VERSION,
      incarnation: ch.incarnation,
      ready: ch.ready,
      siteMaster: ch.isSiteMaster,
      addresses: {
        mesh: me ? `${me.host}:${me.port}` : `${this.#config.bindAddr}:${this.#config.bindPort}`,
        http: this.#http.port,
        uuid: me?.uuid ?? "",
      },
      view: view
        ? {
            id: describeView(view).split(" ")[0]!,
            members: view.members.map((m) => ({ name: m.name, host: m.host, port: m.port })),
          }
        : null,
      siteMasters: t.sites[0]?.siteMasters ?? [],
      sites: t.sites,
      routes: t.routes,
      routers: t.routers,
      stats: ch.stats(),
      ...(this.maps ? { kv: { port: this.maps.port, maps: this.maps.status() } } : {}),
    };
  }

  /**
   * Leaves the site and the bridge, closes the HTTP endpoint. Idempotent; may be called at any
   * point of start(), which then rejects (its HTTP listen settles first, so nothing is left open).
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info("stopping: leaving the site and the bridge");
      this.#tls?.stop();
      try {
        await this.maps?.close();
        await this.channel.close();
      } finally {
        // Closing the channel ends a join in progress; wait for start() to give up so that an
        // HTTP listen still under way has settled before the server is closed.
        await this.#starting?.catch(() => undefined);
        await this.#http.close();
      }
    })();
    return this.#stopping;
  }

  /** /healthz (503 while stopping), /metrics, /readyz and /status. */
  #createHttp(): ObservabilityServer {
    return new ObservabilityServer({
      metrics: this.#metrics,
      health: () => ({
        ok: !this.#stopping,
        ...(this.#stopping ? { status: "stopping" } : {}),
        name: this.channel.name,
        site: this.channel.site,
      }),
    })
      .route("/readyz", () => {
        // A node hosting maps is ready once it holds its site's data (state transfer done).
        const mapsReady = this.maps?.ready ?? true;
        const ready = this.channel.ready && mapsReady && !this.#stopping;
        return {
          status: ready ? 200 : 503,
          body: {
            ready,
            joined: this.channel.view !== null,
            siteMaster: this.channel.isSiteMaster,
            ...(this.maps ? { mapsReady } : {}),
          },
        };
      })
      .route("/status", () => ({ status: 200, body: this.status() }));
  }

  #createMetrics(): Registry {
    const r = createMetricsRegistry();
    const ch = this.channel;
    registerDeliveryMetrics(r, ch);
    this.maps?.registerMetrics(r);
    this.#registerBuildAndFailoverMetrics(r);
    registerTlsMetrics(r, "relay_", () => this.#tls?.stats ?? null);
    const stat = (k: NumericRelayStat) => () => ch.stats()[k];
    counterFrom(r, {
      name: "relay_messages_sent_total",
      help: "Messages sent by this member",
      read: stat("sent"),
    });
    counterFrom(r, {
      name: "relay_messages_delivered_total",
      help: "Messages delivered to this member",
      read: stat("delivered"),
    });
    counterFrom(r, {
      name: "relay_bridge_forwarded_total",
      help: "Envelopes this site master handed to the bridge",
      read: stat("forwarded"),
    });
    counterFrom(r, {
      name: "relay_bridge_received_total",
      help: "Envelopes this site master received from other sites",
      read: stat("fromBridge"),
    });
    counterFrom(r, {
      name: "relay_undeliverable_total",
      help: "Envelopes that could not be delivered or forwarded",
      read: stat("undeliverable"),
    });
    counterFrom(r, {
      name: "relay_bridge_refused_total",
      help: "Envelopes from the bridge dropped: origin site not the sender's site, or a local-only kind",
      read: stat("bridgeRefused"),
    });
    for (const [name, key, help] of [
      [
        "relay_cluster_auth_failures_total",
        "clusterAuthFailures",
        "Mesh handshakes that failed the cluster secret (CLUSTER_SECRET_FILE)",
      ],
      [
        "relay_cluster_handshakes_refused_total",
        "clusterHandshakesRefused",
        "Mesh handshakes refused (other cluster or site, not admitted, too many pending)",
      ],
      [
        "relay_cluster_views_refused_total",
        "clusterViewsRefused",
        "Views ignored: invalid, or not sent by their coordinator",
      ],
      [
        "relay_cluster_internal_errors_total",
        "clusterInternalErrors",
        "Errors caught at a socket or timer boundary of the cluster (bugs; logged)",
      ],
      [
        "relay_cluster_received_bytes_total",
        "clusterBytesIn",
        "Bytes read from the other members of our site",
      ],
      ["relay_cluster_sent_bytes_total", "clusterBytesOut", "Bytes written to the other members of our site"],
    ] as const) {
      counterFrom(r, { name, help, read: stat(key) });
    }
    counterFrom(r, {
      name: "relay_decode_errors_total",
      help: "Malformed envelopes dropped",
      read: stat("decodeErrors"),
    });
    counterFrom(r, {
      name: "relay_site_master_changes_total",
      help: "Times this member started or stopped acting as a site master",
      read: stat("siteMasterChanges"),
    });
    gaugeFrom(r, {
      name: "relay_site_master",
      help: "1 while this member acts as a site master",
      read: () => (ch.isSiteMaster ? 1 : 0),
    });
    gaugeFrom(r, {
      name: "relay_ready",
      help: "1 while /readyz answers 200",
      read: () => (ch.ready ? 1 : 0),
    });
    gaugeFrom(r, {
      name: "relay_view_members",
      help: "Members in this site's view",
      read: () => ch.view?.members.length ?? 0,
    });
    gaugeFrom(r, {
      name: "relay_route_up",
      help: "1 when a site master of the site is reachable on the bridge (site masters only)",
      labelNames: ["site"],
      read: () => ch.topology().routes.map((x) => [{ site: x.site }, x.up ? 1 : 0] as const),
    });
    gaugeFrom(r, {
      name: "relay_route_routers",
      help: "Routers through which the site is reachable",
      labelNames: ["site"],
      read: () => ch.topology().routes.map((x) => [{ site: x.site }, x.routers.length] as const),
    });
    return r;
  }

  /** relay_build_info, and relay_route_down_seconds fed by the channel's route events (route-gaps.ts). */
  #registerBuildAndFailoverMetrics(r: Registry): void {
    gaugeFrom(r, {
      name: "relay_build_info",
      help: "Always 1; the labels name the version of the relay and this member",
      labelNames: ["version", "node"],
      read: () => [[{ version: RELAY_VERSION, node: this.channel.name }, 1]],
    });
    const downSeconds = new Histogram({
      name: "relay_route_down_seconds",
      help: "Site masters only: how long a route to a remote site stayed down (route down after up, until up again)",
      labelNames: ["site"],
      buckets: ROUTE_DOWN_BUCKETS_S,
      registers: [r],
    });
    const gaps = new RouteGaps(observeInto(downSeconds));
    this.channel.on("route", (x) => gaps.route(x.site, x.up, Date.now()));
    this.channel.on("site-master", () => gaps.reset());
  }
}

/** A listen failure as one line that names the setting to change; other errors pass through. */
function listenError(setting: string, port: number, host: string, err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e?.syscall !== "listen") return err;
  const why =
    e.code === "EADDRINUSE"
      ? "address already in use"
      : e.code === "EACCES"
        ? "permission denied"
        : e.message;
  return new Error(`${setting}: cannot listen on ${host}:${port}: ${why}`);
}
