// Helpers of the delivery tests: routers (the built `relay router`) and recording members
// (delivery-app.ts) as child processes on loopback, bounded waits, and the exactly-once FIFO check.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { waitFor } from "../helpers/wait.js";
import { RELAY_CLI, REPO_ROOT } from "./cli.js";
import type { AppConfig } from "./delivery-app.js";

const APP = path.join(REPO_ROOT, "test/relay/delivery-app.ts");
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class Router {
  child: ChildProcess | null = null;
  port = 0;

  /** Starts (or restarts, on the same port) a router; resolves once it listens. */
  async start(port = this.port): Promise<void> {
    const child = spawn(
      process.execPath,
      [RELAY_CLI, "router", "--port", String(port), "--bind", "127.0.0.1", "--http-port", "0"],
      { cwd: REPO_ROOT, env: { ...process.env, LOG_LEVEL: "info" }, stdio: ["ignore", "ignore", "pipe"] },
    );
    live.add(child);
    child.once("exit", () => live.delete(child));
    this.child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("router did not start within 10 s")), 10_000);
      createInterface({ input: child.stderr! }).on("line", (l) => {
        const m = /"port":(\d+).*"router listening"/.exec(l);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once("exit", () => reject(new Error("router exited while starting")));
    });
  }

  kill(): void {
    this.child?.kill("SIGKILL");
    this.child = null;
  }
}

export interface Received {
  readonly from: string;
  readonly n: number;
  readonly t: number;
}

export interface AppEvent {
  readonly type: string;
  readonly t: number;
  readonly [k: string]: unknown;
}

export class Member {
  readonly received: Received[] = [];
  readonly events: AppEvent[] = [];
  child: ChildProcess | null = null;
  #stderr = "";

  constructor(
    readonly site: string,
    readonly name: string,
    readonly config: AppConfig,
  ) {}

  /** `sites`: routes up; `known`: sites whose view was announced (the targets of "everyone"). */
  get state(): { members: string[]; sites: string[]; known: string[]; siteMaster: boolean } | undefined {
    const e = this.events.filter((x) => x.type === "state").at(-1);
    return e as unknown as
      | { members: string[]; sites: string[]; known: string[]; siteMaster: boolean }
      | undefined;
  }

  start(): void {
    const child = spawn(process.execPath, ["--import", "tsx", APP], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        LOG_LEVEL: process.env.DELIVERY_LOG_LEVEL ?? "warn",
        DELIVERY_APP: JSON.stringify(this.config),
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    live.add(child);
    child.once("exit", () => live.delete(child));
    this.child = child;
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-20_000);
    });
    createInterface({ input: child.stdout! }).on("line", (l) => {
      if (l.startsWith("R ")) {
        const [, from, n, t] = l.split(" ");
        this.received.push({ from: from!, n: Number(n), t: Number(t) });
      } else if (l.startsWith("J ")) {
        this.events.push(JSON.parse(l.slice(2)) as AppEvent);
      }
    });
  }

  command(text: string): void {
    this.child?.stdin?.write(`${text}\n`);
  }

  kill(): void {
    this.child?.kill("SIGKILL");
    this.child = null;
  }

  async quit(timeoutMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    this.command("quit");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  /** The last ~20 KB of its logs, for failure messages. */
  get logs(): string {
    return this.#stderr;
  }

  lastEvent(type: string): AppEvent | undefined {
    return this.events.filter((e) => e.type === type).at(-1);
  }
}

export interface WorldOptions {
  readonly sites: Readonly<Record<string, number>>;
  readonly routers?: number;
  readonly app?: Partial<AppConfig>;
  /** Members at the end of a site's list that are configured (in the static list) but not started. */
  readonly late?: Readonly<Record<string, number>>;
}

/** Routers plus the members of every site; members[site][0] is started first (the site master). */
export class World {
  readonly routers: Router[] = [];
  readonly members: Record<string, Member[]> = {};

