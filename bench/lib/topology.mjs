// Shared start/stop code of the bench scripts: routers (`relay router` from dist/) and bench members
// (bench/lib/member.mjs, a RelayChannel per process) on loopback, plus the small helpers every
// script needs (percentiles, RSS, CPU time, router metrics, machine description).
// Every wait is bounded; every child is tracked and stopped by stopAll(); members also exit when
// this process dies (IPC disconnect), routers get SIGKILL from the exit handler.
import { fork, spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DIST = process.env.BENCH_DIST ?? path.join(ROOT, "dist");
export const CLI = path.join(DIST, "runtime/cli/relay.js");
const MEMBER_JS = path.join(path.dirname(fileURLToPath(import.meta.url)), "member.mjs");
/**
 * Extra node flags of every member process, e.g. BENCH_MEMBER_NODE_ARGS="--cpu-prof
 * --cpu-prof-dir=/tmp/prof" (node refuses --cpu-prof in NODE_OPTIONS). A profile is written when a
 * member exits on SIGTERM, i.e. at the end of the run.
 */
const MEMBER_NODE_ARGS = (process.env.BENCH_MEMBER_NODE_ARGS ?? "").split(" ").filter(Boolean);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 20 ms until it is true; throws `timeout: <what>` after `ms`. */
export async function waitUntil(what, cond, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await sleep(20);
  }
}
/** CLOCK_MONOTONIC in ms: comparable with the members' timestamps (same machine). */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

export function pct(xs, p) {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
export const median = (xs) => pct(xs, 50);

export function requireBuild() {
  if (!existsSync(CLI)) {
    console.error(`bench: ${CLI} not found: run \`npm run build\` first`);
    process.exit(2);
  }
}

/** VmRSS of a process in KiB (NaN when it is gone). */
export function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (user + system) used so far by a process, from /proc (Linux); null elsewhere. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return null;
  }
}

export function machine() {
  const cpus = os.cpus();
  return {
    nproc: cpus.length,
    cpu: cpus[0]?.model ?? "?",
    node: process.version,
    loadavg: os.loadavg().map((x) => x.toFixed(2)),
    commit: gitHead(),
  };
}

function gitHead() {
  // git itself: it also knows worktrees (where .git is a file) and packed refs.
  const r = spawnSync("git", ["rev-parse", "--short=7", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "?";
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Parses a Prometheus text page into name{labels} -> value. */
export async function scrape(httpPort) {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(2000) });
  const out = new Map();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const children = new Set();
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/**
 * A running router process. `start()` again starts it on the same ports (after a kill). Its log
 * goes to `<logDir>/<name>.log`, or nowhere without a logDir; `nodeArgs` go to node (--cpu-prof).
 */
export class Router {
  name;
  port = 0;
  httpPort = 0;
  child = null;
  #logDir;
  #nodeArgs;

  #cli;
  #args;

  /** `cli`: another build's relay.js (e.g. an older commit); `args`: more `relay router` flags. */
  constructor(name, logDir = null, { nodeArgs = [], cli = CLI, args = [] } = {}) {
    this.name = name;
    this.#logDir = logDir;
    this.#nodeArgs = nodeArgs;
    this.#cli = cli;
    this.#args = args;
  }

  get pid() {
    return this.child?.pid;
  }

  get alive() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start() {
    const child = spawn(
      process.execPath,
      [
        ...this.#nodeArgs,
        this.#cli,
        "router",
        "--port",
        String(this.port),
        "--http-port",
        String(this.httpPort),
        "--bind",
        "127.0.0.1",
        ...this.#args,
      ],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } },
    );
    children.add(child);
    child.once("exit", () => children.delete(child));
    this.child = child;
    const logFile = this.#logDir
      ? createWriteStream(path.join(this.#logDir, `${this.name}.log`), { flags: "a" })
      : null;
    const ports = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start within 15 s`)), 15_000);
      let buf = "";
      const onData = (d) => {
        buf += d;
        let nl = buf.indexOf("\n");
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          nl = buf.indexOf("\n");
          try {
            const rec = JSON.parse(line);
            if (rec.msg === "router listening") {
              clearTimeout(timer);
              resolve({ port: rec.port, httpPort: rec.httpPort });
            }
          } catch {}
        }
      };
      child.stderr.setEncoding("utf8").on("data", onData);
      if (logFile) child.stderr.pipe(logFile);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited early (${code})`));
      });
    });
    this.port = ports.port;
    this.httpPort = ports.httpPort;
    return this;
  }

  kill(signal = "SIGKILL") {
    this.child?.kill(signal);
    return waitExit(this.child);
  }

  /** Open client connections (from /metrics). */
  async connections() {
    const m = await scrape(this.httpPort);
    return m.get("relay_router_connections") ?? Number.NaN;
  }
}

