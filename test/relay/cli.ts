// Helpers of the relay integration tests: the built CLI as child processes (`relay local`,
// `relay chat`, `relay node`), with every wait bounded and every child killed at the end.
import { type ChildProcess, spawn } from "node:child_process";
import { killOnExit, RELAY_CLI, REPO_ROOT } from "../helpers/relay-cli.js";

export { getJson, isAlive, RELAY_CLI, REPO_ROOT, requireBuild } from "../helpers/relay-cli.js";

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `relay ...args` to completion (SIGKILL after timeoutMs). */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 20_000,
  input?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RELAY_CLI, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "warn", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    killOnExit(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    if (input !== undefined) child.stdin.end(input);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

export interface LocalProc {
  readonly name: string;
  readonly site: string | null;
  readonly pid: number;
  readonly port: number;
  readonly httpPort: number;
}

export interface LocalRun {
  readonly child: ChildProcess;
  readonly procs: LocalProc[];
  readonly output: () => string;
  readonly routers: () => string;
  readonly members: (site: string) => string;
  /** Resolves with the exit code (null if killed by a signal) or rejects after timeoutMs. */
  readonly exited: (timeoutMs: number) => Promise<number | null>;
}

const LINE = /^(\S+)\s+(\S+)\s+pid (\d+)\s+port (\d+)\s+http (\d+)$/;

/** Starts `relay local --no-chat ...args` and resolves once it printed "ready". */
export function startLocal(args: string[], timeoutMs = 30_000): Promise<LocalRun> {
  const child = spawn(process.execPath, [RELAY_CLI, "local", "--no-chat", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  killOnExit(child);
  let out = "";
  let err = "";
  const procs: LocalProc[] = [];
  const run: LocalRun = {
    child,
    procs,
    output: () => out + err,
    routers: () =>
      procs
        .filter((p) => p.site === null)
        .map((p) => `127.0.0.1[${p.port}]`)
        .join(","),
    members: (site) =>
      procs
        .filter((p) => p.site === site)
        .map((p) => `127.0.0.1[${p.port}]`)
        .join(","),
    exited: (ms) =>
      new Promise((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        const t = setTimeout(() => reject(new Error(`relay local still running after ${ms} ms`)), ms);
        child.once("exit", (code) => {
          clearTimeout(t);
          resolve(code);
        });
      }),
  };
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error(`relay local not ready within ${timeoutMs} ms:\n${out}\n${err}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`relay local exited early (${code}):\n${out}\n${err}`));
    });
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      procs.length = 0;
      for (const line of out.split("\n")) {
        const m = LINE.exec(line.trim());
        if (m) {
          procs.push({
            name: m[1]!,
            site: m[2] === "-" ? null : m[2]!,
            pid: Number(m[3]),
            port: Number(m[4]),
            httpPort: Number(m[5]),
          });
        }
      }
      if (/^ready: /m.test(out)) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        killOnExit(child); // again: removeAllListeners also dropped its exit listener
        resolve(run);
      }
    });
  });
}

/** `<< response from X` lines of a chat's output. */
export function responders(stdout: string): string[] {
  return stdout
    .split("\n")
    .map((l) => /^<< response from (\S+)$/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined)
    .sort();
}
