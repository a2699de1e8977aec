// `relay local`: the walkthrough's topology on loopback, as separate processes. Starts the routers
// (unless given), every site's nodes, waits until every member is joined and every site sees the
// others, and stops all of it (no orphans: children are tracked, and each one also stops by itself
// when this process dies, through the exit-with-parent preload). Routers it starts run in token
// mode (docs/ROUTER.md): one random token per site in <logDir>/tokens, given to each node through
// ROUTER_TOKEN_FILE, so the local default is not an open door either.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ConfigError } from "../../contract/errors.js";
import { formatInitialHosts, type RouterEndpoint } from "../../contract/initial-hosts.js";
import { RELAY_ENV } from "../../contract/relay-env.js";
import { EXIT_WITH_PARENT_ENV } from "./exit-with-parent.js";

export interface SiteSpec {
  readonly site: string;
  readonly members: number;
}

export interface LocalTopologyOptions {
  readonly sites: readonly SiteSpec[];
  /** Routers to start (ignored when `routers` is given). */
  readonly routerCount: number;
  /** Existing routers to use instead of starting our own. */
  readonly routers?: readonly RouterEndpoint[];
  /** Where the children's logs go. @default a new directory under the OS temp dir */
  readonly logDir?: string;
  /** Cluster name. @default "relay" */
  readonly cluster?: string;
  /** Prints one line (process list, progress). */
  readonly print: (line: string) => void;
  /** How long to wait for every member to be ready. @default 60 s */
  readonly readyTimeoutMs?: number;
  /** KV_MAPS of every node (comma-separated map names); each node's kv API gets a free port. */
  readonly kvMaps?: string;
}

export interface LocalProcess {
  readonly name: string;
  readonly site: string | null;
  readonly kind: "router" | "node" | "chat";
  readonly child: ChildProcess;
  readonly port: number;
  readonly httpPort: number;
  /** The node's kv API port (nodes with kvMaps only). */
  readonly kvPort?: number;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The CLI entry and the preload, next to this module (sources or dist alike). */
const RELAY_JS = path.join(HERE, "relay.js");
const PRELOAD = pathToFileURL(path.join(HERE, "exit-with-parent.js")).href;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 8_000;

/** Parses `nyc=5,sfc=3`. */
export function parseSites(text: string): SiteSpec[] {
  const out: SiteSpec[] = [];
  for (const part of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)=(\d{1,3})$/.exec(part);
    if (!m) throw new ConfigError(`--sites: "${part}" is not site=count (e.g. nyc=5,sfc=3)`);
    const members = Number(m[3]);
    if (members < 1 || members > 50)
      throw new ConfigError(`--sites: ${m[1]} needs 1..50 members, got ${members}`);
    if (out.some((s) => s.site === m[1])) throw new ConfigError(`--sites: ${m[1]} is listed twice`);
    out.push({ site: m[1]!, members });
  }
  if (out.length === 0) throw new ConfigError("--sites: no site given (e.g. nyc=5,sfc=3)");
  return out;
}

function freePort(taken: Set<number>): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => {
        if (taken.has(port)) {
          freePort(taken).then(resolve, reject);
          return;
        }
        taken.add(port);
        resolve(port);
      });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How often waitReady says what it is still waiting for. */
const PROGRESS_MS = 5_000;

/** What a node still lacks to be ready, in a few words, or null when it is ready. */
function pendingReason(
  st: { ready: boolean; viewSize: number; sites: number } | null,
  siteMembers: number,
  sites: number,
): string | null {
  if (st === null) return "no answer on /status yet";
  if (st.viewSize !== siteMembers) return `${st.viewSize} of ${siteMembers} members in its view`;
  if (st.sites < sites) return `sees ${st.sites} of ${sites} sites: no route through the routers yet`;
  if (!st.ready) return "not ready";
  return null;
}

export class LocalTopology {
  readonly #o: LocalTopologyOptions;
  readonly logDir: string;
  readonly processes: LocalProcess[] = [];
  #routers: RouterEndpoint[] = [];
  readonly #sitePorts = new Map<string, number[]>();
  #stopping: Promise<void> | null = null;
  /** Directory of the per-site router tokens, when we start the routers. */
  #tokens: string | null = null;

  constructor(options: LocalTopologyOptions) {
    this.#o = options;
    this.logDir = options.logDir ?? mkdtempSync(path.join(os.tmpdir(), "relay-local-"));
    mkdirSync(this.logDir, { recursive: true }); // --log-dir may name a directory that does not exist yet
  }

  get routers(): readonly RouterEndpoint[] {
    return this.#routers;
  }