function waitExit(child, timeoutMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A bench member process (bench/lib/member.mjs) with request/response over IPC. */
export class Member {
  name;
  site;
  port;
  child = null;
  #rid = 0;
  #pending = new Map();
  /** Called with every progress message ({id, count, next}). */
  onProgress = null;

  constructor(name, site, port) {
    this.name = name;
    this.site = site;
    this.port = port;
  }

  get pid() {
    return this.child?.pid;
  }

  get alive() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process; resolves once its channel is connected (in a view). */
  start(config) {
    const child = fork(MEMBER_JS, [], {
      execArgv: [...process.execArgv, ...MEMBER_NODE_ARGS],
      env: {
        ...process.env,
        BENCH_MEMBER: JSON.stringify({
          dist: DIST,
          ...config,
          name: this.name,
          site: this.site,
          port: this.port,
        }),
      },
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    children.add(child);
    this.child = child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} not connected within 30 s`)), 30_000);
      child.on("message", (m) => {
        if (m.type === "up") {
          clearTimeout(timer);
          resolve(this);
        } else if (m.type === "progress") this.onProgress?.(this, m);
        else if (m.type === "reply") {
          const p = this.#pending.get(m.rid);
          this.#pending.delete(m.rid);
          p?.resolve(m);
        }
      });
      child.once("exit", (code, signal) => {
        children.delete(child);
        clearTimeout(timer);
        for (const p of this.#pending.values())
          p.reject(new Error(`${this.name} exited (${code ?? signal})`));
        this.#pending.clear();
        reject(new Error(`${this.name} exited (${code ?? signal})`));
      });
    });
  }

  request(type, body = {}, timeoutMs = 30_000) {
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running`));
    const rid = ++this.#rid;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(new Error(`${this.name}: no answer to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(rid, {
        resolve: (m) => {
          clearTimeout(timer);
          if (m.error) reject(new Error(`${this.name}: ${m.error}`));
          else resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ type, rid, ...body });
    });
  }

  /** Fire and forget (credits). */
  tell(type, body) {
    if (this.alive && this.child.connected) this.child.send({ type, ...body });
  }

  kill(signal = "SIGKILL") {
    this.child?.kill(signal);
    return waitExit(this.child);
  }
}

/**
 * Two (or more) sites of bench members sharing routers. `cluster` and `bridgeGroup` keep several
 * topologies on the same routers apart (e.g. reliable and bare side by side).
 */
export class BenchTopology {
  members = [];
  #seq = new Map();
  #ports = new Map();
  #o;

  /** @param o {{sites: {site: string, members: number}[], routers: Router[], cluster: string,
   *   bridgeGroup: string, reliable: boolean, logDir: string, record?: boolean,
   *   endpoints?: Record<string, {host: string, port: number}[]>,
   *   kv?: {map: string, options?: object}}}
   *   record: keep every arrival time and latency (percentiles, gaps); false for long runs.
   *   endpoints: per site, the router endpoints its members dial instead of the routers' own
   *   (e.g. delay proxies in front of them, bench/wan.mjs); a site not listed gets the routers.
   *   kv: every member hosts this replicated map and is up once it is ready (bench/kv.mjs). */
  constructor(o) {
    this.#o = o;
  }

  get reliable() {
    return this.#o.reliable;
  }

  alive(site) {
    return this.members.filter((m) => m.alive && (site === undefined || m.site === site));
  }

  async start() {
    for (const s of this.#o.sites) {
      const ports = [];
      for (let i = 0; i < s.members; i++) ports.push(await freePort());
      this.#ports.set(s.site, ports);
    }
    const starting = [];
    for (const s of this.#o.sites)
      for (const port of this.#ports.get(s.site)) starting.push(this.#add(s.site, port));
    await Promise.all(starting);
    await this.waitReady();
  }

  /** Starts one more member of `site` (a new name, a new port). */
  async addMember(site) {
    const port = await freePort();
    this.#ports.get(site).push(port);
    return this.#add(site, port);
  }

  #add(site, port) {
    const n = (this.#seq.get(site) ?? 0) + 1;
    this.#seq.set(site, n);
    const m = new Member(`${site}-${n}`, site, port);
    this.members.push(m);
    // Discovery: every port this site ever used (dead ones just do not answer).
    const members = this.#ports
      .get(site)
      .map((p) => `127.0.0.1[${p}]`)
      .join(",");
    return m.start({
      site,
      cluster: this.#o.cluster,
      members,
      routers: this.#o.endpoints?.[site] ?? this.#o.routers.map((r) => ({ host: "127.0.0.1", port: r.port })),
      bridgeGroup: this.#o.bridgeGroup,
      reliable: this.#o.reliable,
      record: this.#o.record ?? true,
      kv: this.#o.kv,
      logFile: path.join(this.#o.logDir, `${this.#o.cluster}-${m.name}.log`),
    });
  }

  /** Waits until every live member is ready, has its whole site in view and sees every site. */
  async waitReady(timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    const nSites = this.#o.sites.length;
    for (;;) {
      const live = this.alive();
      const st = await Promise.all(live.map((m) => m.request("status", {}, 5000).catch(() => null)));
      const bad = live.filter((m, i) => {
        const s = st[i];
        const want = live.filter((x) => x.site === m.site).length;
        return !s?.ready || s.view.length !== want || s.sites.length < nSites || s.routes.some((r) => !r.up);
      });
      if (bad.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `${this.#o.cluster}: not ready within ${timeoutMs} ms: ${bad.map((m) => m.name).join(", ")}`,
        );
      await sleep(100);
    }
  }

  /** The site master (coordinator) of a site, from a live member's view. */
  async siteMaster(site) {
    const any = this.alive(site)[0];
    const st = await any.request("status");
    return this.members.find((m) => m.name === st.view[0]);
  }

  /** The youngest member of a site (last in its view): never a site master while the site has 2+. */
  async youngest(site) {
    const any = this.alive(site)[0];
    const st = await any.request("status");
    return this.members.find((m) => m.name === st.view.at(-1));
  }

  async stop() {
    await Promise.all(this.members.filter((m) => m.alive).map((m) => m.kill("SIGTERM")));
  }
}

export function newLogDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Kills every child still running (routers included). */
export async function stopAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  const until = Date.now() + 8000;
  while ([...children].some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < until)
    await sleep(20);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}
