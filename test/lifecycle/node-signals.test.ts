// `relay node` and stop signals, with real processes: SIGTERM (or SIGINT) at any point of its life
// is an orderly stop with exit 0 (Kubernetes deletes pods that are still starting), while a real
// start-up failure (a port in use) still exits non-zero with one line naming the setting.
import net from "node:net";
import { jest } from "@jest/globals";
import { freePort, killAllRouterProcesses, startRouterProcess } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { exitOf, httpGet, nodeEnv, relayLines, requireBuild, spawnNode } from "./util.js";

jest.setTimeout(90_000);

beforeAll(() => requireBuild());
afterAll(killAllRouterProcesses);

/** TUNNEL_INITIAL_HOSTS pointing at a loopback port where nothing listens. */
async function noRouter(): Promise<string> {
  return `127.0.0.1[${await freePort()}]`;
}

interface Readyz {
  ready: boolean;
  joined: boolean;
}

test("SIGTERM from the first moment on (0 to 300 ms after spawn): never a failure, never a hang", async () => {
  // Before Node runs any JavaScript (its first few tens of ms) the kernel's default action ends
  // the process with the signal: no program can do better. From the first line of relay.ts on,
  // the answer must be exit 0, whatever the command is doing (loading, listening, joining).
  const outcomes: string[] = [];
  for (const delayMs of [0, 10, 25, 50, 75, 100, 150, 200, 300]) {
    const env = nodeEnv({
      meshPort: await freePort(),
      httpPort: await freePort(),
      routers: await noRouter(),
    });
    const p = spawnNode(["node"], env);
    await new Promise((r) => p.child.once("spawn", r));
    setTimeout(() => p.child.kill("SIGTERM"), delayMs);
    const exit = await exitOf(p.child, 15_000);
    outcomes.push(`${delayMs} ms: ${exit.code ?? exit.signal}`);
    expect({ delayMs, ok: exit.code === 0 || (exit.code === null && exit.signal === "SIGTERM") }).toEqual({
      delayMs,
      ok: true,
    });
    expect(relayLines(p.stderr())).toEqual([]);
  }
  expect(outcomes).toHaveLength(9);
});

test.each(["SIGTERM", "SIGINT"] as const)(
  "%s while joining (HTTP up, no view yet): exit 0",
  async (signal) => {
    const httpPort = await freePort();
    const env = nodeEnv({ meshPort: await freePort(), httpPort, routers: await noRouter() });
    const p = spawnNode(["node"], env);
    // The join of a lone member takes the join timeout (3 s): /healthz answers, no view yet.
    await waitFor(
      "HTTP up while the node is still joining",
      async () => {
        const r = await httpGet<Readyz>(httpPort, "/readyz");
        return r !== null && r.status === 503 && r.body.joined === false;
      },
      { timeoutMs: 10_000 },
    );
    expect((await httpGet(httpPort, "/healthz"))?.status).toBe(200);
    p.child.kill(signal);
    const exit = await exitOf(p.child, 15_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(relayLines(p.stderr())).toEqual([]);
    expect(p.stderr()).toMatch(/"ready":false,"msg":"stop requested"/);
  },
);

test("SIGTERM after /readyz is 200 (site master registered with a router): exit 0", async () => {
  const router = await startRouterProcess(["--bind", "127.0.0.1"]);
  const httpPort = await freePort();
  const env = nodeEnv({ meshPort: await freePort(), httpPort, routers: `127.0.0.1[${router.port}]` });
  const p = spawnNode(["node"], env);
  await waitFor("node ready", async () => (await httpGet(httpPort, "/readyz"))?.status === 200, {
    timeoutMs: 20_000,
  });
  p.child.kill("SIGTERM");
  expect(await exitOf(p.child, 15_000)).toEqual({ code: 0, signal: null });
  expect(relayLines(p.stderr())).toEqual([]);
  await router.stop();
});

test("repeated signals during the stop do not turn it into a failure", async () => {
  const httpPort = await freePort();
  const env = nodeEnv({ meshPort: await freePort(), httpPort, routers: await noRouter() });
  const p = spawnNode(["node"], env);
  await waitFor("HTTP up", async () => (await httpGet(httpPort, "/healthz"))?.status === 200, {
    timeoutMs: 10_000,
  });
  for (const s of ["SIGTERM", "SIGINT", "SIGTERM", "SIGHUP"] as const) p.child.kill(s);
  expect(await exitOf(p.child, 15_000)).toEqual({ code: 0, signal: null });
});

describe("a real start-up failure: non-zero exit, one line naming the setting", () => {
  async function holdPort(): Promise<{ port: number; close: () => Promise<void> }> {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    return {
      port: (srv.address() as net.AddressInfo).port,
      close: () => new Promise((r) => srv.close(() => r())),
    };
  }

  test("HTTP_PORT in use", async () => {
    const held = await holdPort();
    try {
      const env = nodeEnv({ meshPort: await freePort(), httpPort: held.port, routers: await noRouter() });
      const p = spawnNode(["node"], env);
      const exit = await exitOf(p.child, 15_000);
      expect(exit.code).not.toBe(0);
      expect(exit.code).not.toBeNull();
      expect(relayLines(p.stderr())).toEqual([
        `relay: HTTP_PORT: cannot listen on 127.0.0.1:${held.port}: address already in use`,
      ]);
    } finally {
      await held.close();
    }
  });

  test("BIND_PORT (the mesh port) in use", async () => {
    const held = await holdPort();
    try {
      const env = nodeEnv({ meshPort: held.port, httpPort: await freePort(), routers: await noRouter() });
      const p = spawnNode(["node"], env);
      const exit = await exitOf(p.child, 15_000);
      expect(exit.code).not.toBe(0);
      expect(exit.code).not.toBeNull();
      expect(relayLines(p.stderr())).toEqual([
        `relay: BIND_PORT: cannot listen on 127.0.0.1:${held.port}: address already in use`,
      ]);
    } finally {
      await held.close();
    }
  });
});
