// What the tests that run the built `relay` CLI as child processes share: the build check, the
// contract's variables to keep out of a child's inherited environment, a last-resort kill of
// every child still running when the test file exits, and bounded polls of a condition or of a
// JSON endpoint on loopback.
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { RELAY_ENV } from "../../contract/relay-env.js";
import { RELAY_CLI, REPO_ROOT } from "./processes.js";

export { RELAY_CLI, REPO_ROOT };

export function requireBuild(): void {
  if (!existsSync(RELAY_CLI)) throw new Error(`${RELAY_CLI} not found: run \`npm run build\` first`);
}

/** Variables of the relay contract; a test removes them from the environment a child inherits. */
export const CONTRACT_VARS: readonly string[] = Object.values(RELAY_ENV);

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Kills `child` with SIGKILL if it is still running when the test process exits. */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/** GET on loopback, body parsed as JSON; null when nothing answers (yet). */
export async function getJson<T>(port: number, urlPath: string): Promise<{ status: number; body: T } | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.json()) as T };
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
