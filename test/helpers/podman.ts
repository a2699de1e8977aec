// Podman for the image test: builds and runs the project's Dockerfile on machines without a Docker
// engine and without a reachable container registry (see docs/IMAGE.md).
//
// - Storage lives in a fixed folder under the system temp area, so the stand-in base image and the
//   build's layers are reused by later runs (cold ~1-3 min, warm seconds).
// - The base image the Dockerfile names cannot be pulled here, so a stand-in is made once from
//   Debian packages (debootstrap) plus this machine's own node binary and npm, and tagged with
//   that exact name: the Dockerfile is built unchanged.
import { execFileSync, spawn } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from "node:fs";
import { appendFile, cp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The Debian packages the image test needs (also what CI installs). */
export const PODMAN_PACKAGES = ["podman", "buildah", "runc", "skopeo", "debootstrap"] as const;

/** The name of the base image in the Dockerfile, which the stand-in is tagged as. */
export const NODE_BASE_IMAGE = "docker.io/library/node:24-bookworm-slim";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CONTAINERS_CONF = join(REPO_ROOT, "containers/containers.conf");
const STATE_DIR = join(existsSync("/var/tmp") ? "/var/tmp" : tmpdir(), "ccr-podman");
// Run state belongs on a tmpfs that a reboot clears; stale run state confuses podman.
const RUN_DIR =
  existsSync("/run") && isWritable("/run") ? "/run/ccr-podman" : join(tmpdir(), "ccr-podman-run");
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const DEFAULT_MIRROR = "http://deb.debian.org/debian";

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this long. */
  readonly timeoutMs: number;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  readonly allowFailure?: boolean;
  /** Written to the command's standard input, or a stream piped into it. */
  readonly input?: string | NodeJS.ReadableStream;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

function isWritable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "")
    .split(delimiter)
    .some((dir) => dir !== "" && existsSync(join(dir, command)));
}

function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Runs a command with a hard time limit and bounded captured output. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < MAX_OUTPUT) stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${command}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if (code === 0 || options.allowFailure) return resolvePromise(result);
      const why = signal === "SIGKILL" ? `killed after ${options.timeoutMs} ms` : `exit ${code ?? signal}`;
      reject(
        new Error(`${command} ${args.join(" ")}: ${why}\n${stdout.slice(-4000)}\n${stderr.slice(-4000)}`),
      );
    });
    child.stdin.on("error", () => {}); // the command may exit without reading its input
    if (typeof options.input === "string") child.stdin.end(options.input);
    else if (options.input) options.input.pipe(child.stdin);
    else child.stdin.end();
  });
}

/**
 * Why the image test cannot run here, or undefined when it can: podman is installed, or it can be
 * installed because we are root on a Debian-like Linux.
 */
export function podmanSkipReason(): string | undefined {
  if (process.platform !== "linux") return `podman image test needs Linux (this is ${process.platform})`;
  const missing = PODMAN_PACKAGES.filter((p) => !onPath(p));
  if (!isRoot()) {
    if (missing.length > 0) {
      return `${missing.join(", ")} not installed and this user is not root, so the test cannot install them (apt-get install ${PODMAN_PACKAGES.join(" ")})`;
    }
    // Rootless podman needs subordinate uids and its own storage; this test uses rootful storage.
    return "the image test runs rootful podman (overlay storage under /var/tmp/ccr-podman) and needs root";
  }
  if (missing.length === 0) return undefined;
  if (!onPath("apt-get"))
    return `${missing.join(", ")} not installed and there is no apt-get to install them`;
  return undefined;
}

/** Installs the Debian packages when one is missing (needs root; podmanSkipReason says so first). */
export async function ensurePodmanInstalled(): Promise<void> {
  if (PODMAN_PACKAGES.every((p) => onPath(p))) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await runCommand("apt-get", ["update", "-qq"], { timeoutMs: 300_000, env });
  await runCommand("apt-get", ["-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", ...PODMAN_PACKAGES], {
    timeoutMs: 600_000,
    env,
  });
}

/** podman with this project's storage and configuration; every call is time-bounded. */
export class Podman {
  readonly #env: NodeJS.ProcessEnv;
  readonly #globalArgs: readonly string[];