  static async start(o: WorldOptions): Promise<World> {
    const w = new World();
    for (let i = 0; i < (o.routers ?? 2); i++) {
      const r = new Router();
      await r.start(0);
      w.routers.push(r);
    }
    const routers = w.routers.map((r) => ({ host: "127.0.0.1", port: r.port }));
    for (const [site, count] of Object.entries(o.sites)) {
      const ports: number[] = [];
      for (let i = 0; i < count; i++) ports.push(await freePort());
      const members = ports.map((p) => `127.0.0.1[${p}]`).join(",");
      w.members[site] = ports.map(
        (port, i) =>
          new Member(site, `${site}-${i + 1}`, {
            site,
            name: `${site}-${i + 1}`,
            port,
            members,
            routers,
            ...o.app,
          }),
      );
    }
    // The first member of each site first, so it is the coordinator (site master).
    for (const ms of Object.values(w.members)) ms[0]!.start();
    await waitFor("first members in a view", () => Object.values(w.members).every((ms) => ms[0]!.state), {
      timeoutMs: 15_000,
      intervalMs: 25,
    });
    const started = (site: string) => o.sites[site]! - (o.late?.[site] ?? 0);
    for (const [site, ms] of Object.entries(w.members)) for (const m of ms.slice(1, started(site))) m.start();
    const sites = Object.keys(o.sites);
    await waitFor(
      "every member sees its whole site and every other site",
      () =>
        w.alive().every((m) => {
          const s = m.state;
          return (
            s !== undefined &&
            s.members.length === started(m.site) &&
            sites.every((x) => x === m.site || (s.sites.includes(x) && s.known.includes(x)))
          );
        }),
      { timeoutMs: 20_000, intervalMs: 25 },
    );
    return w;
  }

  all(): Member[] {
    return Object.values(this.members).flat();
  }

  alive(): Member[] {
    return this.all().filter((m) => m.child !== null);
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((m) => m.quit(3000)));
    for (const r of this.routers) r.kill();
  }
}

/** Problems with `received` from `sender`: must be exactly 1..count, once each, in order. */
export function fifoProblems(received: readonly Received[], sender: string, count: number): string[] {
  const ns = received.filter((r) => r.from === sender).map((r) => r.n);
  const problems: string[] = [];
  const seen = new Set<number>();
  let prev = 0;
  for (const n of ns) {
    if (seen.has(n)) problems.push(`duplicate ${n}`);
    else if (n < prev) problems.push(`${n} after ${prev}`);
    seen.add(n);
    prev = Math.max(prev, n);
  }
  const missing: number[] = [];
  for (let i = 1; i <= count; i++) if (!seen.has(i)) missing.push(i);
  if (missing.length > 0)
    problems.push(
      `missing ${missing.length}: ${missing.slice(0, 10).join(",")}${missing.length > 10 ? "..." : ""}`,
    );
  return problems.slice(0, 12);
}

/** For a late joiner: one run k..count, each once, in order (k >= 1). */
export function tailProblems(received: readonly Received[], sender: string, count: number): string[] {
  const ns = received.filter((r) => r.from === sender).map((r) => r.n);
  if (ns.length === 0) return ["nothing received"];
  const first = ns[0]!;
  const problems: string[] = [];
  ns.forEach((n, i) => {
    if (n !== first + i) problems.push(`position ${i}: ${n} instead of ${first + i}`);
  });
  if (ns.at(-1) !== count) problems.push(`ends at ${ns.at(-1)}, not ${count}`);
  return problems.slice(0, 12);
}

/**
 * Failover gap: the longest silence (ms) in `sender`'s stream at `received` between the last
 * delivery before `at` and `windowMs` after it.
 */
export function gapAround(
  received: readonly Received[],
  sender: string,
  at: number,
  windowMs = 5000,
): number {
  const ts = received.filter((r) => r.from === sender).map((r) => r.t);
  let prev = ts.filter((t) => t <= at).at(-1);
  if (prev === undefined) return Number.NaN;
  let worst = 0;
  for (const t of ts) {
    if (t <= prev) continue;
    if (t > at + windowMs) break;
    worst = Math.max(worst, t - prev);
    prev = t;
  }
  return worst;
}
