// The built CLI: `relay router` as a child process (startup line, SIGTERM -> exit 0, option
// errors) and `relay dump` against it. Needs `npm run build` (npm test does it first).
import { execFile } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";
import type { Address } from "../../runtime/protocol/types.js";
import {
  killAllRouterProcesses,
  RELAY_CLI,
  type RouterProcess,
  startRouterProcess,
} from "../helpers/processes.js";
import { ip, TestClient, uuid } from "./util.js";

const run = promisify(execFile);
const clients: TestClient[] = [];
let routerProc: RouterProcess | null = null;

afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.length = 0;
  await routerProc?.stop();
  routerProc = null;
});
afterAll(killAllRouterProcesses);

async function relay(
  args: string[],
  timeout = 15_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [RELAY_CLI, ...args], { timeout });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

const nyc2: Address = {
  kind: "site-uuid",
  uuid: "b7a24ceb-044b-40e9-9312-8f51696ad4be",
  flags: 0,
  extensions: [],
  site: "nyc",
  name: "_nyc2",
};

test("relay router starts, serves /healthz, and exits 0 on SIGTERM", async () => {
  routerProc = await startRouterProcess(["--bind", "127.0.0.1"]);
  expect(routerProc.port).toBeGreaterThan(0);
  const res = await fetch(`http://127.0.0.1:${routerProc.httpPort}/healthz`, {
    signal: AbortSignal.timeout(5_000),
  });
  expect(res.status).toBe(200);
  await routerProc.stop();
  expect(routerProc.exitCode()).toBe(0);
});

test("relay dump lists every member (text and --json), or one group", async () => {
  routerProc = await startRouterProcess(["--bind", "127.0.0.1"]);
  const c = await TestClient.connect(routerProc.port);
  clients.push(c);
  c.register("chat", uuid(1), "alice", ip(7001));
  c.register("global", nyc2, "_nyc2", ip(7002));
  const target = `127.0.0.1[${routerProc.port}]`;
  // Registrations are asynchronous: poll dump itself until both members are there.
  let out = { code: -1, stdout: "", stderr: "" };
  for (let i = 0; i < 50 && out.stdout.trim().split("\n").length < 2; i++)
    out = await relay(["dump", target]);
  expect(out.code).toBe(0);
  expect(out.stdout.trim().split("\n")).toEqual([
    `chat\t${uuid(1).uuid}\t-\talice\t127.0.0.1:7001`,
    `global\t${nyc2.uuid}:nyc\tnyc\t_nyc2\t127.0.0.1:7002`,
  ]);

  const json = await relay(["dump", target, "--json", "--group", "global"]);
  expect(json.code).toBe(0);
  expect(JSON.parse(json.stdout)).toEqual([
    { group: "global", address: `${nyc2.uuid}:nyc`, site: "nyc", name: "_nyc2", physical: "127.0.0.1:7002" },
  ]);

  const none = await relay(["dump", target, "--group", "nobody"]);
  expect(none.code).toBe(0);
  expect(none.stdout).toBe("");
  expect(none.stderr).toContain("no members");
});

test("relay dump fails clearly when the router is unreachable or silent", async () => {
  // A port nobody listens on: take a free one and close it.
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
  const refused = await relay(["dump", `127.0.0.1[${closed}]`, "--timeout", "2000"]);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/cannot talk to 127\.0\.0\.1\[\d+\]: ECONNREFUSED/);

  // A server that accepts and never answers (like a JGroups router asked for an unknown group).
  const silent = net.createServer((s) => s.on("data", () => {}));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  try {
    const port = (silent.address() as net.AddressInfo).port;
    const res = await relay(["dump", `127.0.0.1[${port}]`, "--timeout", "300"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("no answer from 127.0.0.1[");
  } finally {
    silent.close();
  }
});

test.each([
  [["--port", "70000"], "--port must be an integer between 0 and 65535"],
  [["--port", "abc"], "--port must be an integer"],
  [["--expiry", "-5"], "--expiry"],
  [["--max-queue", "10"], "--max-queue must be an integer between 1024"],
  [["--tls-cert", "/nonexistent.pem"], "TLS needs both --tls-cert and --tls-key"],
  [
    ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"],
    "--tls-cert: cannot read /nonexistent.pem",
  ],
  [["--tls-client-auth", "--tls-cert", "a", "--tls-key", "b"], "--tls-client-auth needs --tls-ca"],
  [["--bogus"], "unknown option '--bogus'"],
])("relay router %j is refused with a clear message", async (args, message) => {
  const res = await relay(["router", "--port", "0", "--http-port", "0", ...args]);
  expect(res.code).not.toBe(0);
  expect(res.stderr).toContain(message);
  expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
});

test("relay dump rejects a malformed target", async () => {
  const res = await relay(["dump", "host[notaport]"]);
  expect(res.code).not.toBe(0);
  expect(res.stderr).toContain("HOST[PORT]");
});
