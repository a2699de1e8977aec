// Process lifecycle of the relay commands: configuration errors (one line naming the variable,
// exit 2), SIGTERM of a node (leaves, exit 0), and no orphans when `relay local` is killed -9.
import { spawn } from "node:child_process";
import { jest } from "@jest/globals";
import { freePort } from "../helpers/processes.js";
import { CONTRACT_VARS } from "../helpers/relay-cli.js";
import { waitFor } from "../helpers/wait.js";
import { getJson, isAlive, RELAY_CLI, REPO_ROOT, requireBuild, runCli, startLocal } from "./cli.js";

jest.setTimeout(60_000);

beforeAll(() => requireBuild());

const GOOD = {
  SITE: "nyc",
  CLUSTER: "relay",
  STATIC_MEMBERS: "127.0.0.1[7800]",
  TUNNEL_INITIAL_HOSTS: "127.0.0.1[12001]",
  NODE_NAME: "nyc-1",
  BIND_ADDR: "127.0.0.1",
};
const CLEAN = Object.fromEntries(CONTRACT_VARS.map((k) => [k, undefined]));

describe("bad configuration: one clear line naming the variable, exit code 2", () => {
  test.each([
    ["SITE missing", { SITE: undefined }, /^relay: SITE is not set/],
    ["bad SITE", { SITE: "New York" }, /^relay: SITE: "New York" is not a DNS-1123 label/],
    [
      "bad TUNNEL_INITIAL_HOSTS",
      { TUNNEL_INITIAL_HOSTS: "router:12001" },
      /^relay: TUNNEL_INITIAL_HOSTS: "router:12001" is not host\[port\]/,
    ],
    ["no discovery", { STATIC_MEMBERS: undefined }, /^relay: neither DNS_QUERY nor STATIC_MEMBERS is set/],
    ["bad BIND_PORT", { BIND_PORT: "70000" }, /^relay: BIND_PORT: 70000 is outside 1\.\.65535/],
    ["half TLS", { TLS_CERT: "/tmp/c.pem" }, /^relay: TLS is half configured/],
    ["BIND_ADDR not an IP", { BIND_ADDR: "my-host" }, /^relay: BIND_ADDR: "my-host" is not an IP address/],
  ])("%s", async (_what, change, message) => {
    const r = await runCli(["node"], { ...CLEAN, ...GOOD, ...change }, 15_000);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  test("relay chat without routers names the variable and the flag", async () => {
    const r = await runCli(
      ["chat", "--site", "sfc", "--members", "127.0.0.1[1]", "--send", "x"],
      CLEAN,
      15_000,
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^relay: TUNNEL_INITIAL_HOSTS is not set.*\(or pass --routers\)$/);
  });

  test("relay local with a bad --sites", async () => {
    const r = await runCli(["local", "--sites", "nyc=0"], {}, 15_000);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("relay: --sites: nyc needs 1..50 members, got 0");
  });
});

test("a single node: ready as a site master once registered with a router; SIGTERM -> exit 0", async () => {
  // A router from our own CLI, then one node that is alone in its site.
  const router = spawn(
    process.execPath,
    [RELAY_CLI, "router", "--port", "0", "--http-port", "0", "--bind", "127.0.0.1"],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  try {
    const routerPort = await new Promise<number>((resolve, reject) => {
      let buf = "";
      const t = setTimeout(() => reject(new Error("router did not start")), 15_000);
      router.stderr!.setEncoding("utf8").on("data", (d: string) => {
        buf += d;
        const m = /"port":(\d+).*"msg":"router listening"/.exec(buf);
        if (m) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
    });
    const [mesh, http] = [await freePort(), await freePort()];
    const node2 = spawn(process.execPath, [RELAY_CLI, "node"], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...GOOD,
        STATIC_MEMBERS: `127.0.0.1[${mesh}]`,
        BIND_PORT: String(mesh),
        HTTP_PORT: String(http),
        TUNNEL_INITIAL_HOSTS: `127.0.0.1[${routerPort}]`,
      },
      stdio: ["ignore", "ignore", "ignore"],
    });
    await waitFor(
      "node ready",
      async () => (await getJson<{ ready: boolean }>(http, "/readyz"))?.status === 200,
      { timeoutMs: 20_000 },
    );
    const st = await getJson<{ siteMaster: boolean; routers: { state: string }[] }>(http, "/status");
    expect(st?.body.siteMaster).toBe(true);
    expect(st?.body.routers).toEqual([{ endpoint: `127.0.0.1[${routerPort}]`, state: "registered" }]);
    const code = new Promise<number | null>((r) => node2.once("exit", (c) => r(c)));
    node2.kill("SIGTERM");
    expect(await code).toBe(0);
  } finally {
    router.kill("SIGKILL");
  }
});

test("relay local killed with kill -9: every process it started stops by itself", async () => {
  const run = await startLocal(["--sites", "nyc=2,sfc=1", "--router-count", "1"]);
  const pids = run.procs.map((p) => p.pid);
  expect(pids).toHaveLength(4);
  run.child.kill("SIGKILL");
  await waitFor("children gone after the parent's kill -9", () => pids.every((pid) => !isAlive(pid)), {
    timeoutMs: 20_000,
  });
});

test("npm start's path: relay local with the chat on stdin; Ctrl-C (SIGINT to the group) stops everything", async () => {
  const child = spawn(
    process.execPath,
    [RELAY_CLI, "local", "--sites", "nyc=2,sfc=1", "--router-count", "1"],
    {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // its own process group, like a terminal's foreground job
    },
  );
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  try {
    await waitFor("chat prompt", () => out.includes("type 'help'"), { timeoutMs: 30_000 });
    child.stdin!.write("hello\n");
    await waitFor("answers from nyc", () => out.includes("<< response from nyc-2:nyc"), {
      timeoutMs: 10_000,
    });
    expect(out).toMatch(/^<< hello from Temp$/m);
    expect(out).toMatch(/^<< response from Temp$/m);
    expect(out).toMatch(/^<< response from sfc-1$/m);
    expect(out).toMatch(/^<< response from nyc-1:nyc$/m);
    const pids = [...out.matchAll(/ pid (\d+) /g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(4);
    const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    process.kill(-child.pid!, "SIGINT");
    expect(await exited).toBe(0);
    await waitFor("no process left after Ctrl-C", () => pids.every((pid) => !isAlive(pid)), {
      timeoutMs: 10_000,
    });
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  }
});
