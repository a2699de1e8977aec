// Container health check (Dockerfile HEALTHCHECK): exit 0 when GET /healthz on the local HTTP
// port answers 200 within the time limit, 1 otherwise. Slim images have no curl, hence node.
//
// Port, first match wins:
//   1. $HEALTH_PORT
//   2. the `--http-port N` / `--http-port=N` argument of the container's main process (PID 1)
//   3. 9000 when that process runs `relay router` (the router's default)
//   4. $HTTP_PORT (the relay node's setting)
//   5. 8080 (the relay node's default)
// Host: $HEALTH_HOST, default 127.0.0.1.
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { pathToFileURL } from "node:url";

const ROUTER_DEFAULT_PORT = 9000;
const NODE_DEFAULT_PORT = 8080;
const TIMEOUT_MS = 2500;

/** Arguments of PID 1, or [] when they cannot be read (e.g. a shared PID namespace). */
function mainProcessArgs() {
  try {
    return readFileSync("/proc/1/cmdline", "latin1").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

function validPort(text) {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

export function choosePort(env, args) {
  if (env.HEALTH_PORT !== undefined) {
    const port = validPort(env.HEALTH_PORT);
    if (port === undefined) throw new Error(`HEALTH_PORT must be a port number, got "${env.HEALTH_PORT}"`);
    return port;
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value =
      arg === "--http-port" ? args[i + 1] : arg.startsWith("--http-port=") ? arg.slice(12) : undefined;
    const port = validPort(value);
    if (port !== undefined) return port;
  }
  // The sub-command follows the CLI script; PID 1 may be an init process wrapping node.
  const script = args.findIndex((a) => a.endsWith("relay.js") || a.endsWith("/relay"));
  if (script >= 0 && args[script + 1] === "router") return ROUTER_DEFAULT_PORT;
  return validPort(env.HTTP_PORT) ?? NODE_DEFAULT_PORT;
}

function check(host, port) {
  return new Promise((resolve) => {
    const req = request({ host, port, path: "/healthz", method: "GET", timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? "" : `status ${res.statusCode}`);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", (err) => resolve(err.message));
    req.end();
  });
}

async function main() {
  const host = process.env.HEALTH_HOST || "127.0.0.1";
  const port = choosePort(process.env, mainProcessArgs());
  const problem = await check(host, port);
  if (problem) {
    process.stderr.write(`unhealthy: http://${host}:${port}/healthz: ${problem}\n`);
    process.exit(1);
  }
  process.stdout.write(`healthy: http://${host}:${port}/healthz\n`);
}

// Run only as a script, so tests can import choosePort.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
