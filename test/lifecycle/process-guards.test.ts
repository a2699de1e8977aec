// The process guards relay.ts installs before anything else (dist/runtime/cli/process-guards.js),
// each case in a small real Node process: which exit a stop signal gives in each phase, and what a
// broken stdout does.
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { waitFor } from "../helpers/wait.js";
import { DIST, exitOf, requireBuild, spawnNode } from "./util.js";

beforeAll(() => requireBuild());

const GUARDS = pathToFileURL(path.join(DIST, "runtime/cli/process-guards.js")).href;

/** Runs `body` (an ES module snippet) after the guards are installed; it prints "armed" when set. */
function script(body: string) {
  const code = `import { installProcessGuards, commandStarted } from ${JSON.stringify(GUARDS)};
installProcessGuards();
void commandStarted;
${body}
setInterval(() => {}, 1000);`;
  return spawnNode(["--input-type=module", "-e", code], {}, { script: "--no-warnings" });
}

async function armed(p: ReturnType<typeof script>): Promise<void> {
  await waitFor("the script to be armed", () => p.stderr().includes("armed"), { timeoutMs: 10_000 });
}

test("a stop signal before a command runs: exit 0", async () => {
  const p = script(`process.stderr.write("armed\\n");`);
  await armed(p);
  p.child.kill("SIGTERM");
  expect(await exitOf(p.child, 10_000)).toEqual({ code: 0, signal: null });
});

test.each([
  ["SIGTERM", 143],
  ["SIGINT", 130],
  ["SIGHUP", 129],
] as const)("%s to a running command without a stop of its own: exit %d", async (signal, code) => {
  const p = script(`commandStarted(); process.stderr.write("armed\\n");`);
  await armed(p);
  p.child.kill(signal);
  expect(await exitOf(p.child, 10_000)).toEqual({ code, signal: null });
});

test("a command with its own stop decides the exit; repeated signals do not cut it short", async () => {
  const p = script(`commandStarted();
process.once("SIGTERM", () => setTimeout(() => process.exit(7), 300));
process.stderr.write("armed\\n");`);
  await armed(p);
  p.child.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 50));
  p.child.kill("SIGTERM");
  p.child.kill("SIGINT");
  expect(await exitOf(p.child, 10_000)).toEqual({ code: 7, signal: null });
});

test("stdout whose reader is gone: no crash, and a command with a stop is asked to stop", async () => {
  const p = script(`commandStarted();
process.once("SIGTERM", () => { process.stderr.write("stopping\\n"); process.exit(5); });
process.stderr.write("armed\\n");
setInterval(() => process.stdout.write("line\\n"), 5);`);
  p.child.stdout!.destroy();
  await armed(p);
  expect(await exitOf(p.child, 10_000)).toEqual({ code: 5, signal: null });
  expect(p.stderr()).toContain("stopping");
  expect(p.stderr()).not.toContain("EPIPE");
});

test("stdout whose reader is gone, no stop of its own: the command finishes normally", async () => {
  const p = script(`commandStarted();
process.stderr.write("armed\\n");
let n = 0;
const t = setInterval(() => { process.stdout.write("line\\n"); if (++n === 100) { clearInterval(t); process.exit(0); } }, 2);`);
  p.child.stdout!.destroy();
  await armed(p);
  expect(await exitOf(p.child, 10_000)).toEqual({ code: 0, signal: null });
  expect(p.stderr()).not.toContain("EPIPE");
});

test("stderr whose reader is gone: writes are absorbed, the process lives on", async () => {
  const p = spawnNode(
    [
      "--input-type=module",
      "-e",
      `import { installProcessGuards } from ${JSON.stringify(GUARDS)};
installProcessGuards();
let n = 0;
const t = setInterval(() => { process.stderr.write("noise\\n"); if (++n === 100) { clearInterval(t); process.stdout.write("done\\n"); process.exit(0); } }, 2);`,
    ],
    {},
    { script: "--no-warnings" },
  );
  p.child.stderr!.destroy();
  expect(await exitOf(p.child, 10_000)).toEqual({ code: 0, signal: null });
  expect(p.stdout()).toBe("done\n");
});

test("relay dump (no stop of its own) interrupted while it waits for an answer: exit 130 on SIGINT", async () => {
  // A server that accepts and never answers: once it sees the connection, dump's action runs.
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => {
    sockets.push(s);
    s.on("data", () => {});
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  try {
    const port = (silent.address() as net.AddressInfo).port;
    const p = spawnNode(["dump", `127.0.0.1[${port}]`, "--timeout", "30000"]);
    await waitFor("dump connected", () => sockets.length > 0, { timeoutMs: 10_000 });
    p.child.kill("SIGINT");
    expect(await exitOf(p.child, 10_000)).toEqual({ code: 130, signal: null });
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});
