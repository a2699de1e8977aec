// Broken stdout / stderr pipes (the reader was killed, `relay dump | head`): every command keeps
// working, stops on SIGTERM within a few seconds and never crashes with EPIPE. Before the fix,
// `relay router` with a dead stderr reader hung forever in its SIGTERM handler (pino retried the
// failed write in a loop) and `relay dump` died with an unhandled 'error' event.
import net from "node:net";
import { jest } from "@jest/globals";
import { freePort, killAllRouterProcesses, startRouterProcess } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { exitOf, httpGet, isAlive, nodeEnv, requireBuild, spawnNode } from "./util.js";

jest.setTimeout(90_000);

beforeAll(() => requireBuild());
afterAll(killAllRouterProcesses);

/** Sends bytes that are not a frame: the router logs a warning and closes the connection. */
async function sendGarbage(port: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.end(Buffer.from("GET / HTTP/1.1\r\n\r\n")));
    s.on("error", () => resolve());
    s.on("close", () => resolve());
    s.resume();
  });
}

test("relay router whose stderr reader died: SIGTERM -> exit 0 (its first failed write is at the stop)", async () => {
  const router = await startRouterProcess(["--bind", "127.0.0.1"]);
  router.child.stderr!.destroy();
  await waitFor("healthz", async () => (await httpGet(router.httpPort, "/healthz"))?.status === 200, {
    timeoutMs: 5_000,
  });
  router.child.kill("SIGTERM");
  expect(await exitOf(router.child, 5_000)).toEqual({ code: 0, signal: null });
});

test("relay router whose stderr reader died: keeps serving while logging, SIGTERM -> exit 0", async () => {
  const router = await startRouterProcess(["--bind", "127.0.0.1"], { LOG_LEVEL: "debug" });
  router.child.stderr!.destroy();
  // Make it log after the pipe broke (connection, bad input), then check it still answers.
  for (let i = 0; i < 3; i++) await sendGarbage(router.port);
  await waitFor("healthz", async () => (await httpGet(router.httpPort, "/healthz"))?.status === 200, {
    timeoutMs: 5_000,
  });
  router.child.kill("SIGTERM");
  expect(await exitOf(router.child, 5_000)).toEqual({ code: 0, signal: null });
});

test("relay router whose stderr reader stopped reading (pipe full): keeps serving, SIGTERM -> exit 0", async () => {
  const router = await startRouterProcess(["--bind", "127.0.0.1"], { LOG_LEVEL: "debug" });
  router.child.stderr!.pause();
  // Far more log lines than a pipe holds (64 KiB): 2000 connections with bad bytes.
  for (let batch = 0; batch < 40; batch++) {
    await Promise.all(Array.from({ length: 50 }, () => sendGarbage(router.port)));
  }
  await waitFor("healthz", async () => (await httpGet(router.httpPort, "/healthz"))?.status === 200, {
    timeoutMs: 5_000,
  });
  router.child.kill("SIGTERM");
  expect(await exitOf(router.child, 5_000)).toEqual({ code: 0, signal: null });
});

test("relay node with a dead stderr reader: SIGTERM while joining -> exit 0", async () => {
  const httpPort = await freePort();
  const env = nodeEnv({ meshPort: await freePort(), httpPort, routers: `127.0.0.1[${await freePort()}]` });
  const p = spawnNode(["node"], env, { logLevel: "debug" });
  await waitFor("HTTP up", async () => (await httpGet(httpPort, "/healthz"))?.status === 200, {
    timeoutMs: 10_000,
  });
  p.child.stderr!.destroy();
  await new Promise((r) => setTimeout(r, 200)); // a few debug lines into the broken pipe
  p.child.kill("SIGTERM");
  expect(await exitOf(p.child, 5_000)).toEqual({ code: 0, signal: null });
});

test("relay dump | head: the reader of stdout is gone before the answer, exit 0 without a stack", async () => {
  const router = await startRouterProcess(["--bind", "127.0.0.1"]);
  const p = spawnNode(["dump", "--json", `127.0.0.1[${router.port}]`]);
  p.child.stdout!.destroy();
  const exit = await exitOf(p.child, 10_000);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(p.stderr()).not.toMatch(/EPIPE|\n\s+at /);
  await router.stop();
});

describe("relay local (nyc=1, sfc=1, one router) and a chat in it", () => {
  let local: ReturnType<typeof spawnNode>;
  const LINE = /^(\S+)\s+(\S+)\s+pid (\d+)\s+port (\d+)\s+http (\d+)$/gm;
  const procs = () =>
    [...local.stdout().matchAll(LINE)].map((m) => ({ name: m[1]!, site: m[2]!, port: m[4]! }));
  const chatArgs = () => [
    "chat",
    "--site",
    "sfc",
    "--members",
    procs()
      .filter((p) => p.site === "sfc")
      .map((p) => `127.0.0.1[${p.port}]`)
      .join(","),
    "--routers",
    procs()
      .filter((p) => p.site === "-")
      .map((p) => `127.0.0.1[${p.port}]`)
      .join(","),
  ];

  beforeAll(async () => {
    local = spawnNode(["local", "--no-chat", "--sites", "nyc=1,sfc=1", "--router-count", "1"]);
    await waitFor("relay local ready", () => /^ready: /m.test(local.stdout()), { timeoutMs: 30_000 });
  });
  afterAll(() => {
    local.child.kill("SIGKILL");
  });

  test("interactive relay chat whose stdout reader is gone: stops by itself, exit 0", async () => {
    const chat = spawnNode([...chatArgs(), "--name", "Temp"], {}, { stdio: ["pipe", "pipe", "pipe"] });
    await waitFor("chat joined", () => chat.stdout().includes("-- joined site sfc"), { timeoutMs: 20_000 });
    chat.child.stdout!.destroy();
    // Each line typed brings answers to print; printing them fails and the chat stops itself.
    const typing = setInterval(() => chat.child.stdin!.write("hello\n"), 200);
    try {
      expect(await exitOf(chat.child, 20_000)).toEqual({ code: 0, signal: null });
    } finally {
      clearInterval(typing);
    }
    expect(chat.stderr()).not.toMatch(/EPIPE|\n\s+at /);
  });

  test("relay chat --send whose stdout reader is gone: finishes normally, exit 0", async () => {
    const chat = spawnNode([...chatArgs(), "--send", "hello", "--expect", "1", "--timeout", "10000"], {}, {});
    chat.child.stdout!.destroy();
    expect(await exitOf(chat.child, 30_000)).toEqual({ code: 0, signal: null });
    expect(chat.stderr()).not.toMatch(/EPIPE|\n\s+at /);
  });

  test("relay local with both pipes broken: SIGTERM stops it and every process it started", async () => {
    const pids = [...local.stdout().matchAll(/ pid (\d+) /g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    local.child.stdout!.destroy();
    local.child.stderr!.destroy();
    local.child.kill("SIGTERM");
    expect(await exitOf(local.child, 15_000)).toEqual({ code: 0, signal: null });
    await waitFor("no child left", () => pids.every((pid) => !isAlive(pid)), { timeoutMs: 10_000 });
  });
});
