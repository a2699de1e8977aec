// Child processes for integration tests: the real router (`node dist/runtime/cli/relay.js router`)
// and free loopback ports. Needs a build (`npm run build`; `npm test` does it first).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (this file is test/helpers/processes.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The built CLI. */
export const RELAY_CLI = path.join(REPO_ROOT, "dist/runtime/cli/relay.js");

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

export interface RouterProcess {
  readonly port: number;
  /** Port of the /healthz + /metrics server. */
  readonly httpPort: number;
  readonly child: ChildProcess;
  /** Every stderr line (JSON logs) seen so far. */
  readonly logs: string[];
  /** SIGTERM, then wait for exit (SIGKILL after 5 s). Resolves once the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL, then wait for exit. */
  kill9(): Promise<void>;
  /** Exit code once the process has exited (null while running or when killed by a signal). */
  exitCode(): number | null;
}

const live = new Set<ChildProcess>();

// Last resort: never leave a router behind when a test file dies mid-way.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** A loopback TCP port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Spawns `relay router --port 0 --http-port 0 ...args` (an explicit --port / --http-port in args
 * wins) and resolves with the ports from its "router listening" log line. Rejects with the
 * process output if it exits or does not report in time.
 */
export async function startRouterProcess(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<RouterProcess> {
  if (!existsSync(RELAY_CLI)) throw new Error(`${RELAY_CLI} not found: run \`npm run build\` first`);
  const defaults = [
    ...(args.includes("--port") ? [] : ["--port", "0"]),
    ...(args.includes("--http-port") ? [] : ["--http-port", "0"]),
  ];
  const child = spawn(process.execPath, [RELAY_CLI, "router", ...defaults, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  const logs: string[] = [];
  let stdout = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    if (!(await waitExit(child, STOP_TIMEOUT_MS))) {
      child.kill("SIGKILL");
      await waitExit(child, STOP_TIMEOUT_MS);
    }
  };
  const kill9 = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await waitExit(child, STOP_TIMEOUT_MS);
  };

  const ports = await new Promise<{ port: number; httpPort: number }>((resolve, reject) => {
    let pending = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`router process ${why}\nstderr:\n${logs.join("\n")}${pending}\nstdout:\n${stdout}`));
    };
    const timer = setTimeout(
      () => fail(`did not log "router listening" within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS,
    );
    child.once("exit", (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    child.once("error", (err) => fail(`could not be spawned: ${err.message}`));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      pending += d;
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        logs.push(line);
        nl = pending.indexOf("\n");
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number; httpPort?: number | null };
          if (rec.msg === "router listening" && typeof rec.port === "number") {
            clearTimeout(timer);
            child.removeAllListeners("exit");
            child.once("exit", () => live.delete(child));
            resolve({ port: rec.port, httpPort: rec.httpPort ?? 0 });
          }
        } catch {
          // not a JSON log line
        }
      }
    });
  });

  return {
    port: ports.port,
    httpPort: ports.httpPort,
    child,
    logs,
    stop,
    kill9,
    exitCode: () => child.exitCode,
  };
}

/** Kills every router process still running (for afterAll). */
export async function killAllRouterProcesses(): Promise<void> {
  await Promise.all(
    [...live].map(async (child) => {
      child.kill("SIGKILL");
      await waitExit(child, STOP_TIMEOUT_MS);
    }),
  );
}
