// `npx relay router` runs us under `sh -c` (npm exec), and a SIGTERM to npm kills the shell but not
// us: the router was left running as an orphan (issue 12). Started through npm (npm_command set),
// the CLI stops when it is re-parented. A shell stands in for npm's: it is killed with SIGKILL
// while the router runs under it.
import { spawn } from "node:child_process";
import { expect, jest, test } from "@jest/globals";
import { isAlive, killOnExit, RELAY_CLI } from "../helpers/relay-cli.js";
import { waitFor } from "../helpers/wait.js";
import { requireBuild } from "./util.js";

jest.setTimeout(60_000);
requireBuild();

/** `sh -c 'node relay router & echo $!; wait'`: resolves with the shell and the router's pid once it listens. */
async function routerUnderShell(
  env: Record<string, string>,
): Promise<{ shellPid: number; routerPid: number }> {
  const sh = spawn(
    "sh",
    [
      "-c",
      `"${process.execPath}" "${RELAY_CLI}" router --bind 127.0.0.1 --port 0 --http-port 0 & echo "pid $!"; wait`,
    ],
    {
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  killOnExit(sh);
  let out = "";
  sh.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  sh.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  await waitFor(
    "router listening under the shell",
    () => /pid \d+/.test(out) && out.includes("router listening"),
    {
      timeoutMs: 30_000,
    },
  );
  return { shellPid: sh.pid!, routerPid: Number(/pid (\d+)/.exec(out)![1]) };
}

test("started by npm: the router stops once its parent shell is gone", async () => {
  const { shellPid, routerPid } = await routerUnderShell({ npm_command: "exec" });
  process.kill(shellPid, "SIGKILL");
  await waitFor("the orphaned router exits", () => !isAlive(routerPid), { timeoutMs: 20_000 });
});

test("not started by npm: re-parenting is not a reason to stop (nohup relay router &)", async () => {
  const { shellPid, routerPid } = await routerUnderShell({});
  try {
    process.kill(shellPid, "SIGKILL");
    // Three times the parent-check period of a process started by npm: it would have stopped by now.
    await new Promise((r) => setTimeout(r, 3_500));
    expect(isAlive(routerPid)).toBe(true);
  } finally {
    if (isAlive(routerPid)) process.kill(routerPid, "SIGKILL");
  }
});
