// The two-cloud topology rebuilt in network namespaces (see docs/E2E.md for the picture):
//
// - site networks nyc 192.0.2.0/24 and sfc 198.51.100.0/24: one "fabric" namespace per site holds
//   the site's bridge and its DNS server (dnsmasq on .53); every pod is a namespace with a veth on
//   that bridge and a default route through the site's gateway (.1);
// - the public network 203.0.113.0/24 (a bridge in its own fabric namespace): router-1 at .1,
//   router-2 at .2, the nyc gateway at .11, the sfc gateway at .12;
// - a gateway forwards between its site and the public network only; routers do not forward; so
//   nyc and sfc reach both routers but not each other.
//
// Nodes and routers are real processes started with `ip netns exec`. The env of a pod is the one
// the RelaySite construct renders (contract/relay-env.ts), with the downward-API entries resolved
// the way kubelet would (metadata.name -> pod name, status.podIP -> pod IP).
import { type ChildProcess, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  type WriteStream,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { App, TerraformStack } from "cdktf";
import { GossipRouter } from "../../constructs/gossip-router.js";
import {
  CLUSTER_SECRET_PATH,
  KV_TLS_DIR,
  KV_TLS_FILES,
  KV_TOKEN_PATH,
  TLS_FILES,
} from "../../constructs/pod-parts.js";
import {
  kvApiCertProfile,
  ROUTER_TLS_SERVER_NAME,
  routerCertProfile,
  siteCertProfile,
} from "../../constructs/relay-pki.js";
import { kvServiceDnsNames, RelaySite } from "../../constructs/relay-site.js";
import { bridgePolicy } from "../../constructs/router-policy.js";
import { formatEndpoint } from "../../contract/initial-hosts.js";
import { POD_IP_FIELD, POD_NAME_FIELD, type RelayEnvVar } from "../../contract/relay-env.js";
import { type CertPair, issueShapedCert, makeShapedCa } from "../helpers/certs.js";
import { DnsServer, ensureDnsmasq } from "../helpers/dnsmasq.js";
import { type Netns, NetnsRun, netnsUnavailableReason, sweepStaleNamespaces } from "../helpers/netns.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const RELAY_CLI = path.join(REPO_ROOT, "dist/runtime/cli/relay.js");
export const MEMBER_APP = path.join(REPO_ROOT, "test/e2e/apps/member.ts");
export const ATTACKER_APP = path.join(REPO_ROOT, "test/e2e/apps/attacker.ts");

export type SiteName = "nyc" | "sfc";

interface SitePlan {
  readonly subnet: string; // first three octets
  readonly publicGw: string; // the gateway's address on the public network
  readonly short: string; // one letter for interface names
}

export const SITE_PLAN: Readonly<Record<SiteName, SitePlan>> = {
  nyc: { subnet: "192.0.2", publicGw: "203.0.113.11", short: "n" },
  sfc: { subnet: "198.51.100", publicGw: "203.0.113.12", short: "s" },
};
export const PUBLIC_SUBNET = "203.0.113";
export const ROUTER_ADDRS = ["203.0.113.1", "203.0.113.2"] as const;

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

// Last resort when a test file dies mid-way: no process of ours outlives it (the next run's sweep
// deletes the namespaces).
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Why the e2e suite cannot run here, or null. Checked once per test file. */
export function e2eUnavailableReason(): string | null {
  const netns = netnsUnavailableReason();
  if (netns) return netns;
  const dns = ensureDnsmasq();
  if (dns) return dns;
  if (spawnSync("test", ["-f", RELAY_CLI]).status !== 0) {
    return `${RELAY_CLI} not found: run \`npm run build\` first (npm test does)`;
  }
  return null;
}

/**
 * How the world is deployed: `cloud` is the cloud topology's default (mutual TLS on every router
 * link with certificates shaped like RelayPki's, `--allow-groups bridge=nyc,sfc`, TLS_SERVER_NAME,
 * a cluster secret per site), `plain` the local default (plain TCP, open routers, no secret).
 */
export type WorldMode = "cloud" | "plain";

/** Sites in router order: router-1 is nyc's, router-2 sfc's. */
export const ROUTER_SITES: readonly SiteName[] = ["nyc", "sfc"];

/** What the constructs render for both sites, from the real GossipRouter and RelaySite constructs. */
export interface RenderedDeployment {
  readonly mode: WorldMode;
  /** The container args of each router (index as ROUTER_ADDRS), paths as inside the container. */
  readonly routerArgs: readonly (readonly string[])[];
  readonly routerPort: number;
  readonly tunnelInitialHosts: string;
  readonly sites: Readonly<
    Record<SiteName, { readonly dnsQuery: string; readonly env: readonly RelayEnvVar[] }>
  >;
}

/** Secret names the constructs get; only their mount paths matter here (see World.#volumes). */
const secretName = (owner: string, what: string) => `${owner}-${what}`;

/** Replicated maps on every relay pod (the RelaySite construct's `kv` prop, as the topology's `kv:` switch passes it). */
export interface WorldKv {
  readonly maps: readonly string[];
}

export function renderDeployment(
  replicas: Readonly<Record<SiteName, number>>,
  mode: WorldMode = "cloud",
  kv?: WorldKv,
): RenderedDeployment {
  const stack = new TerraformStack(new App(), "e2e");
  const cloud = mode === "cloud";
  // The same props the router and site stacks pass (stacks/router-stack.ts, stacks/site-stack.ts).
  const routers = ROUTER_SITES.map(
    (site) =>
      new GossipRouter(stack, `${site}-router`, {
        site,
        image: "relay:e2e",
        ...(cloud
          ? {
              auth: { kind: "tls", secretName: secretName(`${site}-router`, "tls") },
              allowGroups: bridgePolicy(ROUTER_SITES),
            }
          : {}),
      }),
  );
  // The load balancers' addresses are what the cloud fills in; here they are the router namespaces.
  const tunnelInitialHosts = routers
    .map((r, i) => formatEndpoint({ host: ROUTER_ADDRS[i]!, port: r.port }))
    .join(",");
  const site = (name: SiteName) => {
    const s = new RelaySite(stack, `${name}-site`, {
      site: name,
      image: "relay:e2e",
      tunnelInitialHosts,
      replicas: replicas[name],
      ...(cloud
        ? {
            tlsSecretName: secretName(`${name}-relay`, "tls"),
            tlsServerName: ROUTER_TLS_SERVER_NAME,
            clusterSecretName: secretName(`${name}-relay`, "mesh"),
          }
        : {}),
      ...(kv
        ? {
            kv: {
              maps: kv.maps,
              tokenSecretName: secretName(`${name}-relay`, "kv-token"),
              // The cloud default (the pki stack): the API serves HTTPS with a certificate of its own.
              ...(cloud ? { tlsSecretName: secretName(`${name}-relay`, "kv-tls") } : {}),
            },
          }
        : {}),
    });
    return { dnsQuery: s.dnsQuery, env: s.env };
  };
  return {
    mode,
    routerArgs: routers.map((r) => r.args),
    routerPort: routers[0]!.port,
    tunnelInitialHosts,
    sites: { nyc: site("nyc"), sfc: site("sfc") },
  };
}

/** Where every Secret volume is mounted in the containers; the world keeps them under a directory per owner. */
export const CONTAINER_SECRETS_ROOT = "/etc/relay/";

/** Resolves the downward-API entries of a rendered env as kubelet does for one pod. */
export function podEnv(env: readonly RelayEnvVar[], podName: string, podIp: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    if ("value" in e) out[e.name] = e.value;
    else if (e.valueFrom.fieldPath === POD_NAME_FIELD) out[e.name] = podName;
    else if (e.valueFrom.fieldPath === POD_IP_FIELD) out[e.name] = podIp;
    else throw new Error(`unsupported downward-API field ${e.valueFrom.fieldPath} in ${e.name}`);
  }
  return out;
}