  constructor() {
    this.#env = { ...process.env, CONTAINERS_CONF };
    this.#globalArgs = [
      "--root",
      join(STATE_DIR, "storage"),
      "--runroot",
      RUN_DIR,
      "--storage-driver",
      "overlay",
    ];
  }

  run(args: readonly string[], options: RunOptions): Promise<CommandResult> {
    return runCommand("podman", [...this.#globalArgs, ...args], { env: this.#env, ...options });
  }

  async imageExists(tag: string): Promise<boolean> {
    const r = await this.run(["image", "exists", tag], { timeoutMs: 30_000, allowFailure: true });
    return r.code === 0;
  }

  /** Builds `dockerfile` in `context` exactly as a user would, without pulling anything. */
  async build(context: string, tag: string, extraArgs: readonly string[] = []): Promise<CommandResult> {
    return this.run(
      ["build", "--pull=never", "--network", "host", "--format", "docker", "-t", tag, ...extraArgs, context],
      { timeoutMs: 15 * 60_000 },
    );
  }

  /**
   * Drops build-cache images unused for `hours`, so the fixed storage folder does not grow with
   * every lock-file change; recent layers stay and keep warm builds fast.
   */
  async pruneOldImages(hours: number): Promise<void> {
    await this.run(["image", "prune", "--force", "--filter", `until=${hours}h`], {
      timeoutMs: 5 * 60_000,
      allowFailure: true,
    });
  }

  /** Removes containers (ignoring ones already gone). */
  async removeContainers(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.run(["rm", "--force", "--ignore", "--time", "0", ...ids], {
      timeoutMs: 60_000,
      allowFailure: true,
    });
  }
}

/** The first Debian (not security) mirror of this machine's apt sources. */
function debianMirror(): string {
  const files = ["/etc/apt/sources.list"];
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) files.push(...readdirSync(dir).map((f) => join(dir, f)));
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+\/debian)\/?(?:\s|$)/.exec(line);
      if (m) return m[1]!;
    }
  }
  return DEFAULT_MIRROR;
}

/** Directory of the npm package that the `npm` on PATH runs. */
function hostNpmDir(): string {
  const npmCli = realpathSync(execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim());
  return resolve(dirname(npmCli), "..");
}

/**
 * Makes the stand-in for node:24-bookworm-slim once: Debian bookworm (minbase) + this machine's
 * node and npm in /usr/local, user `node` (1000:1000), like the official image.
 *
 * Only the stand-in carries this machine's CA bundle and NODE_EXTRA_CA_CERTS / npm cafile: outbound
 * TLS here goes through a proxy with its own CA, and the build stage's `npm ci` must trust it.
 * The project's Dockerfile carries nothing of the sort.
 */
export async function ensureNodeBaseImage(podman: Podman, tag: string = NODE_BASE_IMAGE): Promise<boolean> {
  if (await podman.imageExists(tag)) return false;
  mkdirSync(STATE_DIR, { recursive: true });
  // Two test runs at once (e.g. several checkouts on one machine) make the stand-in only once.
  const release = await lockDir(join(STATE_DIR, "base.lock"), 10 * 60_000);
  try {
    if (await podman.imageExists(tag)) return false;
    await makeNodeBaseImage(podman, tag);
    return true;
  } finally {
    await release();
  }
}

/** mkdir as a lock between processes; a lock older than `staleMs` is from a dead run and is taken. */
async function lockDir(path: string, staleMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + staleMs;
  for (;;) {
    try {
      mkdirSync(path);
      return () => rm(path, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const held = statSync(path, { throwIfNoEntry: false });
      if (held === undefined) continue; // released meanwhile
      if (Date.now() - held.mtimeMs > staleMs || Date.now() > deadline) {
        await rm(path, { recursive: true, force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function makeNodeBaseImage(podman: Podman, tag: string): Promise<void> {
  const rootfs = join(STATE_DIR, `rootfs-${process.pid}`);
  await rm(rootfs, { recursive: true, force: true });
  try {
    await runCommand("debootstrap", ["--variant=minbase", "bookworm", rootfs, debianMirror()], {
      timeoutMs: 10 * 60_000,
    });
    await cp(process.execPath, join(rootfs, "usr/local/bin/node"));
    await cp(hostNpmDir(), join(rootfs, "usr/local/lib/node_modules/npm"), { recursive: true });
    await symlink("../lib/node_modules/npm/bin/npm-cli.js", join(rootfs, "usr/local/bin/npm"));
    await symlink("../lib/node_modules/npm/bin/npx-cli.js", join(rootfs, "usr/local/bin/npx"));
    await appendFile(join(rootfs, "etc/passwd"), "node:x:1000:1000::/home/node:/bin/bash\n");
    await appendFile(join(rootfs, "etc/group"), "node:x:1000:\n");
    await mkdir(join(rootfs, "home/node"), { recursive: true });
    await runCommand("chown", ["1000:1000", join(rootfs, "home/node")], { timeoutMs: 10_000 });
    const changes = [
      "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      `ENV NODE_VERSION=${process.versions.node}`,
      'CMD ["node"]',
    ];
    if (existsSync(CA_BUNDLE)) {
      await mkdir(join(rootfs, "etc/ssl/certs"), { recursive: true });
      await cp(CA_BUNDLE, join(rootfs, CA_BUNDLE));
      changes.push(`ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`, `ENV npm_config_cafile=${CA_BUNDLE}`);
    }
    await writeFile(
      join(rootfs, "etc/ccr-stand-in"),
      `stand-in for ${tag}, made by test/helpers/podman.ts\n`,
    );
    await rm(join(rootfs, "var/cache/apt/archives"), { recursive: true, force: true });
    await mkdir(join(rootfs, "var/cache/apt/archives/partial"), { recursive: true });
    const tar = spawn("tar", ["-C", rootfs, "-c", "."], { stdio: ["ignore", "pipe", "inherit"] });
    await podman.run(["import", ...changes.flatMap((c) => ["--change", c]), "-", tag], {
      timeoutMs: 5 * 60_000,
      input: tar.stdout,
    });
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}
