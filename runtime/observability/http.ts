// The cluster-internal observability endpoint: GET /healthz (JSON, 200 when healthy, 503 when not)
// and GET /metrics (Prometheus text format from a prom-client Registry). Nothing else is served.
import http from "node:http";
import type net from "node:net";
import type { Registry } from "prom-client";

export interface Health {
  readonly ok: boolean;
  readonly [key: string]: unknown;
}

export interface ObservabilityServerOptions {
  /** 0 = ephemeral. */
  readonly port: number;
  readonly host: string;
  readonly health: () => Health;
  readonly metrics: Registry;
}

export interface ObservabilityServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

export async function startObservabilityServer(o: ObservabilityServerOptions): Promise<ObservabilityServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain", "method not allowed\n");
    } else if (path === "/healthz") {
      let health: Health;
      try {
        health = o.health();
      } catch (err) {
        health = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
      send(
        res,
        health.ok ? 200 : 503,
        "application/json",
        JSON.stringify({ status: health.ok ? "ok" : "unhealthy", ...health }),
      );
    } else if (path === "/metrics") {
      o.metrics.metrics().then(
        (text) => send(res, 200, o.metrics.contentType, text),
        (err: unknown) => send(res, 500, "text/plain", `metrics failed: ${String(err)}\n`),
      );
    } else {
      send(res, 404, "text/plain", "not found\n");
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
