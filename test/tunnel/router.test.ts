// TunnelClient against the real router (`relay router` child processes on loopback): several
// members through two routers, a member killed with SIGKILL, a router killed and restarted on the
// same port, TLS with mutual authentication. Needs a build (`npm test` builds first).
import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "@jest/globals";
import type { RouterEndpoint } from "../../contract/initial-hosts.js";
import { addressKey } from "../../runtime/protocol/codec.js";
import type { TunnelClient, TunnelOptions, TunnelSuspect } from "../../runtime/tunnel/index.js";
import { makeTestPki, type TestPki } from "../helpers/certs.js";
import {
  killAllRouterProcesses,
  RELAY_CLI,
  REPO_ROOT,
  type RouterProcess,
  startRouterProcess,
} from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { inbox, nextStatus, testClient, text } from "./util.js";

const run = promisify(execFile);
const clients: TunnelClient[] = [];

function member(routers: RouterProcess[], name: string, extra: Partial<TunnelOptions> = {}): TunnelClient {
  const ports = routers.map((r) => r.port);
  return testClient(ports, clients, {
    group: "tunnel-it",
    logicalName: name,
    reconnectMaxMs: 300,
    heartbeatIntervalMs: 1000,
    ...extra,
  });
}

const key = (c: TunnelClient) => addressKey(c.options.localAddr);

/** `relay dump 127.0.0.1[port] --group g --json`: the members one router knows. */
async function dump(port: number, group: string): Promise<Array<Record<string, unknown>>> {
  const { stdout } = await run(
    process.execPath,
    [RELAY_CLI, "dump", `127.0.0.1[${port}]`, "--group", group, "--json"],
    {
      cwd: REPO_ROOT,
      timeout: 10_000,
    },
  );
  return JSON.parse(stdout) as Array<Record<string, unknown>>;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await killAllRouterProcesses();
});

describe("through two real routers", () => {
  test("unicast and multicast: every member gets each message exactly once, no own copy; getMembers lists all", async () => {
    const routers = [await startRouterProcess(), await startRouterProcess()];
    const ms = ["alice", "bob", "carol"].map((n) => member(routers, n));
    const boxes = ms.map(inbox);
    for (const m of ms) m.start();
    await Promise.all(ms.map((m) => m.waitForRouters(2)));
    const N = 100;
    ms.forEach((m, i) => {
      for (let k = 0; k < N; k++) m.send(null, Buffer.from(`${i}:${k}`));
      m.send(ms[(i + 1) % 3]!.options.localAddr, Buffer.from(`uni ${i}`));
    });
    await waitFor("every multicast and unicast", () => boxes.every((b) => b.length === 2 * N + 1), {
      timeoutMs: 10_000,
    });
    await new Promise((r) => setTimeout(r, 100)); // duplicates would arrive by now
    boxes.forEach((box, i) => {
      expect(box).toHaveLength(2 * N + 1);
      const texts = box.map(text);
      expect(texts.filter((t) => t.startsWith(`${i}:`))).toEqual([]); // no own copy
      for (const j of [0, 1, 2].filter((j) => j !== i)) {
        // per-sender FIFO, exactly once
        expect(texts.filter((t) => t.startsWith(`${j}:`))).toEqual(
          Array.from({ length: N }, (_, k) => `${j}:${k}`),
        );
      }
      expect(texts.filter((t) => t.startsWith("uni"))).toEqual([`uni ${(i + 2) % 3}`]);
      const uni = box.find((m) => text(m).startsWith("uni"))!;
      expect(addressKey(uni.dest!)).toBe(key(ms[i]!));
    });
    const members = await ms[0]!.getMembers();
    expect(members.map((p) => p.logicalName).sort()).toEqual(["alice", "bob", "carol"]);
    expect(members.find((p) => p.logicalName === "bob")!.physicalAddr).toEqual(ms[1]!.options.physicalAddr);
    for (const r of routers) expect((await dump(r.port, "tunnel-it")).length).toBe(3);
  });

  test("a member process killed with SIGKILL: the others get SUSPECT for it (once per router)", async () => {
    const routers = [await startRouterProcess(), await startRouterProcess()];
    const [a, b] = [member(routers, "a"), member(routers, "b")];
    const suspects: TunnelSuspect[] = [];
    a.on("suspect", (s) => suspects.push(s));
    for (const m of [a, b]) m.start();
    await Promise.all([a, b].map((m) => m.waitForRouters(2)));
    const victim = randomUUID();
    const spec = {
      routers: routers.map((r) => ({ host: "127.0.0.1", port: r.port })),
      group: "tunnel-it",
      uuid: victim,
      name: "victim",
    };
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(REPO_ROOT, "test/tunnel/fixtures/member.ts"), JSON.stringify(spec)],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, LOG_LEVEL: "warn" },
      },
    );
    try {
      let out = "";
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
      });
      await waitFor("the member process to register", () => out.includes("ready"), { timeoutMs: 15_000 });
      expect((await a.getMembers()).map((p) => p.logicalName).sort()).toEqual(["a", "b", "victim"]);
      a.send(null, Buffer.from("hello victim"));
      await waitFor("the member process to receive a message", () => out.includes("msg hello victim"));
      child.kill("SIGKILL");
      await waitFor("SUSPECT from both routers", () => suspects.length === 2, { timeoutMs: 10_000 });
      expect(suspects.map((s) => s.addr.kind === "uuid" && s.addr.uuid)).toEqual([victim, victim]);
      expect(suspects.map((s) => s.router.port).sort()).toEqual(routers.map((r) => r.port).sort());
      expect(suspects.every((s) => s.group === "tunnel-it")).toBe(true);
      expect((await a.getMembers()).map((p) => p.logicalName).sort()).toEqual(["a", "b"]);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("router killed: no loss of messages sent after router-down; restarted on the same port: re-registered, router-up, carries traffic", async () => {
    const routers = [await startRouterProcess(), await startRouterProcess()];
    const ms = ["m0", "m1", "m2"].map((n) => member(routers, n));
    const boxes = ms.map(inbox);
    for (const m of ms) m.start();
    await Promise.all(ms.map((m) => m.waitForRouters(2)));
    // Kill the router m0 sends through, mid-traffic; r2 is the other one.
    const port1 = ms[0]!.status().current!.port;
    const r1 = routers.find((r) => r.port === port1)!;
    const r2 = routers.find((r) => r.port !== port1)!;
    const isR1 = (r: RouterEndpoint) => r.port === port1;
    const downs = ms.map((m) => nextStatus(m, "router-down", 10_000, (e) => isR1(e.router)));
    const sentAfterDown = ms.map(() => [] as string[]);
    const senders = ms.map(async (m, i) => {
      await downs[i];
      for (let k = 0; k < 200; k++) {
        const t = `after ${i}:${k}`;
        m.send(null, Buffer.from(t));
        sentAfterDown[i]!.push(t);
      }
    });
    for (let k = 0; k < 50; k++) {
      for (const [i, m] of ms.entries()) m.send(null, Buffer.from(`before ${i}:${k}`));
    }
    await r1.kill9();
    await Promise.all(senders);
    await waitFor(
      "every message sent after router-down, at every other member",
      () =>
        boxes.every((box, i) =>
          ms.every((_, j) => j === i || box.filter((x) => text(x).startsWith(`after ${j}:`)).length === 200),
        ),
      { timeoutMs: 10_000 },
    );
    boxes.forEach((box, i) => {
      for (const j of [0, 1, 2].filter((j) => j !== i)) {
        expect(box.map(text).filter((t) => t.startsWith(`after ${j}:`))).toEqual(sentAfterDown[j]);
      }
    });

    // Restart r1 on its port: every member re-registers there (router-up, seen by `relay dump`).
    const ups = ms.map((m) => nextStatus(m, "router-up", 15_000, (e) => isR1(e.router)));
    await startRouterProcess(["--port", String(port1)]);
    const upEvents = await Promise.all(ups);
    expect(upEvents.every((e) => e.reconnects === 1)).toBe(true);
    const listed = await dump(port1, "tunnel-it");
    expect(listed).toHaveLength(3);
    // Now lose r2: the traffic goes through the restarted r1.
    const downs2 = ms.map((m) => nextStatus(m, "router-down", 10_000, (e) => e.router.port === r2.port));
    await r2.kill9();
    await Promise.all(downs2);
    for (const b of boxes) b.length = 0;
    for (const [i, m] of ms.entries()) m.send(null, Buffer.from(`via r1 from ${i}`));
    await waitFor("messages through the restarted router", () => boxes.every((b) => b.length === 2), {
      timeoutMs: 10_000,
    });
    expect(boxes.flat().every((m) => isR1(m.router))).toBe(true);
    expect(ms.every((m) => m.status().current?.port === port1)).toBe(true);
  });
});

