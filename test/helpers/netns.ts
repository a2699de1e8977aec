// Linux network namespaces for end-to-end tests: namespaces, bridges and veth pairs that are all
// created inside namespaces (never in the host's root namespace), named with a per-run tag, and
// torn down again. Needs root and `ip` (iproute2).
//
// Tag format: `e2` + the creating process's pid in base 36 + two random base-36 characters; a
// marker file per run (see sweepStaleNamespaces) lets a later run delete what a dead run left.
// Every name stays within the kernel's 15-character limit for interfaces.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Prefix of every namespace, bridge and veth this helper creates. */
export const NETNS_PREFIX = "e2";
const TAG = /^e2[0-9a-z]{3,8}$/;
/** Marker files of live runs (tmpfs: gone after a reboot, like the namespaces themselves). */
const MARKER_DIR = "/run/relay-e2e";
const CMD_TIMEOUT_MS = 10_000;

/** Runs `ip ...args`; throws with stderr on failure. */
export function ip(args: readonly string[]): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", timeout: CMD_TIMEOUT_MS, stdio: "pipe" });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}`);
  }
}

/** Runs `ip ...args`, ignoring failure (for clean-up). */
function ipQuiet(args: readonly string[]): void {
  spawnSync("ip", args, { timeout: CMD_TIMEOUT_MS, stdio: "ignore" });
}

/**
 * Why network namespaces cannot be used here, or null when they can: not root, no `ip`, or the
 * kernel/container refuses `ip netns add`.
 */
export function netnsUnavailableReason(): string | null {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    return "network namespaces need root (run the e2e tests as root, as CI does)";
  }
  const probe = `${NETNS_PREFIX}${process.pid.toString(36)}zz-probe`;
  const r = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8", timeout: CMD_TIMEOUT_MS });
  if (r.error) return `\`ip\` (iproute2) cannot be run: ${r.error.message}`;
  if (r.status !== 0) return `\`ip netns add\` is not permitted here: ${(r.stderr ?? "").trim()}`;
  ipQuiet(["netns", "del", probe]);
  return null;
}

