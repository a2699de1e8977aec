// `relay kv`: reads and writes a replicated map through a relay node's HTTP/JSON API (KV_PORT):
// put, get, del, dump, watch, status. Values are JSON (a word that is not JSON is taken as a
// string). The node is --url (default KV_URL, else http://127.0.0.1:8090); its token is read from
// --token-file (default KV_TOKEN_FILE). A client fails over by pointing --url at another site. An
// https:// node is verified against --ca (default KV_CA_FILE, else the system's CAs), for the name
// in the URL or --server-name (KV_SERVER_NAME). Inside a relay pod whose API serves HTTPS
// (KV_TLS_CERT set) the defaults are that pod's own API: https://127.0.0.1:KV_PORT, the CA mounted
// beside its certificate, and the certificate's first DNS name.
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import type { Command } from "commander";
import { ConfigError } from "../../../contract/errors.js";
import { KV_API_PORT } from "../../../contract/ports.js";
import { parseKvValue } from "../kv-chat.js";

interface KvFlags {
  url?: string;
  tokenFile?: string;
  ca?: string;
  serverName?: string;
  json?: boolean;
}

/** The defaults inside a relay pod whose own API serves HTTPS (KV_TLS_CERT in its env), else null. */
function ownPodTls(): { url: string; ca: string | undefined; serverName: string | undefined } | null {
  const cert = process.env["KV_TLS_CERT"];
  if (!cert) return null;
  const ca = path.join(path.dirname(cert), "ca.crt");
  let serverName: string | undefined;
  try {
    const san = new X509Certificate(readFileSync(cert)).subjectAltName ?? "";
    serverName = /DNS:([^,\s]+)/.exec(san)?.[1];
  } catch {
    serverName = undefined; // unreadable: the handshake will say what is wrong
  }
  return {
    url: `https://127.0.0.1:${process.env["KV_PORT"] ?? KV_API_PORT}`,
    ca: existsSync(ca) ? ca : undefined,
    serverName,
  };
}

/** One answer of the API: its status and body (read whole by json(), or streamed). */
interface KvResponse {
  readonly status: number;
  readonly ok: boolean;
  json(): Promise<unknown>;
  readonly body: AsyncIterable<Buffer>;
}

class KvClient {
  readonly #base: URL;
  readonly #token: string | null;
  readonly #ca: Buffer | undefined;
  readonly #serverName: string | undefined;

