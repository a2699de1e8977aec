// The maps' API over HTTPS (KV_TLS_CERT / KV_TLS_KEY): `relay kv --ca` verifies the node, a client
// that does not trust the CA is refused before any request (its token never leaves it), plain HTTP
// to the TLS port gets nothing, and a rotated certificate is served to new connections.
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { pino } from "pino";
import { KvHttpApi } from "../../runtime/kv/http-api.js";
import { makeTestPki, type TestPki } from "../helpers/certs.js";
import { requireBuild } from "../helpers/relay-cli.js";
import { waitFor } from "../helpers/wait.js";
import { runCli } from "../relay/cli.js";
import { type Member, Sites } from "./sites.js";

const TOKEN = "tls-token-for-tests";
let sites: Sites;
let member: Member;
let api: KvHttpApi;
let port: number;
let dir: string;
let pki: TestPki;
let other: TestPki;
let tokenFile: string;
let certFile: string;
let keyFile: string;

beforeAll(async () => {
  sites = await Sites.start();
  [member] = (await sites.startSites({ nyc: 1 })) as [Member];
  member.kv.open("orders");
  await member.kv.get("orders")!.ready;
  dir = mkdtempSync(path.join(os.tmpdir(), "kv-api-tls-"));
  [pki, other] = await Promise.all([
    makeTestPki(path.join(dir, "pki")),
    makeTestPki(path.join(dir, "other")),
  ]);
  tokenFile = path.join(dir, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  // The files the API reads (copies, so the test can rotate them).
  certFile = path.join(dir, "kv.crt");
  keyFile = path.join(dir, "kv.key");
  copyFileSync(pki.serverCert, certFile);
  copyFileSync(pki.serverKey, keyFile);
  api = new KvHttpApi({
    service: member.kv,
    logger: pino({ level: "silent" }),
    tokenFile,
    tls: { certFile, keyFile, reloadIntervalMs: 100, handshakeTimeoutMs: 500 },
  });
  port = await api.listen(0, "127.0.0.1");
}, 60_000);

afterAll(async () => {
  await api.close();
  await sites.close();
});

/** The SHA-256 fingerprint of the certificate the API presents to a new connection. */
function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256 ?? "";
      s.destroy();
      resolve(fp);
    });
    s.on("error", reject);
  });
}

const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

test("relay kv --ca reaches an https node; without the CA it is refused at the handshake", async () => {
  requireBuild();
  const url = `https://127.0.0.1:${port}`;
  const flags = ["kv", "--url", url, "--token-file", tokenFile, "--ca", pki.caCert];
  const put = await runCli([...flags, "put", "orders", "k", '{"over":"tls"}']);
  expect(put.stderr).toBe("");
  expect(put.code).toBe(0);
  const get = await runCli([...flags, "get", "orders", "k"]);
  expect(JSON.parse(get.stdout)).toEqual({ over: "tls" });

  const untrusted = await runCli(["kv", "--url", url, "--token-file", tokenFile, "get", "orders", "k"], {
    KV_CA_FILE: undefined,
  });
  expect(untrusted.code).not.toBe(0);
  expect(untrusted.stderr).toMatch(/cannot reach https:\/\/127\.0\.0\.1:\d+ \(.*(certificate|self.signed)/i);
  const wrongCa = await runCli([...flags.slice(0, -2), "--ca", other.caCert, "get", "orders", "k"]);
  expect(wrongCa.code).not.toBe(0);

  // --server-name: the name checked when the URL names an address.
  const named = await runCli([...flags, "--server-name", "localhost", "get", "orders", "k"]);
  expect(named.code).toBe(0);
  const misnamed = await runCli([...flags, "--server-name", "kv.example.internal", "get", "orders", "k"]);
  expect(misnamed.code).not.toBe(0);
  expect(misnamed.stderr).toMatch(/kv\.example\.internal|altnames/i);

  // Inside a relay pod (KV_TLS_CERT in its env, the CA mounted beside it): no flags needed.
  copyFileSync(pki.caCert, path.join(dir, "ca.crt"));
  const inPod = await runCli(["kv", "get", "orders", "k"], {
    KV_TLS_CERT: certFile,
    KV_PORT: String(port),
    KV_TOKEN_FILE: tokenFile,
    KV_URL: undefined,
    KV_CA_FILE: undefined,
  });
  expect(inPod.stderr).toBe("");
  expect(JSON.parse(inPod.stdout)).toEqual({ over: "tls" });

  const caOnHttp = await runCli(["kv", "--url", `http://127.0.0.1:${port}`, "--ca", pki.caCert, "status"]);
  expect(caOnHttp.code).not.toBe(0);
  expect(caOnHttp.stderr).toMatch(/--ca is for an https:\/\/ node/);
}, 60_000);

test("plain HTTP to the TLS port gets no answer from the API", async () => {
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(port, "127.0.0.1", () =>
      s.write(`GET /v1/maps HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\n\r\n`),
    );
    let got = "";
    s.on("data", (d) => {
      got += d.toString("latin1");
    });
    s.on("close", () => resolve(got));
    s.on("error", () => resolve(got));
    s.setTimeout(5000, () => s.destroy());
  });
  expect(reply).not.toMatch(/"maps"/);
});

test("a connection that never starts its TLS handshake is closed by the API after handshakeTimeoutMs", async () => {
  const closedByServer = await new Promise<boolean>((resolve) => {
    let gaveUp = false;
    const s = net.connect(port, "127.0.0.1"); // says nothing
    s.on("close", () => resolve(!gaveUp));
    s.on("error", () => {});
    // Node's default would hold it for 120 s; 500 ms here, so 30 s is a generous bound.
    setTimeout(() => {
      gaveUp = true;
      s.destroy();
    }, 30_000).unref();
  });
  expect(closedByServer).toBe(true);
}, 60_000);

test("a rotated certificate is served to new connections; a bad one is refused and the old one stays", async () => {
  expect(await servedFingerprint()).toBe(fingerprintOf(pki.serverCert));
  // Garbage first: refused (reloads every 100 ms here), the material in use stays.
  writeFileSync(certFile, "not a certificate");
  await new Promise((r) => setTimeout(r, 600));
  expect(await servedFingerprint()).toBe(fingerprintOf(pki.serverCert));
  // Then a pair from another CA: new connections get it.
  copyFileSync(other.serverKey, keyFile);
  copyFileSync(other.serverCert, certFile);
  await waitFor(
    "the new certificate served",
    async () => (await servedFingerprint()) === fingerprintOf(other.serverCert),
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  const status = await new Promise<number>((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path: "/v1/maps",
        ca: readFileSync(other.caCert),
        headers: { authorization: `Bearer ${TOKEN}` },
      },
      (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end();
  });
  expect(status).toBe(200);
});