/** A fresh tag for one run (see the file comment). */
export function newRunTag(): string {
  const rand = (randomBytes(2).readUInt16BE(0) % 1296).toString(36).padStart(2, "0");
  return `${NETNS_PREFIX}${process.pid.toString(36)}${rand}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Names of every namespace on the machine. */
export function listNamespaces(): string[] {
  return ip(["netns", "list"])
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.length > 0);
}

/** Kills every process inside `ns` (SIGKILL) and deletes it, with its /etc/netns directory. */
export function destroyNamespace(ns: string): void {
  const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8", timeout: CMD_TIMEOUT_MS });
  for (const p of (pids.stdout ?? "").split("\n")) {
    const pid = Number(p.trim());
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  ipQuiet(["netns", "del", ns]);
  rmSync(path.join("/etc/netns", ns), { recursive: true, force: true });
}

/**
 * Deletes namespaces left behind by earlier runs that died: every run leaves a marker file
 * (`/run/relay-e2e/<tag>` holding its pid) while it lives; a marker whose pid is gone means that
 * run's namespaces are stale. Names without a marker are never touched. Returns what it deleted.
 */
export function sweepStaleNamespaces(): string[] {
  const gone: string[] = [];
  if (!existsSync(MARKER_DIR)) return gone;
  const names = new Set([
    ...listNamespaces(),
    ...(existsSync("/etc/netns") ? readdirSync("/etc/netns") : []),
  ]);
  for (const tag of readdirSync(MARKER_DIR)) {
    if (!TAG.test(tag)) continue;
    const pid = Number(readFileSync(path.join(MARKER_DIR, tag), "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && (pid === process.pid || pidAlive(pid))) continue;
    for (const ns of names) {
      if (!ns.startsWith(`${tag}-`)) continue;
      destroyNamespace(ns);
      gone.push(ns);
    }
    rmSync(path.join(MARKER_DIR, tag), { force: true });
  }
  return gone;
}

/** One network namespace of a run. */
export class Netns {
  constructor(readonly name: string) {}

  /** Runs `ip -n <ns> ...args`. */
  ip(args: readonly string[]): string {
    return ip(["-n", this.name, ...args]);
  }

  /** Runs a command inside the namespace to completion (bounded), returning its output. */
  exec(
    cmd: string,
    args: readonly string[],
    timeoutMs = CMD_TIMEOUT_MS,
  ): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync("ip", ["netns", "exec", this.name, cmd, ...args], {
      encoding: "utf8",
      timeout: timeoutMs,
    });
    return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /**
   * Sets a sysctl inside the namespace (e.g. `net.ipv4.ip_forward`, "1"). Written to /proc/sys
   * directly (per-namespace for net.*), so the `sysctl` binary (procps) is not needed.
   */
  sysctl(key: string, value: string): void {
    if (!/^[a-z0-9_.]+$/.test(key) || !/^[0-9]+$/.test(value)) throw new Error(`bad sysctl ${key}=${value}`);
    const file = `/proc/sys/${key.replaceAll(".", "/")}`;
    const r = this.exec("sh", ["-c", `echo ${value} > ${file}`]);
    if (r.code !== 0) throw new Error(`sysctl ${key}=${value} in ${this.name}: ${r.stderr.trim()}`);
  }

  /**
   * Starts a long-running process inside the namespace (`ip netns exec` execs it, so the child's
   * pid is the process itself). `env` is the complete environment: nothing of ours leaks in.
   */
  spawn(cmd: string, args: readonly string[], env: Record<string, string>, cwd?: string): ChildProcess {
    return spawn("ip", ["netns", "exec", this.name, cmd, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      ...(cwd ? { cwd } : {}),
    });
  }

  /**
   * The file `ip netns exec` bind-mounts over /etc/resolv.conf inside this namespace: processes
   * started through `exec`/`spawn` use `nameserver` for DNS.
   */
  setResolver(nameserver: string): void {
    const dir = path.join("/etc/netns", this.name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "resolv.conf"), `nameserver ${nameserver}\noptions timeout:1 attempts:2\n`);
  }
}

/**
 * Every namespace of one run. Creates them, wires them, and deletes all of them (and their
 * processes) in `destroy()`. Interface names are `<tag><suffix>`, at most 15 characters.
 */
export class NetnsRun {
  readonly tag: string;
  readonly #namespaces = new Map<string, Netns>();

  constructor(tag = newRunTag()) {
    if (!TAG.test(tag)) throw new Error(`bad run tag ${tag}`);
    this.tag = tag;
    mkdirSync(MARKER_DIR, { recursive: true });
    writeFileSync(path.join(MARKER_DIR, tag), `${process.pid}\n`);
  }

  get namespaces(): readonly Netns[] {
    return [...this.#namespaces.values()];
  }

  /** A new namespace `<tag>-<short>` with its loopback up. */
  addNamespace(short: string): Netns {
    const name = `${this.tag}-${short}`;
    if (this.#namespaces.has(name)) throw new Error(`namespace ${name} exists already`);
    ip(["netns", "add", name]);
    const ns = new Netns(name);
    this.#namespaces.set(name, ns);
    ns.ip(["link", "set", "lo", "up"]);
    return ns;
  }

  /** An interface name for this run (throws past the kernel's limit of 15 characters). */
  ifname(suffix: string): string {
    const n = `${this.tag}${suffix}`;
    if (n.length > 15) throw new Error(`interface name ${n} is longer than 15 characters`);
    return n;
  }

  /** A bridge inside `ns`, up, optionally with an address (`a.b.c.d/len`). Returns its name. */
  addBridge(ns: Netns, suffix: string, address?: string): string {
    const br = this.ifname(suffix);
    ns.ip(["link", "add", br, "type", "bridge"]);
    if (address) ns.ip(["addr", "add", address, "dev", br]);
    ns.ip(["link", "set", br, "up"]);
    return br;
  }

  /**
   * Plugs `ns` into `bridge` (which lives in `fabric`) with a veth pair created inside the fabric
   * namespace: the `ns` end gets `address` (`a.b.c.d/len`) and is named `<tag><suffix>`.
   */
  attach(ns: Netns, fabric: Netns, bridge: string, suffix: string, address: string): string {
    const inner = this.ifname(suffix);
    const outer = this.ifname(`${suffix}b`);
    fabric.ip(["link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns.name]);
    fabric.ip(["link", "set", outer, "master", bridge]);
    fabric.ip(["link", "set", outer, "up"]);
    ns.ip(["addr", "add", address, "dev", inner]);
    ns.ip(["link", "set", inner, "up"]);
    return inner;
  }

  /** Deletes one namespace of this run (killing its processes). */
  remove(ns: Netns): void {
    destroyNamespace(ns.name);
    this.#namespaces.delete(ns.name);
  }

  /** Deletes every namespace of this run. Idempotent. */
  destroy(): void {
    for (const ns of [...this.#namespaces.values()].reverse()) destroyNamespace(ns.name);
    this.#namespaces.clear();
    // Anything with our tag that was created outside this object (should be nothing).
    for (const name of listNamespaces()) if (name.startsWith(`${this.tag}-`)) destroyNamespace(name);
    rmSync(path.join(MARKER_DIR, this.tag), { force: true });
  }

  /** True once every namespace of this run is gone. */
  isGone(): boolean {
    const ours = (n: string) => n.startsWith(`${this.tag}-`);
    const etc = existsSync("/etc/netns") ? readdirSync("/etc/netns") : [];
    return !listNamespaces().some(ours) && !etc.some(ours);
  }
}
