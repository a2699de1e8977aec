// The README's first command, driven the way a person uses it: `npm start` (`relay local` from the
// build, which npm test has just made, so nothing is rebuilt) in a real terminal (tmux), typing
// `hello` and `topo`, then Ctrl-C.
import { execFileSync, spawnSync } from "node:child_process";
import { REPO_ROOT } from "../helpers/processes.js";
import { type WaitOptions, waitFor, waitForValue } from "../helpers/wait.js";

const haveTmux = spawnSync("tmux", ["-V"]).status === 0;
const socket = `ccr-quickstart-${process.pid}`;
const session = "npm-start";

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
}

function screen(): string {
  return tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session);
}

function sessionAlive(): boolean {
  return spawnSync("tmux", ["-L", socket, "has-session", "-t", session]).status === 0;
}

/** Polls the screen every 100 ms (each check runs tmux); a timeout shows the screen. */
const onScreen = (timeoutMs: number): WaitOptions => ({
  timeoutMs,
  intervalMs: 100,
  onTimeout: () => `screen:\n${screen()}`,
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const describeIfTmux = haveTmux ? describe : describe.skip;
if (!haveTmux) console.warn("quickstart test skipped: tmux is not installed (.ci/run installs it)");

describeIfTmux("npm start: the two-site topology and the chat prompt", () => {
  let pids: number[] = [];

  afterAll(() => {
    spawnSync("tmux", ["-L", socket, "kill-server"]);
    for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
  });

  test("hello gets the walkthrough's 10 lines, topo shows 2 sites and 9 members, Ctrl-C leaves no process", async () => {
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "60", "-c", REPO_ROOT, "npm start");
    await waitFor("the chat prompt", () => /joined site sfc as Temp/.test(screen()), onScreen(60_000));

    const started = screen();
    pids = [...started.matchAll(/\bpid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(10); // 2 routers + 5 nyc + 3 sfc, one line each

    tmux("send-keys", "-t", session, "hello", "Enter");
    const lines = await waitForValue(
      "10 chat lines",
      () => {
        const got = screen()
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l.startsWith("<< "));
        return got.length >= 10 ? got : undefined;
      },
      onScreen(15_000),
    );
    expect(lines[0]).toBe("<< hello from Temp");
    expect([...lines.slice(1)].sort()).toEqual(
      [
        "<< response from Temp",
        "<< response from sfc-1",
        "<< response from sfc-2",
        "<< response from sfc-3",
        "<< response from nyc-1:nyc",
        "<< response from nyc-2:nyc",
        "<< response from nyc-3:nyc",
        "<< response from nyc-4:nyc",
        "<< response from nyc-5:nyc",
      ].sort(),
    );

    tmux("send-keys", "-t", session, "topo", "Enter");
    const topo = await waitForValue(
      "the topo listing",
      () => {
        const text = screen();
        const after = text.slice(text.lastIndexOf("> topo"));
        const members = after.split("\n").filter((l) => /^\s+\S+ 127\.0\.0\.1:\d+/.test(l));
        return members.length >= 9 ? after : undefined;
      },
      onScreen(10_000),
    );
    const siteHeaders = topo.split("\n").filter((l) => /^(nyc|sfc)\s*$/.test(l.trim()) && !/^\s/.test(l));
    expect(siteHeaders.map((l) => l.trim()).sort()).toEqual(["nyc", "sfc"]);
    expect(topo.match(/\/\/ site master/g)).toHaveLength(2);
    expect(topo.match(/\(me\)/g)).toHaveLength(1);

    tmux("send-keys", "-t", session, "C-c");
    await waitFor("relay local to exit", () => !sessionAlive(), onScreen(15_000)).catch(() => {
      // The pane may outlive the program if tmux keeps it; what matters is the processes.
    });
    await waitFor("every process to stop", () => pids.every((p) => !alive(p)), onScreen(15_000));
  }, 120_000);
});
