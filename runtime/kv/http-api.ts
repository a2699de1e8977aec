// The replicated maps' HTTP/JSON API of a relay node (KV_PORT), used by `relay kv` and by clients
// that fail over from one site to another. Values are JSON. Every request carries the bearer token
// of KV_TOKEN_FILE (compared in constant time; the file is read again when it changes, so the token
// rotates without a restart); without a token file the node only serves loopback (the contract
// refuses anything else). With KV_TLS_CERT / KV_TLS_KEY it serves HTTPS (the certificate is re-read
// when the files change, like the router's), so the token does not cross the pod network in clear.
//
//   GET    /v1/maps                                  {"maps": [MapStatus...]}
//   GET    /v1/maps/<map>/status                     MapStatus
//   GET    /v1/maps/<map>/entries?prefix=&after=&limit=   {"entries": [...], "next": key | null}
//   GET    /v1/maps/<map>/keys/<key>                 {"key", "value", "version"} or 404
//   PUT    /v1/maps/<map>/keys/<key>?ack=remote&timeoutMs=&ifVersion=<version>|absent   {"version"}
//   DELETE /v1/maps/<map>/keys/<key>?ack=...         {"version": v | null}
//   GET    /v1/maps/<map>/watch?prefix=&since=<version>   NDJSON, one change per line
//
// Errors: {"error": {"code", "message"}} with 400 (bad input), 401, 404 (unknown map or key), 409
// (VERSION_MISMATCH, with "current"), 413, 503 (BACKLOG_FULL, not ready), 504 (TIMEOUT).
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { Logger } from "../observability/log.js";
import { DEFAULT_TLS_RELOAD_INTERVAL_MS, serveReloads, TlsReloader } from "../tls/watch.js";
import { KvError, type KvErrorCode } from "./errors.js";
import { keyPage } from "./page.js";
import type { MapChange, ReplicatedMap, WriteOptions } from "./replicated-map.js";
import type { KvService } from "./service.js";
import { parseVersionKey, type Version, versionKey } from "./version.js";

export interface KvHttpApiOptions {
  readonly service: KvService;
  readonly logger: Logger;
  /** Bearer token file; null = no authentication (loopback only: the caller makes sure). */
  readonly tokenFile: string | null;
  /** Largest request body. @default 1 MiB */
  readonly maxBodyBytes?: number;
  /** Concurrent watch streams. @default 64 */
  readonly maxWatchers?: number;
  /**
   * Serve HTTPS with this PEM certificate and key (files, re-read every `reloadIntervalMs` and used
   * for new connections once they change and pass their checks). @default plain HTTP
   */
  readonly tls?: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly reloadIntervalMs?: number;
    /** A connection that has not completed its TLS handshake by then is closed. @default 10 s */
    readonly handshakeTimeoutMs?: number;
  };
}