describe("TLS with mutual authentication (real router)", () => {
  let dir: string;
  let pki: TestPki;
  let router: RouterProcess;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "tunnel-router-tls-"));
    pki = await makeTestPki(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function tlsRouter(): Promise<RouterProcess> {
    return startRouterProcess([
      "--tls-cert",
      pki.serverCert,
      "--tls-key",
      pki.serverKey,
      "--tls-ca",
      pki.caCert,
      "--tls-client-auth",
    ]);
  }

  test("clients with the CA-signed certificate register and exchange messages", async () => {
    router = await tlsRouter();
    const tls = { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey };
    const [a, b] = [member([router], "a", { tls }), member([router], "b", { tls })];
    const ib = inbox(b);
    for (const m of [a, b]) m.start();
    await Promise.all([a, b].map((m) => m.waitForRouters(1)));
    a.send(b.options.localAddr, Buffer.from("secret"));
    await waitFor("the message over TLS", () => ib.length === 1);
    expect(text(ib[0]!)).toBe("secret");
    expect((await a.getMembers()).map((p) => p.logicalName).sort()).toEqual(["a", "b"]);
  });

  test.each([
    ["the rogue (self-signed) certificate", "rogue"],
    ["no client certificate", "none"],
  ])("a client with %s is refused and reports it (connect-failed, never router-up)", async (_n, kind) => {
    router = await tlsRouter();
    const tls =
      kind === "rogue" ? { ca: pki.caCert, cert: pki.rogueCert, key: pki.rogueKey } : { ca: pki.caCert };
    const c = member([router], "intruder", { tls });
    let up = false;
    c.on("status", (e) => {
      if (e.type === "router-up") up = true;
    });
    c.start();
    const failed = await nextStatus(c, "connect-failed", 10_000);
    expect(["socket-error", "router-closed"]).toContain(failed.reason);
    expect(failed.message).toMatch(/alert|certificate|before confirming the registration/i);
    await new Promise((r) => setTimeout(r, 200));
    expect(up).toBe(false);
    expect(c.status().routers[0]!.state).not.toBe("registered");
  });
});
