// A real DNS server for end-to-end tests: dnsmasq (Debian) running inside a network namespace,
// answering A records from an addn-hosts file that the test rewrites (then SIGHUP) when a site
// scales, like the headless Service of a Kubernetes site.
import { type ChildProcess, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Netns } from "./netns.js";

const INSTALL_TIMEOUT_MS = 300_000;
const START_TIMEOUT_MS = 10_000;

function hasDnsmasq(): boolean {
  const r = spawnSync("sh", ["-c", "command -v dnsmasq || test -x /usr/sbin/dnsmasq"], { timeout: 5000 });
  return r.status === 0;
}

/**
 * Makes sure dnsmasq is installed: installs the Debian package `dnsmasq-base` when it is missing
 * and we are root. Returns null when it is there, else why it is not.
 */
export function ensureDnsmasq(): string | null {
  if (hasDnsmasq()) return null;
  if (process.getuid?.() !== 0) return "dnsmasq is not installed and we are not root to install it";
  const apt = (args: string[]) =>
    spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
      encoding: "utf8",
      timeout: INSTALL_TIMEOUT_MS,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  let r = apt(["install", "-y", "-qq", "dnsmasq-base"]);
  if (r.status !== 0) {
    apt(["update", "-qq"]);
    r = apt(["install", "-y", "-qq", "dnsmasq-base"]);
  }
  if (hasDnsmasq()) return null;
  return `dnsmasq could not be installed (apt-get install dnsmasq-base: ${(r.stderr ?? r.error?.message ?? "").trim().slice(-300)})`;
}

/** One dnsmasq process serving a set of names. */
export class DnsServer {
  readonly #ns: Netns;
  readonly #hostsFile: string;
  readonly #records = new Map<string, string[]>();
  #child: ChildProcess | null = null;
  readonly #log: string[] = [];

  /** `listen` is an address of `ns`; `dir` holds the hosts file. */
  constructor(
    ns: Netns,
    readonly listen: string,
    dir: string,
  ) {
    this.#ns = ns;
    this.#hostsFile = path.join(dir, `hosts-${ns.name}`);
  }

  /** Starts dnsmasq in the foreground (no system config, no upstream, TTL 0) and waits until it answers. */
  async start(): Promise<void> {
    this.#write();
    const child = this.#ns.spawn(
      "dnsmasq",
      [
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        `--addn-hosts=${this.#hostsFile}`,
        `--listen-address=${this.listen}`,
        "--bind-interfaces",
        "--local-ttl=0",
        "--user=root",
        "--pid-file=",
        "--log-facility=-",
      ],
      { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
    );
    this.#child = child;
    child.stdout!.setEncoding("utf8").on("data", (d: string) => this.#log.push(d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => this.#log.push(d));
    const deadline = Date.now() + START_TIMEOUT_MS;
    // dnsmasq logs "started" once it listens; poll for it (bounded).
    while (!this.#log.join("").includes("started")) {
      if (child.exitCode !== null) throw new Error(`dnsmasq exited early: ${this.#log.join("")}`);
      if (Date.now() > deadline) throw new Error(`dnsmasq did not start in time: ${this.#log.join("")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Replaces the A records of `name` and tells dnsmasq to re-read them. */
  setRecords(name: string, addresses: readonly string[]): void {
    this.#records.set(name, [...addresses]);
    this.#write();
    this.#child?.kill("SIGHUP");
  }

  records(name: string): readonly string[] {
    return this.#records.get(name) ?? [];
  }

  get output(): string {
    return this.#log.join("");
  }

  #write(): void {
    const lines: string[] = [];
    for (const [name, ips] of this.#records) for (const a of ips) lines.push(`${a} ${name}`);
    writeFileSync(this.#hostsFile, `${lines.join("\n")}\n`, { mode: 0o644 });
  }

  /** SIGTERM, then SIGKILL after 2 s; resolves once it is gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(t);
  }
}