const STATUS_OF: Partial<Record<KvErrorCode, number>> = {
  KEY_TOO_LARGE: 400,
  BAD_KEY: 400,
  VALUE_TOO_LARGE: 413,
  TOO_MANY_ENTRIES: 507,
  BAD_FRAME: 400,
  CLOCK_DRIFT: 400,
  VERSION_MISMATCH: 409,
  BACKLOG_FULL: 503,
  TIMEOUT: 504,
  UNKNOWN_MAP: 404,
  CLOSED: 503,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A token in a file, compared in constant time; read again when the file changes. */
class BearerToken {
  readonly #file: string;
  #seen: { mtimeMs: number; size: number; digest: Buffer | null } | null = null;
  constructor(file: string) {
    this.#file = file;
  }
  verify(header: string | undefined): boolean {
    const m = /^Bearer ([\x21-\x7e]{1,4096})$/.exec(header ?? "");
    const digest = this.#digest();
    if (!m || !digest) return false;
    return timingSafeEqual(digest, createHash("sha256").update(m[1]!).digest());
  }
  #digest(): Buffer | null {
    try {
      const st = statSync(this.#file);
      if (this.#seen && this.#seen.mtimeMs === st.mtimeMs && this.#seen.size === st.size)
        return this.#seen.digest;
      const token = st.size <= 4098 ? readFileSync(this.#file, "utf8").replace(/\r?\n$/, "") : "";
      const digest = token.length > 0 ? createHash("sha256").update(token).digest() : null;
      this.#seen = { mtimeMs: st.mtimeMs, size: st.size, digest };
      return digest;
    } catch {
      return null;
    }
  }
}

export class KvHttpApi {
  readonly #o: KvHttpApiOptions;
  readonly #server: http.Server | https.Server;
  readonly #tls: TlsReloader | null;
  readonly #token: BearerToken | null;
  readonly #watchers = new Set<http.ServerResponse>();
  #port: number | null = null;

  constructor(options: KvHttpApiOptions) {
    this.#o = options;
    this.#token = options.tokenFile ? new BearerToken(options.tokenFile) : null;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => this.#fail(res, err));
    };
    const t = options.tls;
    if (t) {
      this.#tls = new TlsReloader({
        sources: { cert: t.certFile, key: t.keyFile },
        intervalMs: t.reloadIntervalMs ?? DEFAULT_TLS_RELOAD_INTERVAL_MS,
        log: options.logger,
      });
      const material = this.#tls.material(); // throws, naming the file, when the first load fails
      // A client that never finishes its handshake holds a connection slot (maxConnections) for
      // this long: 10 s by default, like the headers' timeout, instead of Node's 120 s.
      const server = https.createServer(
        {
          ...material.contextOptions,
          allowHalfOpen: false,
          handshakeTimeout: t.handshakeTimeoutMs ?? 10_000,
        },
        handler,
      );
      serveReloads(this.#tls, server, options.logger);
      server.on("tlsClientError", (_err, socket) => socket.destroy());
      this.#server = server;
    } else {
      this.#tls = null;
      this.#server = http.createServer(handler);
    }
    this.#server.maxConnections = 512;
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    this.#server.on("clientError", (_err, socket) => socket.destroy());
  }

  get port(): number | null {
    return this.#port;
  }

  /** "https" when serving TLS. */
  get scheme(): "http" | "https" {
    return this.#tls ? "https" : "http";
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        const a = this.#server.address();
        this.#port = typeof a === "object" && a ? a.port : port;
        this.#tls?.start();
        resolve(this.#port);
      });
    });
  }

  async close(): Promise<void> {
    this.#tls?.stop();
    for (const w of this.#watchers) w.end();
    this.#watchers.clear();
    if (this.#port === null) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    this.#port = null;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.#token && !this.#token.verify(req.headers.authorization)) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="relay-kv"');
      throw new HttpError(
        401,
        "UNAUTHORIZED",
        "a valid bearer token is required (KV_TOKEN_FILE of the node)",
      );
    }
    const url = new URL(req.url ?? "/", "http://kv");
    const parts = url.pathname.split("/").slice(1);
    if (parts[0] !== "v1" || parts[1] !== "maps")
      throw new HttpError(404, "NOT_FOUND", "paths start with /v1/maps");
    const method = req.method ?? "GET";
    if (parts.length === 2) {
      this.#only(method, "GET");
      const svc = this.#o.service;
      return this.#json(res, 200, { maps: svc.names().map((n) => svc.get(n)!.status()) });
    }
    const map = this.#map(decode(parts[2]!));
    const what = parts[3];
    if (what === "status" && parts.length === 4) {
      this.#only(method, "GET");
      return this.#json(res, 200, map.status());
    }
    if (what === "entries" && parts.length === 4) {
      this.#only(method, "GET");
      return this.#json(res, 200, this.#page(map, url.searchParams));
    }
    if (what === "watch" && parts.length === 4) {
      this.#only(method, "GET");
      return this.#watch(map, url.searchParams, res);
    }
    if (what === "keys" && parts.length === 5) {
      const key = decode(parts[4]!);
      if (method === "GET") {
        const value = map.get(key);
        const version = map.version(key);
        if (value === undefined || version === undefined)
          throw new HttpError(404, "NOT_FOUND", `no key "${key.slice(0, 100)}" in map "${map.name}"`);
        return this.#json(res, 200, { key, value, version: versionKey(version) });
      }
      const opts = writeOptions(url.searchParams);
      if (method === "PUT") {
        const body = await this.#body(req);
        let value: unknown;
        try {
          value = JSON.parse(body);
        } catch {
          throw new HttpError(400, "BAD_JSON", "the body must be a JSON value");
        }
        const ifVersion = url.searchParams.get("ifVersion");
        const version =
          ifVersion === null
            ? await map.put(key, value, opts)
            : await map.compareAndSet(
                key,
                ifVersion === "absent" ? null : parseVersion(ifVersion),
                value,
                opts,
              );
        return this.#json(res, 200, { version: versionKey(version) });
      }
      if (method === "DELETE") {
        const version = await map.delete(key, opts);
        return this.#json(res, 200, { version: version ? versionKey(version) : null });
      }
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} is not allowed on a key (GET, PUT, DELETE)`);
    }
    throw new HttpError(404, "NOT_FOUND", `no such path: ${url.pathname.slice(0, 200)}`);
  }

  #map(name: string): ReplicatedMap<unknown> {
    const map = this.#o.service.get(name);
    if (!map)
      throw new HttpError(404, "UNKNOWN_MAP", `map "${name.slice(0, 64)}" is not hosted here (KV_MAPS)`);
    return map;
  }

  #only(method: string, allowed: string): void {
    if (method !== allowed) throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method}: only ${allowed} here`);
  }

  /** Keys in string order, after `after`, at most `limit` (1..10,000, default 1,000). */
  #page(map: ReplicatedMap<unknown>, q: URLSearchParams) {
    const prefix = q.get("prefix") ?? "";
    const after = q.get("after");
    const limit = intParam(q.get("limit"), "limit", 1000, 1, 10_000);
    const { keys: page, more } = keyPage(map.keys(prefix), after, limit);
    return {
      entries: page.map((key) => ({ key, value: map.get(key), version: versionKey(map.version(key)!) })),
      next: more ? page[page.length - 1]! : null,
    };
  }

  #watch(map: ReplicatedMap<unknown>, q: URLSearchParams, res: http.ServerResponse): void {
    if (this.#watchers.size >= (this.#o.maxWatchers ?? 64))
      throw new HttpError(503, "TOO_MANY_WATCHERS", "too many watch streams on this node: retry later");
    const since = q.get("since");
    const it = map.watch(q.get("prefix") ?? "", since === null ? {} : { since: parseVersion(since) });
    res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
    res.flushHeaders();
    this.#watchers.add(res);
    const stop = () => {
      this.#watchers.delete(res);
      void it.return?.();
    };
    res.on("close", stop);
    void (async () => {
      try {
        for await (const c of it as AsyncIterable<MapChange<unknown>>) {
          const line = `${JSON.stringify({ key: c.key, value: c.value ?? null, deleted: c.value === undefined, version: versionKey(c.version), origin: c.origin })}\n`;
          if (!res.write(line)) await new Promise((r) => res.once("drain", r));
          if (res.destroyed) break;
        }
      } catch (err) {
        res.write(`${JSON.stringify({ error: errorBody(err) })}\n`);
      } finally {
        stop();
        res.end();
      }
    })();
  }

  #body(req: http.IncomingMessage): Promise<string> {
    const max = this.#o.maxBodyBytes ?? 1024 * 1024;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = false;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size <= max) {
          chunks.push(c);
          return;
        }
        // Answered at once; the rest is read and dropped (up to a bound) so the client sees the 413.
        if (!refused) reject(new HttpError(413, "BODY_TOO_LARGE", `request body over ${max} bytes`));
        refused = true;
        chunks.length = 0;
        if (size > 16 * max) req.destroy();
      });
      req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      req.on("error", reject);
    });
  }

  #json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  #fail(res: http.ServerResponse, err: unknown): void {
    let status = 500;
    if (err instanceof HttpError) status = err.status;
    else if (err instanceof KvError) status = STATUS_OF[err.code] ?? 500;
    if (status === 500) this.#o.logger.error({ err: (err as Error)?.stack }, "kv API request failed");
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (status === 413) res.setHeader("connection", "close");
    this.#json(res, status, { error: errorBody(err) });
  }
}