  /** `host[port],...` of a site's members. */
  membersOf(site: string): string {
    return formatInitialHosts((this.#sitePorts.get(site) ?? []).map((port) => ({ host: "127.0.0.1", port })));
  }

  async start(): Promise<void> {
    const taken = new Set<number>();
    if (this.#o.routers && this.#o.routers.length > 0) {
      this.#routers = [...this.#o.routers];
      this.#o.print(`routers: ${formatInitialHosts(this.#routers)} (existing)`);
    } else {
      this.#tokens = this.#writeTokens();
      for (let i = 1; i <= this.#o.routerCount; i++) {
        const p = await this.#startRouter(`router-${i}`);
        this.#routers.push({ host: "127.0.0.1", port: p.port });
      }
    }
    const starting: Promise<unknown>[] = [];
    for (const s of this.#o.sites) {
      const ports: number[] = [];
      for (let i = 0; i < s.members; i++) ports.push(await freePort(taken));
      this.#sitePorts.set(s.site, ports);
    }
    for (const s of this.#o.sites) {
      const ports = this.#sitePorts.get(s.site)!;
      for (let i = 0; i < s.members; i++) {
        const kvPort = this.#o.kvMaps ? await freePort(taken) : undefined;
        starting.push(
          this.#startNode(s.site, `${s.site}-${i + 1}`, ports[i]!, await freePort(taken), kvPort),
        );
      }
    }
    await Promise.all(starting);
  }

  /**
   * Waits until every node is ready, has its whole site in its view and sees every site. Says
   * what is still pending every PROGRESS_MS, and gives up after `readyTimeoutMs` naming it.
   */
  async waitReady(): Promise<number> {
    const t0 = Date.now();
    const deadline = t0 + (this.#o.readyTimeoutMs ?? 60_000);
    const nodes = this.processes.filter((p) => p.kind === "node");
    const want = new Map(this.#o.sites.map((s) => [s.site, s.members]));
    let nextProgress = t0 + PROGRESS_MS;
    for (;;) {
      const states = await Promise.all(nodes.map((n) => this.#nodeState(n)));
      const pending = nodes.flatMap((n, i) => {
        const why = pendingReason(states[i] ?? null, want.get(n.site!)!, want.size);
        return why ? [`${n.name} (${why})`] : [];
      });
      if (pending.length === 0) return Date.now() - t0;
      const now = Date.now();
      if (now > deadline) {
        throw new Error(
          `not ready within ${Math.round((now - t0) / 1000)} s: ${pending.join(", ")} (logs in ${this.logDir})`,
        );
      }
      if (now >= nextProgress) {
        nextProgress = now + PROGRESS_MS;
        this.#o.print(`waiting ${Math.round((now - t0) / 1000)} s: ${pending.join(", ")}`);
      }
      for (const p of this.processes) {
        if (p.child.exitCode !== null)
          throw new Error(`${p.name} exited with code ${p.child.exitCode} (log: ${this.#logPath(p.name)})`);
      }
      await sleep(100);
    }
  }

  /** Starts `relay chat` in a site, attached to this terminal; resolves with its exit code. */
  runChat(site: string, name: string, extra: readonly string[] = []): Promise<number> {
    const args = [
      RELAY_JS,
      "chat",
      "--site",
      site,
      "--name",
      name,
      "--cluster",
      this.#o.cluster ?? "relay",
      "--members",
      this.membersOf(site),
      "--routers",
      formatInitialHosts(this.#routers),
      "--wait-sites",
      String(this.#o.sites.length),
      ...extra,
    ];
    const child = spawn(process.execPath, args, {
      stdio: "inherit",
      env: { ...process.env, ...this.#tokenEnv(site) },
    });
    this.processes.push({ name, site, kind: "chat", child, port: 0, httpPort: 0 });
    return new Promise((resolve) =>
      child.once("exit", (code, signal) => resolve(code ?? (signal ? 130 : 1))),
    );
  }

  /** SIGTERM to every child, SIGKILL to those still there after a grace period. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const alive = () =>
        this.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
      // Nodes first (they leave their site and the bridge), routers last.
      for (const kind of ["chat", "node", "router"] as const) {
        const group = alive().filter((p) => p.kind === kind);
        for (const p of group) p.child.kill("SIGTERM");
        const until = Date.now() + STOP_TIMEOUT_MS;
        while (
          group.some((p) => p.child.exitCode === null && p.child.signalCode === null) &&
          Date.now() < until
        ) {
          await sleep(20);
        }
      }
      for (const p of alive()) p.child.kill("SIGKILL");
      const until = Date.now() + STOP_TIMEOUT_MS;
      while (alive().length > 0 && Date.now() < until) await sleep(20);
    })();
    return this.#stopping;
  }

  #logPath(name: string): string {
    return path.join(this.logDir, `${name}.log`);
  }

  /**
   * Output goes straight to a log file (not through this process), so a child never writes into a
   * broken pipe when this process is gone; stdin is a pipe from us (see exit-with-parent.ts).
   * Children log at least at info: their start lines ("router listening" with its ports) are how
   * we know they are up, and a LOG_LEVEL=warn in our environment silenced them (start timed out).
   */
  #spawn(name: string, args: string[], env: Record<string, string>): ChildProcess {
    const fd = openSync(this.#logPath(name), "a");
    const ours = process.env["LOG_LEVEL"];
    const level = ours === "debug" || ours === "trace" ? ours : "info";
    try {
      return spawn(process.execPath, ["--import", PRELOAD, RELAY_JS, ...args], {
        env: { ...process.env, ...env, LOG_LEVEL: level, [EXIT_WITH_PARENT_ENV]: "1" },
        stdio: ["pipe", fd, fd],
      });
    } finally {
      closeSync(fd);
    }
  }

  /** One random token per site, readable by us only. */
  #writeTokens(): string {
    const dir = path.join(this.logDir, "tokens");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const s of this.#o.sites) {
      writeFileSync(path.join(dir, s.site), randomBytes(24).toString("base64url"), { mode: 0o600 });
    }
    return dir;
  }

  /** ROUTER_TOKEN_FILE of a site's members (none with routers we did not start). */
  #tokenEnv(site: string): Record<string, string> {
    return this.#tokens ? { [RELAY_ENV.routerTokenFile]: path.join(this.#tokens, site) } : {};
  }

  async #startRouter(name: string): Promise<LocalProcess> {
    const auth = this.#tokens ? ["--auth-tokens", this.#tokens] : [];
    const child = this.#spawn(
      name,
      ["router", "--port", "0", "--http-port", "0", "--bind", "127.0.0.1", ...auth],
      {},
    );
    const ports = await waitForLogLine(
      child,
      this.#logPath(name),
      "router listening",
      START_TIMEOUT_MS,
      name,
    );
    const p: LocalProcess = {
      name,
      site: null,
      kind: "router",
      child,
      port: ports.port,
      httpPort: ports.httpPort,
    };
    this.processes.push(p);
    this.#o.print(
      `${name.padEnd(10)} ${"-".padEnd(5)} pid ${String(child.pid).padEnd(7)} port ${ports.port}  http ${ports.httpPort}`,
    );
    return p;
  }

  async #startNode(
    site: string,
    name: string,
    port: number,
    httpPort: number,
    kvPort?: number,
  ): Promise<LocalProcess> {
    const kv: Record<string, string> =
      kvPort !== undefined ? { KV_MAPS: this.#o.kvMaps!, KV_PORT: String(kvPort) } : {};
    const child = this.#spawn(name, ["node"], {
      SITE: site,
      CLUSTER: this.#o.cluster ?? "relay",
      STATIC_MEMBERS: this.membersOf(site),
      TUNNEL_INITIAL_HOSTS: formatInitialHosts(this.#routers),
      NODE_NAME: name,
      BIND_ADDR: "127.0.0.1",
      BIND_PORT: String(port),
      HTTP_PORT: String(httpPort),
      ...kv,
      ...this.#tokenEnv(site),
    });
    const p: LocalProcess = {
      name,
      site,
      kind: "node",
      child,
      port,
      httpPort,
      ...(kvPort ? { kvPort } : {}),
    };
    this.processes.push(p);
    this.#o.print(
      `${name.padEnd(10)} ${site.padEnd(5)} pid ${String(child.pid).padEnd(7)} port ${port}  http ${httpPort}${kvPort ? `  kv ${kvPort}` : ""}`,
    );
    return p;
  }

  async #nodeState(p: LocalProcess): Promise<{ ready: boolean; viewSize: number; sites: number } | null> {
    try {
      const res = await fetch(`http://127.0.0.1:${p.httpPort}/status`, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) return null;
      const s = (await res.json()) as {
        ready: boolean;
        view: { members: unknown[] } | null;
        sites: unknown[];
      };
      return { ready: s.ready, viewSize: s.view?.members.length ?? 0, sites: s.sites.length };
    } catch {
      return null;
    }
  }
}

/** Waits for a JSON log line with `msg` in the child's log file; returns its port fields. */
async function waitForLogLine(
  child: ChildProcess,
  file: string,
  msg: string,
  timeoutMs: number,
  name: string,
): Promise<{ port: number; httpPort: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line.includes(msg)) continue;
      try {
        const rec = JSON.parse(line) as { msg?: string; port?: number; httpPort?: number };
        if (rec.msg === msg && typeof rec.port === "number")
          return { port: rec.port, httpPort: rec.httpPort ?? 0 };
      } catch {
        // not JSON
      }
    }
    if (child.exitCode !== null)
      throw new Error(`${name} exited early (code ${child.exitCode}; log: ${file})`);
    if (Date.now() > deadline)
      throw new Error(`${name} did not log "${msg}" within ${timeoutMs} ms (log: ${file})`);
    await sleep(25);
  }
}
