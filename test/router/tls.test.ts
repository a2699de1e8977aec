// TLS with client authentication: a client with a CA-signed certificate talks; a client with a
// self-signed ("rogue") certificate or none at all is refused, logged and counted.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { registerFrame } from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import { makeTestPki, type TestPki } from "../helpers/certs.js";
import { waitFor } from "../helpers/wait.js";
import { routerHarness, uuid } from "./util.js";

let dir = "";
let pki: TestPki;
const h = routerHarness();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "router-tls-"));
  pki = await makeTestPki(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await h.start({
    tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert, clientAuth: true },
  });
});

function good(): tls.ConnectionOptions {
  return {
    ca: readFileSync(pki.caCert),
    cert: readFileSync(pki.clientCert),
    key: readFileSync(pki.clientKey),
  };
}

test("clients with CA-signed certificates register and exchange messages", async () => {
  const a = await h.client(good());
  const b = await h.client(good());
  a.register("chat", uuid(1));
  b.register("chat", uuid(2));
  await waitFor("registrations", () => h.router.registry.size === 2);
  const sent = a.message("chat", null, uuid(1), "over tls");
  await b.waitType(GossipType.Message);
  await a.waitType(GossipType.Message);
  expect(b.received[0]!.raw.equals(sent)).toBe(true);
  expect(h.router.stats().tlsRejected).toBe(0);
});

/** Connects and tries to register; resolves with whether the router kept the registration. */
async function tryClient(
  options: tls.ConnectionOptions,
): Promise<{ registered: boolean; error: string | null }> {
  const before = h.router.stats().tlsRejected;
  const socket = tls.connect({ host: "127.0.0.1", port: h.port, ...options });
  let error: string | null = null;
  socket.on("error", (e: Error & { code?: string }) => {
    error = e.code ?? e.message;
  });
  socket.on("secureConnect", () => {
    socket.write(registerFrame("chat", uuid(66), "rogue", null));
  });
  await waitFor("the handshake to fail", () => socket.destroyed || h.router.stats().tlsRejected > before);
  await waitFor("the refused socket to close", () => socket.destroyed);
  return { registered: h.router.registry.size > 0, error };
}

test("a client with a self-signed certificate is refused and counted", async () => {
  const r = await tryClient({
    ca: readFileSync(pki.caCert),
    cert: readFileSync(pki.rogueCert),
    key: readFileSync(pki.rogueKey),
  });
  expect(r.registered).toBe(false);
  await waitFor("the refusal to be counted", () => h.router.stats().tlsRejected === 1);
  expect(h.router.stats().connectionsTotal).toBe(0);
});

test("a client without a certificate is refused and counted", async () => {
  const r = await tryClient({ ca: readFileSync(pki.caCert) });
  expect(r.registered).toBe(false);
  await waitFor("the refusal to be counted", () => h.router.stats().tlsRejected === 1);
});

test("a plain TCP client gets nowhere on the TLS port", async () => {
  const c = await h.client();
  c.register("chat", uuid(7));
  await c.waitClosed();
  expect(h.router.registry.size).toBe(0);
});

test("relay dump's client (fetchMembers) works over mutual TLS", async () => {
  const { fetchMembers } = await import("../../runtime/cli/commands/dump.js");
  const a = await h.client(good());
  a.register("chat", uuid(1), "alice");
  await waitFor("registration", () => h.router.registry.size === 1);
  const rows = await fetchMembers(
    { host: "127.0.0.1", port: h.port },
    { timeout: 5_000, tlsCa: pki.caCert, tlsCert: pki.clientCert, tlsKey: pki.clientKey },
  );
  expect(rows).toEqual([{ group: "chat", address: uuid(1).uuid, site: null, name: "alice", physical: null }]);
  // Without a client certificate the router refuses it.
  await expect(
    fetchMembers({ host: "127.0.0.1", port: h.port }, { timeout: 5_000, tlsCa: pki.caCert }),
  ).rejects.toThrow();
});

test("many frames over TLS arrive intact and in order (forwarded slices of decrypted reads)", async () => {
  const a = await h.client(good());
  const b = await h.client(good());
  a.register("g", uuid(1));
  b.register("g", uuid(2));
  await waitFor("registrations", () => h.router.registry.size === 2);
  const n = 3000;
  const sent: string[] = [];
  for (let i = 0; i < n; i++) {
    const payload = Buffer.alloc(2 + ((i * 7919) % 3000), i % 251);
    payload.writeUInt16BE(i % 65536, 0);
    sent.push(a.message("g", uuid(2), uuid(1), payload).toString("hex"));
  }
  await b.waitType(GossipType.Message, n, 20_000);
  expect(b.received.map((r) => r.hex)).toEqual(sent);
});

test("clients that close right after their handshake free their connection slot at once", async () => {
  // TLS 1.3 lets a client finish (and close) before the server has processed its certificate. With
  // a half-open TLS server such a socket never closed, so 8 clients reconnecting in a loop used up
  // --max-connections-per-address within a second and everyone after them was refused.
  await h.teardown();
  await h.start({
    tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert, clientAuth: true },
    maxConnectionsPerAddress: 8,
    // Only the close frees a slot here, not the handshake deadline.
    tlsHandshakeTimeoutMs: 120_000,
  });
  const once = () =>
    new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port: h.port, ...good() }, () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
  const outcomes: boolean[] = [];
  for (let i = 0; i < 40; i++) {
    outcomes.push(await once());
    // Each slot is released when the router sees the socket close; give it that moment.
    await waitFor("the slot released", () => h.router.limitStats().openSockets < 8, { timeoutMs: 10_000 });
  }
  expect(outcomes.filter((ok) => !ok)).toEqual([]);
});
