// kill -9 of a member running in its own process (tsx): the others install a view without it,
// also when the killed member was the coordinator.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, test } from "@jest/globals";
import { StaticDiscovery } from "../../runtime/cluster/discovery.js";
import type { CoordinatorChange } from "../../runtime/cluster/events.js";
import type { LocalCluster } from "../../runtime/cluster/local-cluster.js";
import { freePort, REPO_ROOT } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { member, nextEvent } from "./util.js";

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures/member.ts");
const live: LocalCluster[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(live.splice(0).map((c) => c.close()));
});

/** Starts the fixture in a child process; resolves once it printed READY (bounded). */
function startChild(
  name: string,
  port: number,
  hosts: string,
  onLine?: (line: string) => void,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, name, String(port), "chat", hosts], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not READY within 15 s`)), 15_000);
    let out = "";
    let partial = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop()!;
      for (const l of lines) onLine?.(l);
      if (out.includes("READY ")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? sig}) before READY: ${out}`));
    });
  });
}

const names = (c: LocalCluster) => c.members.map((m) => m.name);

/** nyc-1 and nyc-2 in this process, nyc-3 in a child; resolves once both see all three. */
async function twoMembersAndAChild(): Promise<{ a: LocalCluster; b: LocalCluster; child: ChildProcess }> {
  const ports = await Promise.all([freePort(), freePort(), freePort()]);
  const hosts = ports.map((p) => `127.0.0.1[${p}]`).join(",");
  const a = member("nyc-1", new StaticDiscovery(hosts), { bindPort: ports[0]! });
  const b = member("nyc-2", new StaticDiscovery(hosts), { bindPort: ports[1]! });
  live.push(a, b);
  await a.start();
  await b.start();
  const child = await startChild("nyc-3", ports[2]!, hosts);
  await waitFor("3 members with the child", () => names(a).length === 3 && names(b).length === 3, {
    timeoutMs: 8000,
  });
  return { a, b, child };
}

describe("LocalCluster crash detection", () => {
  test("5 processes started at once converge to one view", async () => {
    const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    const hosts = ports.map((p) => `127.0.0.1[${p}]`).join(",");
    const last = new Map<string, string>();
    await Promise.all(
      ports.map((p, i) =>
        startChild(`nyc-${i + 1}`, p, hosts, (l) => l.startsWith("VIEW ") && last.set(`nyc-${i + 1}`, l)),
      ),
    );
    await waitFor(
      "the same view of 5 in all 5 processes",
      () =>
        last.size === 5 &&
        new Set(last.values()).size === 1 &&
        [...last.values()][0]!.split(" ")[3]!.split(",").length === 5,
      { timeoutMs: 15_000 },
    );
  });

  test("kill -9 of a member: view without it", async () => {
    const { a, b, child } = await twoMembersAndAChild();
    child.kill("SIGKILL");
    await waitFor(
      "view without nyc-3",
      () => names(a).join() === "nyc-1,nyc-2" && names(b).join() === "nyc-1,nyc-2",
      { timeoutMs: 8000 },
    );
    expect(a.view!.id).toEqual(b.view!.id);
  });

  test("kill -9 of the coordinator: the next oldest takes over", async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const hosts = ports.map((p) => `127.0.0.1[${p}]`).join(",");
    const child = await startChild("nyc-1", ports[0]!, hosts);
    const b = member("nyc-2", new StaticDiscovery(hosts), { bindPort: ports[1]! });
    const c = member("nyc-3", new StaticDiscovery(hosts), { bindPort: ports[2]! });
    live.push(b, c);
    await b.start();
    await c.start();
    await waitFor("3 members", () => names(b).join() === "nyc-1,nyc-2,nyc-3" && names(c).length === 3, {
      timeoutMs: 8000,
    });
    const changed = nextEvent<CoordinatorChange>(b, "coordinator-changed");
    child.kill("SIGKILL");
    const ev = await changed;
    expect(ev.isCoordinator).toBe(true);
    expect(ev.previous?.name).toBe("nyc-1");
    await waitFor("nyc-3 sees the new view", () => names(c).join() === "nyc-2,nyc-3", { timeoutMs: 8000 });
    expect(b.view!.id).toEqual(c.view!.id);
  });

  test("a frozen member (SIGSTOP, connections open) is removed by heartbeat timeout and merges back after SIGCONT", async () => {
    const { a, b, child } = await twoMembersAndAChild();
    child.kill("SIGSTOP");
    try {
      await waitFor(
        "view without nyc-3",
        () => names(a).join() === "nyc-1,nyc-2" && names(b).join() === "nyc-1,nyc-2",
        { timeoutMs: 8000 },
      );
      expect(a.stats().suspects).toBe(0);
    } finally {
      child.kill("SIGCONT");
    }
    // Excluded while frozen, it carries on alone, then discovery merges it back.
    await waitFor(
      "nyc-3 merged back",
      () => names(a).join() === "nyc-1,nyc-2,nyc-3" && names(b).length === 3,
      { timeoutMs: 8000 },
    );
    expect(a.view!.id).toEqual(b.view!.id);
  });
});
