// TlsReloader on plain files (no Secret volume): files rewritten in place one after the other, the
// same bad content seen many times, an expired replacement, a first load that fails. What it
// guards against: a rotation done with `cp` (certificate first, key a moment later) or a renewal
// job that wrote an expired certificate must not replace working material, and a refusal is
// counted once, not once per poll.
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { TlsMaterialError } from "../../runtime/tls/material.js";
import { TlsReloader } from "../../runtime/tls/watch.js";
import { TunnelClient } from "../../runtime/tunnel/client.js";
import type { TunnelStatusEvent } from "../../runtime/tunnel/status.js";
import { type CertPair, issueCert, makeCa } from "../helpers/certs.js";
import { waitFor } from "../helpers/wait.js";
import { startRouter, uuid } from "../router/util.js";

const log = pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
let dir = "";
let ca: CertPair;
let one: CertPair;
let two: CertPair;
let expired: CertPair;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "tls-reload-"));
  ca = await makeCa(dir, "ca");
  [one, two, expired] = await Promise.all([
    issueCert(dir, "one", ca),
    issueCert(dir, "two", ca),
    issueCert(dir, "expired", ca, 0),
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Live files cert.pem / key.pem / ca.pem in a fresh directory, starting as `pair`. */
async function live(pair: CertPair): Promise<{ cert: string; key: string; ca: string }> {
  const d = await mkdtemp(path.join(dir, "live-"));
  const files = { cert: path.join(d, "cert.pem"), key: path.join(d, "key.pem"), ca: path.join(d, "ca.pem") };
  await copyFile(pair.cert, files.cert);
  await copyFile(pair.key, files.key);
  await copyFile(ca.cert, files.ca);
  return files;
}

test("files rewritten in place one by one: the half-done state is refused once, the finished one loaded", async () => {
  const files = await live(one);
  const r = new TlsReloader({ sources: files, intervalMs: 0, log });
  expect(r.check()).toBe("loaded");
  const first = r.current!;
  expect(first.leaf?.subject).toContain("CN=one");

  await copyFile(two.cert, files.cert); // the key is still one's
  for (let i = 0; i < 5; i++) expect(r.check()).toBe("rejected");
  expect(r.stats).toMatchObject({ reloads: 0, rejected: 1 });
  expect(r.current).toBe(first);

  await copyFile(two.key, files.key);
  expect(r.check()).toBe("loaded");
  expect(r.current?.leaf?.subject).toContain("CN=two");
  expect(r.check()).toBe("unchanged");
  expect(r.stats).toMatchObject({ reloads: 1, rejected: 1, notAfter: Date.parse(r.current!.leaf!.validTo) });
});

test("an expired replacement is refused; the certificate in use stays", async () => {
  const files = await live(one);
  const r = new TlsReloader({ sources: files, intervalMs: 0, log });
  r.material();
  await copyFile(expired.cert, files.cert);
  await copyFile(expired.key, files.key);
  await waitFor("the expired certificate to be past its notAfter", () => r.check() === "rejected", {
    timeoutMs: 5_000,
    intervalMs: 200,
  });
  expect(r.current?.leaf?.subject).toContain("CN=one");
  expect(r.stats.rejected).toBe(1);
});

test("a first load that fails names the file; the router refuses to start with it", async () => {
  const files = await live(one);
  await writeFile(files.key, "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49");
  const r = new TlsReloader({ sources: files, intervalMs: 0, log });
  expect(() => r.material()).toThrow(TlsMaterialError);
  expect(() => r.material()).toThrow(files.key);
  await expect(
    startRouter({ tls: { certFile: files.cert, keyFile: files.key, caFile: files.ca, clientAuth: true } }),
  ).rejects.toThrow(/TLS key .*key\.pem: holds an incomplete PEM block/);
});

test("tunnel client: a bad key at the first connect is reported and retried; fixed files are used at the next attempt", async () => {
  const server = await live(one);
  const { router, port } = await startRouter({
    tls: { certFile: server.cert, keyFile: server.key, caFile: server.ca, clientAuth: true },
  });
  try {
    const files = await live(two);
    await copyFile(one.key, files.key); // two's certificate with one's key
    const client = new TunnelClient({
      routers: [{ host: "127.0.0.1", port }],
      group: "g",
      localAddr: uuid(1),
      tls: files,
      reconnectInitialMs: 50,
      reconnectMaxMs: 200,
      logger: log,
    });
    const events: TunnelStatusEvent[] = [];
    client.on("status", (e) => events.push(e));
    client.start();
    await waitFor("a failed attempt", () => events.some((e) => e.type === "connect-failed"));
    const failed = events.find((e) => e.type === "connect-failed");
    expect(failed && "message" in failed ? failed.message : "").toContain(
      "does not belong to the certificate",
    );
    await copyFile(two.key, files.key);
    await client.waitForRouters(1, 10_000);
    expect(router.registry.size).toBe(1);
    await client.close();
  } finally {
    await router.stop();
  }
});
