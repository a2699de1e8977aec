// Helpers of the process lifecycle tests: the built `relay` CLI as a child process with its pipes
// under the test's control, its exit observed with a bound, and nothing left running afterwards.
import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const RELAY_CLI = path.join(REPO_ROOT, "dist/runtime/cli/relay.js");
export const DIST = path.join(REPO_ROOT, "dist");

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export function requireBuild(): void {
  if (!existsSync(RELAY_CLI)) throw new Error(`${RELAY_CLI} not found: run \`npm run build\` first`);
}

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

/** Variables of the relay contract, removed from the inherited environment. */
const CONTRACT_VARS = [
  "SITE",
  "CLUSTER",
  "DNS_QUERY",
  "STATIC_MEMBERS",
  "TUNNEL_INITIAL_HOSTS",
  "NODE_NAME",
  "BIND_ADDR",
  "BIND_PORT",
  "HTTP_PORT",
  "SITE_MASTERS",
  "TLS_CERT",
  "TLS_KEY",
  "TLS_CA",
];

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
  live.add(child);
  child.once("exit", () => live.delete(child));
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

/** Polls `cond` until true; throws after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** GET on loopback; null when nothing answers (yet). */
export async function httpGet<T>(port: number, urlPath: string): Promise<{ status: number; body: T } | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.json()) as T };
  } catch {
    return null;
  }
}

/** The `relay: ...` lines a command printed on stderr (its JSON log lines left out). */
export function relayLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("{"));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
