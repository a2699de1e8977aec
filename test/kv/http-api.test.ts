// The maps' HTTP/JSON API (runtime/kv/http-api.ts) on a real member, and `relay kv` against it:
// the bearer token, reads and writes, compare-and-set, pagination, watch, and hostile requests.
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { pino } from "pino";
import { KvHttpApi } from "../../runtime/kv/http-api.js";
import { requireBuild } from "../helpers/relay-cli.js";
import { runCli } from "../relay/cli.js";
import { type Member, Sites } from "./sites.js";

const TOKEN = "s3cret-token-for-tests";
let sites: Sites;
let member: Member;
let api: KvHttpApi;
let base: string;
let tokenFile: string;

beforeAll(async () => {
  sites = await Sites.start();
  [member] = (await sites.startSites({ nyc: 1 })) as [Member];
  member.kv.open("orders");
  await member.kv.get("orders")!.ready;
  const dir = mkdtempSync(path.join(os.tmpdir(), "kv-api-"));
  tokenFile = path.join(dir, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  api = new KvHttpApi({
    service: member.kv,
    logger: pino({ level: "silent" }),
    tokenFile,
    maxBodyBytes: 4096,
  });
  base = `http://127.0.0.1:${await api.listen(0, "127.0.0.1")}/v1/maps`;
}, 60_000);

afterAll(async () => {
  await api.close();
  await sites.close();
});

async function call(method: string, p: string, body?: unknown, token: string | null = TOKEN) {
  const headers: Record<string, string> = {};
  if (token !== null) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(`${base}${p}`, {
    method,
    headers,
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text.split("\n")[0]!) as ApiBody };
}

interface ApiBody {
  readonly error?: { readonly code: string; readonly message: string; readonly current?: string | null };
  readonly version?: string | null;
  readonly value?: unknown;
  readonly entries?: readonly { readonly key: string }[];
  readonly next?: string | null;
}

describe("the kv API", () => {
  test("no token, a wrong token or a malformed header: 401, nothing read or written", async () => {
    for (const token of [null, "wrong", `${TOKEN}x`, ""]) {
      const r = await call("PUT", "/orders/keys/a", { x: 1 }, token);
      expect(r.status).toBe(401);
      expect(r.body.error?.code).toBe("UNAUTHORIZED");
    }
    const bad = await fetch(`${base}/orders/keys/a`, { headers: { authorization: `Basic ${TOKEN}` } });
    expect(bad.status).toBe(401);
    expect(member.kv.get("orders")!.has("a")).toBe(false);
  });

  test("put, get, delete; a missing key is 404", async () => {
    const put = await call("PUT", "/orders/keys/order%2F1", { total: 42 });
    expect(put.status).toBe(200);
    expect(put.body.version!).toMatch(/@nyc\/nyc-1$/);
    const got = await call("GET", "/orders/keys/order%2F1");
    expect(got.body).toEqual({ key: "order/1", value: { total: 42 }, version: put.body.version! });
    expect((await call("DELETE", "/orders/keys/order%2F1")).status).toBe(200);
    expect((await call("GET", "/orders/keys/order%2F1")).status).toBe(404);
    expect((await call("DELETE", "/orders/keys/order%2F1")).body).toEqual({ version: null });
  });

  test("compare-and-set: ifVersion must match (409 names the current version); ifVersion=absent", async () => {
    const first = await call("PUT", "/orders/keys/cas?ifVersion=absent", 1);
    expect(first.status).toBe(200);
    const again = await call("PUT", "/orders/keys/cas?ifVersion=absent", 2);
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual(
      expect.objectContaining({ code: "VERSION_MISMATCH", current: first.body.version! }),
    );
    const ok = await call("PUT", `/orders/keys/cas?ifVersion=${encodeURIComponent(first.body.version!)}`, 3);
    expect(ok.status).toBe(200);
    const stale = await call(
      "PUT",
      `/orders/keys/cas?ifVersion=${encodeURIComponent(first.body.version!)}`,
      4,
    );
    expect(stale.status).toBe(409);
    expect((await call("GET", "/orders/keys/cas")).body.value).toBe(3);
  });

  test("hostile requests get a clear 4xx and change nothing", async () => {
    expect((await call("PUT", "/orders/keys/big", "x".repeat(5000))).status).toBe(413);
    expect((await call("PUT", "/orders/keys/j", "{not json")).body.error?.code).toBe("BAD_JSON");
    expect((await call("PUT", `/orders/keys/${"k".repeat(300)}`, 1)).body.error?.code).toBe("KEY_TOO_LARGE");
    expect((await call("GET", "/nope/keys/a")).status).toBe(404);
    expect((await call("GET", "/nope/keys/a")).body.error?.code).toBe("UNKNOWN_MAP");
    expect((await call("GET", "/orders/keys/%E0%A4%A")).body.error?.code).toBe("BAD_PATH");
    expect((await call("PUT", "/orders/keys/a?ack=maybe", 1)).body.error?.code).toBe("BAD_ACK");
    expect((await call("PUT", "/orders/keys/a?ifVersion=garbage", 1)).body.error?.code).toBe("BAD_VERSION");
    expect((await call("GET", "/orders/entries?limit=0")).status).toBe(400);
    expect((await call("POST", "/orders/keys/a", 1)).status).toBe(405);
    expect((await call("GET", "/elsewhere")).status).toBe(404);
    const m = member.kv.get("orders")!;
    expect(["big", "j", "a"].some((k) => m.has(k))).toBe(false);
  });

  test("entries come in key order, page by page", async () => {
    for (let i = 0; i < 25; i++) await call("PUT", `/orders/keys/p-${String(i).padStart(2, "0")}`, i);
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const q: string = `/orders/entries?prefix=p-&limit=10${after ? `&after=${after}` : ""}`;
      const r = await call("GET", q);
      seen.push(...r.body.entries!.map((e) => e.key));
      after = r.body.next ?? null;
      pages++;
    } while (after !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `p-${String(i).padStart(2, "0")}`));
  });

  test("watch streams changes as NDJSON", async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${base}/orders/watch?prefix=w/`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: ctrl.signal,
    });
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const reader = res.body!.getReader();
    // (a string body is sent as it is: these are JSON strings)
    expect((await call("PUT", "/orders/keys/w%2F1", '"a"')).status).toBe(200);
    expect((await call("PUT", "/orders/keys/other", '"b"')).status).toBe(200);
    await call("DELETE", "/orders/keys/w%2F1");
    let text = "";
    const deadline = Date.now() + 10_000;
    while (text.split("\n").length < 3 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    ctrl.abort();
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { key: string; value: unknown; deleted: boolean });
    expect(lines.map((l) => [l.key, l.value, l.deleted])).toEqual([
      ["w/1", "a", false],
      ["w/1", null, true],
    ]);
  });

  test("relay kv: put, get, dump and status through the API with the token file", async () => {
    requireBuild();
    const url = base.replace(/\/v1\/maps$/, "");
    const flags = ["kv", "--url", url, "--token-file", tokenFile];
    const put = await runCli([...flags, "put", "orders", "cli-key", '{"via":"cli"}']);
    expect(put.code).toBe(0);
    expect(put.stdout.trim()).toMatch(/@nyc\/nyc-1$/);
    const get = await runCli([...flags, "get", "orders", "cli-key"]);
    expect(JSON.parse(get.stdout)).toEqual({ via: "cli" });
    const word = await runCli([...flags, "put", "orders", "cli-word", "hello"]);
    expect(word.code).toBe(0);
    const dump = await runCli([...flags, "dump", "orders", "--prefix", "cli-"]);
    expect(
      dump.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { key: string }).key),
    ).toEqual(["cli-key", "cli-word"]);
    const status = await runCli([...flags, "status", "orders"]);
    expect(status.stdout).toMatch(/^orders on nyc-1:nyc: \d+ entries/);
    const missing = await runCli([...flags, "get", "orders", "nope"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
    const noToken = await runCli(["kv", "--url", url, "get", "orders", "cli-key"], {
      KV_TOKEN_FILE: undefined,
    });
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr).toMatch(/UNAUTHORIZED/);
  }, 60_000);
});
