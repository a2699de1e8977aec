// The cluster-internal observability endpoint of the router and of the relay node: GET /healthz
// (JSON, 200 when healthy, 503 when not), GET /metrics (Prometheus text format from a prom-client
// Registry) and the JSON routes its owner registers (the node's /readyz and /status). Nothing
// else is served: other paths 404, other methods 405.
import http from "node:http";
import type net from "node:net";
import type { Registry } from "prom-client";

/** What /healthz reports; `status` defaults to "ok" / "unhealthy" after `ok`. */
export interface Health {
  readonly ok: boolean;
  readonly [key: string]: unknown;
}

/** The answer of a registered route: an HTTP status and a body sent as JSON. */
export interface JsonReply {
  readonly status: number;
  readonly body: unknown;
}

export interface ObservabilityServerOptions {
  readonly health: () => Health;
  readonly metrics: Registry;
}

const HEADERS = { "cache-control": "no-store" } as const;

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, ...HEADERS });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, "application/json", `${JSON.stringify(body)}\n`);
}

export class ObservabilityServer {
  readonly #o: ObservabilityServerOptions;
  readonly #routes = new Map<string, () => JsonReply>();
  #server: http.Server | null = null;
  #port: number | null = null;

  constructor(options: ObservabilityServerOptions) {
    this.#o = options;
  }

  /** The listening port, or null before listen() resolved. */
  get port(): number | null {
    return this.#port;
  }

  /** Serves GET `path` with `handler` (a throw answers 500 with the message). */
  route(path: string, handler: () => JsonReply): this {
    if (path === "/healthz" || path === "/metrics") throw new Error(`${path} is served by the server itself`);
    this.#routes.set(path, handler);
    return this;
  }

  /** Listens on `host:port` (0 = ephemeral); rejects with the listen error. Resolves the port. */
  async listen(port: number, host: string): Promise<number> {
    if (this.#server) throw new Error("the observability server is already listening");
    const server = http.createServer((req, res) => this.#handle(req, res));
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#server = server;
    this.#port = (server.address() as net.AddressInfo).port;
    return this.#port;
  }

  /** Closes the server and its keep-alive connections. Idempotent. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server?.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain", "method not allowed\n");
    } else if (path === "/healthz") {
      let health: Health;
      try {
        health = this.#o.health();
      } catch (err) {
        health = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
      sendJson(res, health.ok ? 200 : 503, { status: health.ok ? "ok" : "unhealthy", ...health });
    } else if (path === "/metrics") {
      const metrics = this.#o.metrics;
      metrics.metrics().then(
        (text) => send(res, 200, metrics.contentType, text),
        (err: unknown) => send(res, 500, "text/plain", `metrics failed: ${String(err)}\n`),
      );
    } else {
      const handler = this.#routes.get(path);
      if (!handler) {
        send(res, 404, "text/plain", "not found\n");
        return;
      }
      let reply: JsonReply;
      try {
        reply = handler();
      } catch (err) {
        reply = { status: 500, body: { error: err instanceof Error ? err.message : String(err) } };
      }
      sendJson(res, reply.status, reply.body);
    }
  }
}
