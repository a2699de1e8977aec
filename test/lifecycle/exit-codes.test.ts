// The CLI's exit codes (docs/RUNTIME.md, "Exit codes"): 0 done (also --help and --version), 1 a
// failure while starting or running (a port in use, nothing ready in time), 2 a usage or
// configuration mistake (an unknown option, a bad value, a bad environment variable).
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, jest, test } from "@jest/globals";
import { freePort } from "../helpers/processes.js";
import { REPO_ROOT, requireBuild, runCli } from "../relay/cli.js";

jest.setTimeout(120_000);
requireBuild();

const version = (
  JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }
).version;
const tmp = mkdtempSync(path.join(os.tmpdir(), "relay-exit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("--version prints the package version and exits 0; --help exits 0", async () => {
  const v = await runCli(["--version"]);
  expect(v.code).toBe(0);
  expect(v.stdout.trim()).toBe(version);
  expect((await runCli(["-V"])).stdout.trim()).toBe(version);
  expect((await runCli(["router", "--help"])).code).toBe(0);
});

test("usage and configuration mistakes exit 2", async () => {
  const unknown = await runCli(["--bogus"]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("unknown option '--bogus'");
  const badValue = await runCli(["router", "--port", "x"]);
  expect(badValue.code).toBe(2);
  expect(badValue.stderr).toContain("--port must be an integer");
  const badEnv = await runCli(["node"], { SITE: undefined, NODE_NAME: undefined });
  expect(badEnv.code).toBe(2);
  expect(badEnv.stderr).toContain("SITE is not set");
});

test("relay node checks its whole environment before joining: each mistake names its variable, exit 2", async () => {
  const base = {
    SITE: "nyc",
    CLUSTER: "relay",
    NODE_NAME: "nyc-1",
    BIND_ADDR: "127.0.0.1",
    BIND_PORT: "1",
    HTTP_PORT: "2",
    STATIC_MEMBERS: "127.0.0.1[1]",
    TUNNEL_INITIAL_HOSTS: "127.0.0.1[1]",
  };
  const cases: [Record<string, string>, string][] = [
    [{ TLS_CERT: path.join(tmp, "missing.crt"), TLS_KEY: tmp, TLS_CA: tmp }, "relay: TLS_CERT: cannot read"],
    [{ CLUSTER_SECRET_FILE: path.join(tmp, "missing") }, "relay: CLUSTER_SECRET_FILE: cannot read"],
    [{ BIND_ADDR: "localhost" }, 'relay: BIND_ADDR: "localhost" is not an IP address'],
    [{ LOG_LEVEL: "verbose" }, 'relay: LOG_LEVEL: "verbose" is not one of'],
  ];
  for (const [env, line] of cases) {
    const r = await runCli(["node"], { ...base, ...env });
    expect({ env, code: r.code }).toEqual({ env, code: 2 });
    expect(r.stderr).toContain(line);
  }
});

test("a start-up failure (the gossip port in use) exits 1", async () => {
  const held = net.createServer();
  await new Promise<void>((r) => held.listen(0, "127.0.0.1", r));
  try {
    const port = (held.address() as net.AddressInfo).port;
    const r = await runCli(["router", "--bind", "127.0.0.1", "--port", String(port), "--http-port", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/in use/);
  } finally {
    await new Promise((r) => held.close(() => r(undefined)));
  }
});

test("relay local: a --log-dir that does not exist is created; unreachable routers end in exit 1 naming what is pending", async () => {
  const logDir = path.join(tmp, "new", "logs");
  // Port 1 on loopback: nothing listens, so the sites never see each other.
  const r = await runCli(
    [
      "local",
      "--no-chat",
      "--routers",
      "127.0.0.1[1]",
      "--sites",
      "nyc=1,sfc=1",
      "--log-dir",
      logDir,
      "--ready-timeout",
      "12",
    ],
    {},
    90_000,
  );
  expect(statSync(logDir).isDirectory()).toBe(true);
  // With its output: a run on Node 24 under load once ended in 0 here, and the output says why.
  expect({ code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr }).toMatchObject({ code: 1 });
  expect(r.stdout).toMatch(/waiting \d+ s: .*nyc-1 \(sees 1 of 2 sites: no route through the routers yet\)/);
  expect(r.stderr).toMatch(/not ready within \d+ s: .*sfc-1 \(sees 1 of 2 sites/);
});

test("relay node with a DNS_QUERY that resolves to nothing says so in its log instead of a silent singleton", async () => {
  const r = await runCli(
    ["node"],
    {
      SITE: "nyc",
      CLUSTER: "relay",
      NODE_NAME: "nyc-1",
      BIND_ADDR: "127.0.0.1",
      BIND_PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
      DNS_QUERY: "no-such-service.invalid",
      TUNNEL_INITIAL_HOSTS: "127.0.0.1[1]",
      LOG_LEVEL: "warn",
      STATIC_MEMBERS: undefined,
    },
    // Stopped by runCli's timeout; the log line comes at the first discovery round.
    8_000,
  );
  // NXDOMAIN (the usual answer) gives the new line; a resolver that times out instead was
  // already logged as "discovery failed".
  expect(r.stderr).toMatch(
    /"query":"no-such-service\.invalid".*discovery found no address|"msg":"discovery failed"/,
  );
});