function errorBody(err: unknown) {
  if (err instanceof HttpError) return { code: err.code, message: err.message };
  if (err instanceof KvError)
    return {
      code: err.code,
      message: err.message,
      ...(err.current !== undefined ? { current: err.current ? versionKey(err.current) : null } : {}),
    };
  return { code: "INTERNAL", message: "internal error (see the node's log)" };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "BAD_PATH", "a path segment is not valid percent-encoding");
  }
}

function parseVersion(text: string): Version {
  try {
    return parseVersionKey(text);
  } catch {
    throw new HttpError(
      400,
      "BAD_VERSION",
      `"${text.slice(0, 100)}" is not a version (as returned by a write)`,
    );
  }
}

function writeOptions(q: URLSearchParams): WriteOptions {
  const ack = q.get("ack");
  if (ack !== null && ack !== "local" && ack !== "remote")
    throw new HttpError(400, "BAD_ACK", `ack=${ack.slice(0, 20)}: use local or remote`);
  const timeout = q.get("timeoutMs");
  return {
    ...(ack ? { ack } : {}),
    ...(timeout !== null ? { timeoutMs: intParam(timeout, "timeoutMs", 10_000, 1, 600_000) } : {}),
  };
}

function intParam(v: string | null, name: string, dflt: number, min: number, max: number): number {
  if (v === null) return dflt;
  const n = Number(v);
  if (!/^\d{1,7}$/.test(v) || n < min || n > max)
    throw new HttpError(400, "BAD_PARAMETER", `${name}=${v.slice(0, 20)}: an integer in ${min}..${max}`);
  return n;
}