  constructor(o: KvFlags) {
    const own = (o.url ?? process.env["KV_URL"]) === undefined ? ownPodTls() : null;
    const url = o.url ?? process.env["KV_URL"] ?? own?.url ?? `http://127.0.0.1:${KV_API_PORT}`;
    if (!/^https?:\/\/[^\s/]+\/?$/.test(url))
      throw new ConfigError(`--url: "${url.slice(0, 100)}" is not http(s)://host:port`);
    this.#base = new URL(url);
    const caFile = o.ca ?? process.env["KV_CA_FILE"] ?? own?.ca;
    this.#serverName = o.serverName ?? process.env["KV_SERVER_NAME"] ?? own?.serverName;
    if (caFile && this.#base.protocol !== "https:")
      throw new ConfigError(`--ca is for an https:// node; ${url.slice(0, 100)} is plain HTTP`);
    this.#ca = caFile ? readOrFail("--ca", caFile) : undefined;
    const file = o.tokenFile ?? process.env["KV_TOKEN_FILE"];
    this.#token = file
      ? readOrFail("--token-file", file)
          .toString("utf8")
          .replace(/\r?\n$/, "")
      : null;
  }

  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.#fetch(method, path, body);
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) {
      const e = json["error"] as { code?: string; message?: string } | undefined;
      throw new ConfigError(`${e?.code ?? res.status}: ${e?.message ?? "request failed"}`);
    }
    return json;
  }

  #fetch(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<KvResponse> {
    const headers: Record<string, string> = {};
    if (this.#token) headers["authorization"] = `Bearer ${this.#token}`;
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (data) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(data.length);
    }
    const url = new URL(`/v1/maps${path}`, this.#base);
    const secure = url.protocol === "https:";
    const base = this.#base.origin;
    return new Promise<KvResponse>((resolve, reject) => {
      const fail = (err: Error) => reject(new ConfigError(`cannot reach ${base} (${err.message})`));
      const req = (secure ? https : http).request(
        url,
        {
          method,
          headers,
          ...(secure && this.#ca ? { ca: this.#ca } : {}),
          ...(secure && this.#serverName ? { servername: this.#serverName } : {}),
          ...(timeoutMs > 0 ? { timeout: timeoutMs } : {}),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ok: status >= 200 && status < 300,
            body: res,
            json: async () => {
              const chunks: Buffer[] = [];
              for await (const c of res) chunks.push(c as Buffer);
              return JSON.parse(Buffer.concat(chunks).toString("utf8"));
            },
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", fail);
      req.end(data);
    });
  }

  /** The NDJSON lines of a watch, until the node closes it. */
  async *lines(path: string): AsyncGenerator<string> {
    const res = await this.#fetch("GET", path, undefined, 0);
    if (!res.ok) throw new ConfigError(`watch refused: HTTP ${res.status}`);
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of res.body) {
      rest += decoder.decode(chunk, { stream: true });
      let nl = rest.indexOf("\n");
      while (nl >= 0) {
        yield rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        nl = rest.indexOf("\n");
      }
    }
  }
}

const seg = (s: string) => encodeURIComponent(s);

function readOrFail(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `${flag}: cannot read "${file.slice(0, 200)}" (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}
const print = (v: unknown) => process.stdout.write(`${typeof v === "string" ? v : JSON.stringify(v)}\n`);

export function registerKvCommand(program: Command): void {
  const kv = program
    .command("kv")
    .description("read and write a replicated map through a node's API (KV_PORT)")
    .option("--url <url>", `the node's kv API (default KV_URL, else http://127.0.0.1:${KV_API_PORT})`)
    .option("--token-file <file>", "file holding the API's bearer token (default KV_TOKEN_FILE)")
    .option("--ca <file>", "PEM CA bundle that signs an https:// node's certificate (default KV_CA_FILE)")
    .option(
      "--server-name <name>",
      "name the node's certificate must carry when --url names an address (default KV_SERVER_NAME)",
    );
  const client = () => new KvClient(kv.opts<KvFlags>());

  kv.command("put <map> <key> <value>")
    .description("write a value (JSON, or a plain word as a string)")
    .option("--remote", "wait until every backup site applied it")
    .option("--if-version <version>", 'only if the key is at this version ("absent": only if it has none)')
    .action(async (map: string, key: string, value: string, o: { remote?: boolean; ifVersion?: string }) => {
      const q = new URLSearchParams();
      if (o.remote) q.set("ack", "remote");
      if (o.ifVersion) q.set("ifVersion", o.ifVersion);
      const r = await client().call(
        "PUT",
        `/${seg(map)}/keys/${seg(key)}${q.size ? `?${q}` : ""}`,
        parseKvValue(value),
      );
      print(r["version"]);
    });
  kv.command("get <map> <key>")
    .description("print a value (JSON); exit 1 when the key does not exist")
    .option("--version", "print the version too")
    .action(async (map: string, key: string, o: { version?: boolean }) => {
      const r = await client().call("GET", `/${seg(map)}/keys/${seg(key)}`);
      print(o.version ? { value: r["value"], version: r["version"] } : r["value"]);
    });
  kv.command("del <map> <key>")
    .description("delete a key")
    .option("--remote", "wait until every backup site applied it")
    .action(async (map: string, key: string, o: { remote?: boolean }) => {
      const r = await client().call(
        "DELETE",
        `/${seg(map)}/keys/${seg(key)}${o.remote ? "?ack=remote" : ""}`,
      );
      print(r["version"] ?? "(nothing to delete)");
    });
  kv.command("dump <map>")
    .description("print every entry (one JSON object per line), in key order")
    .option("--prefix <prefix>", "only keys starting with this")
    .action(async (map: string, o: { prefix?: string }) => {
      const c = client();
      let after: string | null = null;
      do {
        const q = new URLSearchParams({ limit: "10000" });
        if (o.prefix) q.set("prefix", o.prefix);
        if (after !== null) q.set("after", after);
        const r = await c.call("GET", `/${seg(map)}/entries?${q}`);
        for (const e of r["entries"] as unknown[]) print(e);
        after = r["next"] as string | null;
      } while (after !== null);
    });
  kv.command("watch <map>")
    .description("print changes as they happen (one JSON object per line) until interrupted")
    .option("--prefix <prefix>", "only keys starting with this")
    .option("--since <version>", "first the changes after this version (resume)")
    .action(async (map: string, o: { prefix?: string; since?: string }) => {
      const q = new URLSearchParams();
      if (o.prefix) q.set("prefix", o.prefix);
      if (o.since) q.set("since", o.since);
      for await (const line of client().lines(`/${seg(map)}/watch${q.size ? `?${q}` : ""}`)) print(line);
    });
  kv.command("status [map]")
    .description("replication state: entries, backup sites, lag, pending keys (the RPO), syncs")
    .option("--json", "print JSON")
    .action(async (map: string | undefined, o: { json?: boolean }) => {
      const c = client();
      const maps = map
        ? [await c.call("GET", `/${seg(map)}/status`)]
        : ((await c.call("GET", "")) as { maps: Record<string, unknown>[] }).maps;
      if (o.json) {
        print(maps);
        return;
      }
      for (const m of maps as unknown as StatusView[]) print(formatStatus(m));
    });
}

interface StatusView {
  map: string;
  site: string;
  member: string;
  ready: boolean;
  entries: number;
  tombstones: number;
  conflicts: number;
  backups: {
    site: string;
    online: boolean;
    pendingKeys: number;
    pendingBytes: number;
    lagMs: number | null;
    awayMs?: number | null;
  }[];
  syncs: {
    running: number;
    completed: number;
    failed: number;
    entriesReceived: number;
    entriesSent: number;
    answered?: number;
    entriesServed?: number;
  };
}

function formatStatus(m: StatusView): string {
  const lines = [
    `${m.map} on ${m.member}:${m.site}: ${m.entries} entries, ${m.tombstones} tombstones, ${m.ready ? "ready" : "NOT READY (state transfer)"}, ${m.conflicts} conflicts`,
  ];
  for (const b of m.backups)
    lines.push(
      `  backup ${b.site}: ${b.online ? "online" : "OFFLINE"}, ${b.pendingKeys} keys / ${b.pendingBytes} bytes pending, lag ${b.lagMs === null ? "none" : `${b.lagMs} ms`}${b.awayMs ? `, away ${Math.round(b.awayMs / 1000)} s` : ""}`,
    );
  if (m.backups.length === 0) lines.push("  no backup site (none visible)");
  lines.push(
    `  syncs: ${m.syncs.completed} done, ${m.syncs.failed} failed, ${m.syncs.running} running; ${m.syncs.entriesReceived} entries received, ${m.syncs.entriesSent} sent; answered ${m.syncs.answered ?? 0} (${m.syncs.entriesServed ?? 0} entries served)`,
  );
  return lines.join("\n");
}
