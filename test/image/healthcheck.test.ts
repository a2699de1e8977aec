// The image's health check script (containers/healthcheck.mjs), run on the host against real
// loopback HTTP servers; the image test runs the same script inside the container.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { choosePort } from "../../containers/healthcheck.mjs";
import { REPO_ROOT } from "../helpers/podman.js";
import { freePort } from "../helpers/processes.js";

const SCRIPT = join(REPO_ROOT, "containers/healthcheck.mjs");
const NODE_ARGS = ["node", "/app/dist/runtime/cli/relay.js"];

describe("choosePort", () => {
  test("HEALTH_PORT wins over everything", () => {
    expect(
      choosePort({ HEALTH_PORT: "9100", HTTP_PORT: "81" }, [...NODE_ARGS, "router", "--http-port", "5"]),
    ).toBe(9100);
  });

  test("an invalid HEALTH_PORT is an error, not a silent default", () => {
    expect(() => choosePort({ HEALTH_PORT: "http" }, [])).toThrow(/HEALTH_PORT must be a port number/);
    expect(() => choosePort({ HEALTH_PORT: "70000" }, [])).toThrow(/HEALTH_PORT/);
  });

  test("--http-port of the main process, both spellings", () => {
    expect(choosePort({}, [...NODE_ARGS, "router", "--port", "12001", "--http-port", "9555"])).toBe(9555);
    expect(choosePort({}, [...NODE_ARGS, "router", "--http-port=9556"])).toBe(9556);
    // podman/docker --init: PID 1 is the init process, node's arguments follow it.
    expect(choosePort({}, ["/run/podman-init", "--", ...NODE_ARGS, "node", "--http-port", "8181"])).toBe(
      8181,
    );
  });

  test("router default 9000, node default HTTP_PORT then 8080", () => {
    expect(choosePort({ HTTP_PORT: "8123" }, [...NODE_ARGS, "router", "--port", "12001"])).toBe(9000);
    expect(choosePort({ HTTP_PORT: "8123" }, [...NODE_ARGS, "node"])).toBe(8123);
    expect(choosePort({}, [...NODE_ARGS, "node"])).toBe(8080);
    expect(choosePort({ HTTP_PORT: "junk" }, [])).toBe(8080);
  });
});

function runScript(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT], { env: { PATH: process.env.PATH, ...env } });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d));
    child.stderr.on("data", (d: Buffer) => (output += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("healthcheck script", () => {
  let server: Server;
  let port: number;
  let status = 200;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === "/healthz" ? status : 404, { "content-type": "application/json" });
      res.end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("exit 0 when /healthz answers 200", async () => {
    status = 200;
    const r = await runScript({ HEALTH_PORT: String(port) });
    expect(r).toEqual({ code: 0, output: `healthy: http://127.0.0.1:${port}/healthz\n` });
  });

  test("exit 1 when /healthz answers 503", async () => {
    status = 503;
    const r = await runScript({ HEALTH_PORT: String(port) });
    expect(r.code).toBe(1);
    expect(r.output).toContain("status 503");
  });

  test("exit 1 when nothing listens", async () => {
    const closed = await freePort();
    const r = await runScript({ HEALTH_PORT: String(closed) });
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/unhealthy: .*ECONNREFUSED/);
  });

  test("exit 1 with a clear message for a bad HEALTH_PORT", async () => {
    const r = await runScript({ HEALTH_PORT: "nope" });
    expect(r.code).toBe(1);
    expect(r.output).toContain('HEALTH_PORT must be a port number, got "nope"');
  });
});
