// Helpers of the process lifecycle tests: the built `relay` CLI as a child process with its pipes
// under the test's control, its exit observed with a bound, and nothing left running afterwards.
import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import path from "node:path";
import { CONTRACT_VARS, killOnExit, RELAY_CLI, REPO_ROOT } from "../helpers/relay-cli.js";

export { getJson as httpGet, isAlive, requireBuild } from "../helpers/relay-cli.js";
export const DIST = path.join(REPO_ROOT, "dist");

/** The environment of a relay node alone in site nyc (no router needed unless it must get ready). */
export function nodeEnv(o: {
  meshPort: number;
  httpPort: number;
  routers: string;
  members?: string;
}): Record<string, string> {
  return {
    SITE: "nyc",
    CLUSTER: "relay",
    NODE_NAME: "nyc-1",
    BIND_ADDR: "127.0.0.1",
    BIND_PORT: String(o.meshPort),
    HTTP_PORT: String(o.httpPort),
    STATIC_MEMBERS: o.members ?? `127.0.0.1[${o.meshPort}]`,
    TUNNEL_INITIAL_HOSTS: o.routers,
  };
}

export interface Spawned {
  readonly child: ChildProcess;
  /** Everything read from stdout / stderr so far (empty for a pipe the test destroyed). */
  readonly stdout: () => string;
  readonly stderr: () => string;
}

/** Spawns `node <script> ...args` (the relay CLI by default) with every pipe read by the test. */
export function spawnNode(
  args: string[],
  env: Record<string, string> = {},
  o: { script?: string; stdio?: StdioOptions; logLevel?: string } = {},
): Spawned {
  const base: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: o.logLevel ?? "info" };
  for (const k of CONTRACT_VARS) delete base[k];
  const child = spawn(process.execPath, [o.script ?? RELAY_CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...base, ...env },
    stdio: o.stdio ?? ["ignore", "pipe", "pipe"],
  });
  killOnExit(child);
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  return { child, stdout: () => out, stderr: () => err };
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Resolves with the exit code or signal. After `timeoutMs` the process is killed with SIGKILL and
 * the promise rejects: a process that does not stop by itself is the failure these tests look for.
 */
export function exitOf(child: ChildProcess, timeoutMs: number): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pid ${child.pid} still running ${timeoutMs} ms later (killed)`));
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      // Let the pipes deliver what the process wrote last.
      setImmediate(() => resolve({ code, signal }));
    });
  });
}

/** The `relay: ...` lines a command printed on stderr (its JSON log lines left out). */
export function relayLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("{"));
}