/** A process running inside a namespace, with its output kept (and written to a log file). */
export class PodProcess {
  readonly lines: string[] = [];
  readonly #log: WriteStream;
  readonly exited: Promise<void>;
  #pending = { out: "", err: "" };
  #waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    logFile: string,
  ) {
    this.#log = createWriteStream(logFile);
    const feed = (which: "out" | "err") => (d: string) => {
      this.#log.write(d);
      this.#pending[which] += d;
      let nl = this.#pending[which].indexOf("\n");
      while (nl >= 0) {
        this.lines.push(this.#pending[which].slice(0, nl));
        this.#pending[which] = this.#pending[which].slice(nl + 1);
        nl = this.#pending[which].indexOf("\n");
      }
      for (const w of this.#waiters) w();
    };
    child.stdout!.setEncoding("utf8").on("data", feed("out"));
    child.stderr!.setEncoding("utf8").on("data", feed("err"));
    this.exited = new Promise((resolve) => {
      child.once("exit", () => {
        this.#log.end();
        for (const w of this.#waiters) w();
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** JSON lines (pino logs on stderr, app reports on stdout) parsed; other lines skipped. */
  json(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      if (!l.startsWith("{")) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not JSON
      }
    }
    return out;
  }

  /** Resolves with the first line matching `pred` (seen or future); rejects on exit or timeout. */
  waitFor(pred: (line: string) => boolean, what: string, timeoutMs = START_TIMEOUT_MS): Promise<string> {
    return new Promise((resolve, reject) => {
      let seen = 0;
      const check = () => {
        for (; seen < this.lines.length; seen++) {
          const l = this.lines[seen]!;
          if (pred(l)) {
            done();
            resolve(l);
            return;
          }
        }
        if (!this.running) {
          done();
          reject(
            new Error(
              `${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}:\n${this.tail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  tail(n = 15): string {
    return this.lines.slice(-n).join("\n");
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  async kill9(): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once it is gone. */
  async stop(graceMs = STOP_TIMEOUT_MS): Promise<void> {
    if (!this.running) return this.exited;
    this.signal("SIGTERM");
    const t = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** A pod: its own namespace on its site's bridge, in the site's DNS record when `inService`. */
export interface Pod {
  readonly name: string;
  readonly site: SiteName;
  readonly ip: string;
  readonly ns: Netns;
  readonly inService: boolean;
}

interface SiteRuntime {
  readonly fabric: Netns;
  readonly bridge: string;
  readonly gateway: Netns;
  readonly dns: DnsServer;
  nextHost: number;
}

/** The whole world of one test file. */
export class World {
  readonly run = new NetnsRun();
  readonly logDir: string;
  readonly deployment: RenderedDeployment;
  readonly pods = new Map<string, Pod>();
  readonly routers: Netns[] = [];
  readonly #sites = new Map<SiteName, SiteRuntime>();
  readonly #procs = new Set<PodProcess>();

  readonly mode: WorldMode;
  readonly kv: WorldKv | undefined;

  constructor(
    replicas: Readonly<Record<SiteName, number>>,
    options: { readonly mode?: WorldMode; readonly kv?: WorldKv } = {},
  ) {
    this.mode = options.mode ?? "cloud";
    this.kv = options.kv;
    this.deployment = renderDeployment(replicas, this.mode, this.kv);
    this.logDir = mkdtempSync(path.join(os.tmpdir(), `relay-e2e-${this.run.tag}-`));
  }

  /** Builds the networks, gateways, router namespaces and DNS servers (no pods yet). */
  async build(): Promise<void> {
    sweepStaleNamespaces();
    if (this.mode === "cloud") await this.#writeSecretVolumes();
    if (this.kv) this.#writeKvTokens();
    const run = this.run;
    const pub = run.addNamespace("pub");
    const pubBr = run.addBridge(pub, "bp");
    for (const [site, plan] of Object.entries(SITE_PLAN) as [SiteName, SitePlan][]) {
      const fabric = run.addNamespace(`${site}-fab`);
      const bridge = run.addBridge(fabric, `b${plan.short}`, `${plan.subnet}.53/24`);
      const gw = run.addNamespace(`${site}-gw`);
      run.attach(gw, fabric, bridge, `g${plan.short}`, `${plan.subnet}.1/24`);
      run.attach(gw, pub, pubBr, `g${plan.short}p`, `${plan.publicGw}/24`);
      gw.sysctl("net.ipv4.ip_forward", "1");
      const dns = new DnsServer(fabric, `${plan.subnet}.53`, this.logDir);
      await dns.start();
      this.#sites.set(site, { fabric, bridge, gateway: gw, dns, nextHost: 10 });
    }
    ROUTER_ADDRS.forEach((addr, i) => {
      const ns = run.addNamespace(`r${i + 1}`);
      run.attach(ns, pub, pubBr, `r${i + 1}`, `${addr}/24`);
      for (const plan of Object.values(SITE_PLAN)) {
        ns.ip(["route", "add", `${plan.subnet}.0/24`, "via", plan.publicGw]);
      }
      this.routers.push(ns);
    });
  }

  site(site: SiteName): SiteRuntime {
    const s = this.#sites.get(site);
    if (!s) throw new Error(`site ${site} is not built`);
    return s;
  }

  /** The DNS_QUERY name of a site. */
  dnsQuery(site: SiteName): string {
    return this.deployment.sites[site].dnsQuery;
  }

  /** Creates a pod namespace on the site's network; `inService` adds it to the site's DNS record. */
  addPod(site: SiteName, name: string, inService = true): Pod {
    const s = this.site(site);
    const plan = SITE_PLAN[site];
    const host = s.nextHost++;
    if (host > 250) throw new Error(`site ${site}: out of pod addresses`);
    const ip = `${plan.subnet}.${host}`;
    const ns = this.run.addNamespace(name);
    this.run.attach(ns, s.fabric, s.bridge, `${plan.short}${host}`, `${ip}/24`);
    ns.ip(["route", "add", "default", "via", `${plan.subnet}.1`]);
    ns.setResolver(`${plan.subnet}.53`);
    const pod: Pod = { name, site, ip, ns, inService };
    this.pods.set(name, pod);
    if (inService) this.#publishDns(site);
    return pod;
  }

  /** Deletes a pod (its processes are killed) and its DNS record. */
  removePod(name: string): void {
    const pod = this.pods.get(name);
    if (!pod) return;
    this.pods.delete(name);
    this.run.remove(pod.ns);
    if (pod.inService) this.#publishDns(pod.site);
  }

  /** Takes a pod out of (or back into) its site's DNS record, as an endpoint going away would. */
  setInService(name: string, inService: boolean): void {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`no pod ${name}`);
    this.pods.set(name, { ...pod, inService });
    this.#publishDns(pod.site);
  }

  #publishDns(site: SiteName): void {
    const ips = [...this.pods.values()].filter((p) => p.site === site && p.inService).map((p) => p.ip);
    this.site(site).dns.setRecords(this.dnsQuery(site), ips);
  }

  /** The pod's env, exactly as its container would get it (Secret paths mapped to the host, see secretFile). */
  envOf(pod: Pod): Record<string, string> {
    const env = podEnv(this.deployment.sites[pod.site].env, pod.name, pod.ip);
    for (const [k, v] of Object.entries(env)) env[k] = this.secretFile(`${pod.site}-relay`, v);
    return env;
  }

  /**
   * Where the world keeps a file that the container sees under /etc/relay/ (a mounted Secret):
   * `<log dir>/volumes/<owner>/etc/relay/...`, one owner per Deployment (`nyc-router`,
   * `nyc-relay`), as every pod of a Deployment mounts the same Secrets. Other values pass through.
   */
  secretFile(owner: string, containerPath: string): string {
    if (!containerPath.startsWith(CONTAINER_SECRETS_ROOT)) return containerPath;
    return path.join(this.logDir, "volumes", owner, containerPath);
  }

  /** The TLS files of a site's relay pods (cloud mode), e.g. for an attacker holding a stolen copy. */
  siteTls(site: SiteName): { readonly cert: string; readonly key: string; readonly ca: string } {
    const owner = `${site}-relay`;
    return {
      cert: this.secretFile(owner, TLS_FILES.cert),
      key: this.secretFile(owner, TLS_FILES.key),
      ca: this.secretFile(owner, TLS_FILES.ca),
    };
  }

  /**
   * The Secrets of the cloud default, as the pki and site stacks would fill them: one CA, a server
   * certificate per router and a client certificate per site with RelayPki's subjects and SANs
   * (the construct's cert profiles), and a cluster secret per site (64 hex characters).
   */
  async #writeSecretVolumes(): Promise<void> {
    const pki = path.join(this.logDir, "pki");
    const ca = await makeShapedCa(pki, "ca", routerCertProfile("nyc").organization);
    /** A TLS Secret (tls.crt, tls.key, ca.crt) mounted in `owner`'s pods at `mount`'s paths. */
    const tlsVolume = (
      owner: string,
      pair: CertPair,
      mount: Record<"cert" | "key" | "ca", string> = TLS_FILES,
    ) => {
      const files = { cert: pair.cert, key: pair.key, ca: ca.cert } as const;
      for (const k of ["cert", "key", "ca"] as const) {
        const dest = this.secretFile(owner, mount[k]);
        mkdirSync(path.dirname(dest), { recursive: true });
        copyFileSync(files[k], dest);
      }
    };
    for (const site of ROUTER_SITES) {
      const [router, relay] = await Promise.all([
        issueShapedCert(pki, `${site}-router`, ca, routerCertProfile(site)),
        issueShapedCert(pki, `${site}-relay`, ca, siteCertProfile(site)),
      ]);
      tlsVolume(`${site}-router`, router);
      tlsVolume(`${site}-relay`, relay);
      if (this.kv) {
        // The kv API's certificate, as RelayPki.issueKvApiCert makes it for the Service's names.
        const kvCert = await issueShapedCert(
          pki,
          `${site}-relay-kv`,
          ca,
          kvApiCertProfile(site, kvServiceDnsNames(site, "default")),
        );
        tlsVolume(`${site}-relay`, kvCert, { ...KV_TLS_FILES, ca: `${KV_TLS_DIR}/ca.crt` });
      }
      const mesh = this.secretFile(`${site}-relay`, CLUSTER_SECRET_PATH);
      mkdirSync(path.dirname(mesh), { recursive: true });
      writeFileSync(mesh, randomBytes(32).toString("hex"), { mode: 0o440 });
    }
  }

  /** The kv API token Secret of each site (64 random hex characters), as KvTokenSecret fills it. */
  #writeKvTokens(): void {
    for (const site of ROUTER_SITES) {
      const file = this.kvTokenFile(site);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o440 });
    }
  }

  /**
   * How an in-cluster client of a site's kv API verifies it (cloud mode: HTTPS): the CA (the
   * ConfigMap `<site>-relay-kv-ca` of the site stack) and the Service name its certificate
   * carries, checked while the pod IP is dialled. undefined: plain HTTP.
   */
  kvClientTls(site: SiteName): { readonly ca: string; readonly servername: string } | undefined {
    if (!this.kv || this.mode !== "cloud") return undefined;
    return {
      ca: this.secretFile(`${site}-relay`, `${KV_TLS_DIR}/ca.crt`),
      servername: kvServiceDnsNames(site, "default").at(-1)!,
    };
  }

  /** Where a site's relay pods find the kv API token (KV_TOKEN_FILE, a mounted Secret). */
  kvTokenFile(site: SiteName): string {
    return this.secretFile(`${site}-relay`, KV_TOKEN_PATH);
  }

  /** Environment every process gets besides the contract: only PATH (the image's). */
  #baseEnv(): Record<string, string> {
    return { PATH: process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin" };
  }

  #track(name: string, child: ChildProcess): PodProcess {
    live.add(child);
    child.once("exit", () => live.delete(child));
    const p = new PodProcess(name, child, path.join(this.logDir, `${name}.log`));
    this.#procs.add(p);
    void p.exited.then(() => this.#procs.delete(p));
    return p;
  }

  /** Starts router `index` (0 or 1) with the construct's arguments; resolves once it listens. */
  async startRouter(index: number): Promise<PodProcess> {
    const ns = this.routers[index]!;
    const child = ns.spawn(
      process.execPath,
      [
        RELAY_CLI,
        ...this.deployment.routerArgs[index]!.map((a) => this.secretFile(`${ROUTER_SITES[index]}-router`, a)),
      ],
      this.#baseEnv(),
      REPO_ROOT,
    );
    const p = this.#track(`router-${index + 1}`, child);
    await p.waitFor((l) => l.includes('"router listening"'), "router listening");
    return p;
  }

  /** `relay node` in a pod, with the pod's env (the container's default command). */
  startNode(pod: Pod): PodProcess {
    const child = pod.ns.spawn(
      process.execPath,
      [RELAY_CLI, "node"],
      { ...this.#baseEnv(), ...this.envOf(pod) },
      REPO_ROOT,
    );
    return this.#track(pod.name, child);
  }

  /** Any `relay` sub-command in a pod with the pod's env (e.g. `chat` as `kubectl exec` would). */
  startCli(pod: Pod, args: readonly string[], extraEnv: Record<string, string> = {}): PodProcess {
    const child = pod.ns.spawn(
      process.execPath,
      [RELAY_CLI, ...args],
      { ...this.#baseEnv(), ...this.envOf(pod), ...extraEnv },
      REPO_ROOT,
    );
    return this.#track(`${pod.name}-${args[0] ?? "cli"}`, child);
  }

  /** The e2e member app (test/e2e/apps/member.ts) in a pod, with the pod's env. */
  startMember(pod: Pod, args: readonly string[]): PodProcess {
    return this.startApp(pod, MEMBER_APP, args, pod.name);
  }

  /** A TypeScript app (run with tsx) in a pod, with the pod's env; `name` names its log. */
  startApp(pod: Pod, script: string, args: readonly string[], name: string): PodProcess {
    const child = pod.ns.spawn(
      process.execPath,
      ["--import", "tsx", script, ...args],
      { ...this.#baseEnv(), ...this.envOf(pod) },
      REPO_ROOT,
    );
    return this.#track(name, child);
  }

  /**
   * A node script (an ES module, as text) running inside a pod with only PATH in its env, without
   * blocking the test (unlike nodeEval); `name` names its log. Killed with the world like the rest.
   */
  startScript(pod: Pod, script: string, name: string): PodProcess {
    const child = pod.ns.spawn(
      process.execPath,
      ["--input-type=module", "-e", script],
      this.#baseEnv(),
      REPO_ROOT,
    );
    return this.#track(name, child);
  }

  /** Runs a short node script inside a pod (bounded) and returns its stdout parsed as JSON. */
  nodeEval(pod: Pod, script: string, timeoutMs = 10_000): unknown {
    const r = pod.ns.exec(process.execPath, ["--input-type=module", "-e", script], timeoutMs);
    if (r.code !== 0) throw new Error(`script in ${pod.name} failed (${r.code}): ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  }

  /** Every process still running, stopped (SIGKILL). */
  async killAll(): Promise<void> {
    await Promise.all([...this.#procs].map((p) => p.kill9()));
  }

  #keepLogs = false;

  /** Keep the log directory after destroy (a scenario failed: its logs are the evidence). */
  keepLogs(): void {
    this.#keepLogs = true;
  }

  /** Stops everything and deletes every namespace and temporary file of this world. */
  async destroy(): Promise<void> {
    await this.killAll();
    for (const s of this.#sites.values()) await s.dns.stop();
    this.run.destroy();
    if (process.env["E2E_KEEP_LOGS"] !== "1" && !this.#keepLogs) {
      rmSync(this.logDir, { recursive: true, force: true });
    } else process.stderr.write(`e2e logs kept in ${this.logDir}\n`);
  }
}
