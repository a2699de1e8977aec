// The typed topology: which sites exist, on which kind of cluster, how big, which images, TLS,
// exposure and where Terraform keeps its state. `defaultTopology()` is the seed (nyc on EKS, sfc on
// GKE); `parseTopology()` turns a user's JSON/YAML document into a Topology, reporting every mistake.

import { CodedError } from "../contract/errors.js";
import { ROUTER_HTTP_PORT, ROUTER_PORT } from "../contract/ports.js";

/** A site on a new EKS cluster (with its own VPC). */
export interface EksSite {
  readonly name: string;
  readonly cloud: "eks";
  /** AWS region, e.g. us-east-1. */
  readonly region: string;
  readonly nodeGroup: {
    /** Managed node group name. */
    readonly name: string;
    readonly instanceType: string;
    readonly desired: number;
    readonly min: number;
    readonly max: number;
  };
  /** Kubernetes version of the control plane, e.g. "1.33"; undefined = the EKS default. */
  readonly kubernetesVersion: string | undefined;
  readonly relayReplicas: number;
}

/** A site on a new GKE cluster (with its own VPC network). */
export interface GkeSite {
  readonly name: string;
  readonly cloud: "gke";
  /** Zone (zonal cluster, e.g. us-west1-a) or region (regional cluster). */
  readonly location: string;
  /** Google Cloud project; undefined = the provider's default (GOOGLE_PROJECT). */
  readonly project: string | undefined;
  readonly nodePool: { readonly machineType: string; readonly nodeCount: number };
  readonly deletionProtection: boolean;
  readonly relayReplicas: number;
}

/** A site on a cluster that already exists, reached through a kubeconfig. */
export interface ExistingSite {
  readonly name: string;
  readonly cloud: "existing";
  readonly kubeconfig: { readonly path: string; readonly context: string | undefined };
  readonly relayReplicas: number;
}

export type Site = EksSite | GkeSite | ExistingSite;
export type CloudKind = Site["cloud"];
export const CLOUD_KINDS: readonly CloudKind[] = ["eks", "gke", "existing"];

export type Backend =
  | { readonly kind: "local" }
  | {
      readonly kind: "s3";
      readonly bucket: string;
      readonly region: string;
      /** Each stack's key is `<keyPrefix>/<stack>.tfstate`. */
      readonly keyPrefix: string;
      readonly dynamodbTable: string | undefined;
    }
  | {
      readonly kind: "gcs";
      readonly bucket: string;
      /** Each stack's prefix is `<prefix>/<stack>`. */
      readonly prefix: string;
    };

export interface RouterSettings {
  /** Public gossip port of the LoadBalancer and the container. */
  readonly port: number;
  /** Cluster-internal HTTP port (health, metrics). */
  readonly httpPort: number;
  readonly replicas: number;
  readonly image: string;
}

export interface Topology {
  readonly sites: readonly Site[];
  readonly router: RouterSettings;
  readonly relayImage: string;
  /** Local cluster name shared by every relay node. */
  readonly clusterName: string;
  /** Kubernetes namespace of routers and relay pods. */
  readonly namespace: string;
  readonly tls: boolean;
  /** CIDRs allowed to reach the routers' LoadBalancers. */
  readonly loadBalancerSourceRanges: readonly string[];
  readonly backend: Backend;
}

export const DEFAULT_RELAY_IMAGE = "ghcr.io/cross-cloud-relay/relay:0.1.0";
export const DEFAULT_NAMESPACE = "default";
export const DEFAULT_CLUSTER_NAME = "relay";

/** The seed: nyc on EKS (us-east-1, t3.small 2/1/4, 5 relay pods), sfc on GKE (2 nodes, 3 pods). */
export function defaultTopology(): Topology {
  return {
    sites: [
      {
        name: "nyc",
        cloud: "eks",
        region: "us-east-1",
        nodeGroup: { name: "nyc-nodegroup", instanceType: "t3.small", desired: 2, min: 1, max: 4 },
        kubernetesVersion: undefined,
        relayReplicas: 5,
      },
      {
        name: "sfc",
        cloud: "gke",
        location: "us-west1-a",
        project: undefined,
        nodePool: { machineType: "e2-medium", nodeCount: 2 },
        deletionProtection: false,
        relayReplicas: 3,
      },
    ],
    router: {
      port: ROUTER_PORT,
      httpPort: ROUTER_HTTP_PORT,
      replicas: 1,
      image: DEFAULT_RELAY_IMAGE,
    },
    relayImage: DEFAULT_RELAY_IMAGE,
    clusterName: DEFAULT_CLUSTER_NAME,
    namespace: DEFAULT_NAMESPACE,
    tls: true,
    loadBalancerSourceRanges: ["0.0.0.0/0"],
    backend: { kind: "local" },
  };
}

/** Every mistake found in a topology document, one line each. */
export class TopologyError extends CodedError<"INVALID_TOPOLOGY"> {
  override readonly name = "TopologyError";
  constructor(
    readonly problems: readonly string[],
    source = "topology",
  ) {
    super(
      "INVALID_TOPOLOGY",
      `${source} is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`,
    );
  }
}

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** Site names become parts of cluster, node-group and Kubernetes names: keep them short. */
const MAX_SITE_NAME = 20;
const MAX_SITES = 16;
const MAX_REPLICAS = 100;
const MAX_NODES = 100;

type Obj = Record<string, unknown>;

/** Collects problems while reading an untyped document; every getter returns a usable fallback. */
class Reader {
  readonly problems: string[] = [];

  problem(path: string, message: string): void {
    this.problems.push(`${path}: ${message}`);
  }

  object(value: unknown, path: string): Obj | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.problem(path, `must be a mapping (object), got ${describe(value)}`);
      return undefined;
    }
    return value as Obj;
  }

  unknownKeys(obj: Obj, allowed: readonly string[], path: string): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key))
        this.problem(join(path, key), `unknown field; allowed: ${allowed.join(", ")}`);
    }
  }

  string(obj: Obj, key: string, path: string, fallback: string, pattern?: RegExp, what?: string): string {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string" || v.trim() === "") {
      this.problem(join(path, key), `must be a non-empty string, got ${describe(v)}`);
      return fallback;
    }
    if (pattern && !pattern.test(v)) {
      this.problem(join(path, key), `"${clip(v)}" is not allowed: ${what}`);
      return fallback;
    }
    return v;
  }

  optionalString(obj: Obj, key: string, path: string): string | undefined {
    if (obj[key] === undefined) return undefined;
    const s = this.string(obj, key, path, "");
    return s === "" ? undefined : s;
  }

  requiredString(obj: Obj, key: string, path: string, pattern?: RegExp, what?: string): string {
    if (obj[key] === undefined) {
      this.problem(join(path, key), `is required${what ? ` (${what})` : ""}`);
      return "";
    }
    return this.string(obj, key, path, "", pattern, what);
  }

  int(obj: Obj, key: string, path: string, fallback: number, min: number, max: number): number {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v)) {
      this.problem(join(path, key), `must be an integer in ${min}..${max}, got ${describe(v)}`);
      return fallback;
    }
    if (v < min || v > max) {
      this.problem(join(path, key), `${v} is outside ${min}..${max}`);
      return fallback;
    }
    return v;
  }

  bool(obj: Obj, key: string, path: string, fallback: boolean): boolean {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") {
      this.problem(join(path, key), `must be true or false, got ${describe(v)}`);
      return fallback;
    }
    return v;
  }
}

/**
 * Reads a topology document (already parsed from JSON/YAML). Fields left out take the seed's
 * values; `sites`, when given, replaces the seed's sites. Throws TopologyError listing every
 * problem found.
 */
export function parseTopology(doc: unknown, source = "topology"): Topology {
  const base = defaultTopology();
  const r = new Reader();
  const root = r.object(doc, "(root)") ?? {};
  r.unknownKeys(
    root,
    [
      "sites",
      "router",
      "relayImage",
      "clusterName",
      "namespace",
      "tls",
      "loadBalancerSourceRanges",
      "backend",
    ],
    "",
  );

  let sites: Site[] = [...base.sites];
  if (root["sites"] !== undefined) {
    if (!Array.isArray(root["sites"])) {
      r.problem("sites", `must be a list of sites, got ${describe(root["sites"])}`);
    } else {
      const list = root["sites"] as unknown[];
      if (list.length < 2) r.problem("sites", `needs at least 2 sites, got ${list.length}`);
      if (list.length > MAX_SITES) r.problem("sites", `at most ${MAX_SITES} sites, got ${list.length}`);
      sites = list.slice(0, MAX_SITES).flatMap((s, i) => {
        const site = readSite(r, s, `sites[${i}]`);
        return site ? [site] : [];
      });
      const seen = new Map<string, number>();
      list.slice(0, MAX_SITES).forEach((s, i) => {
        const name = (s as Obj | null)?.["name"];
        if (typeof name !== "string") return;
        const first = seen.get(name);
        if (first !== undefined) {
          r.problem(`sites[${i}].name`, `duplicate site name "${clip(name)}" (also sites[${first}].name)`);
        } else {
          seen.set(name, i);
        }
      });
    }
  }

  const relayImage = r.string(root, "relayImage", "", base.relayImage, IMAGE, IMAGE_HINT);
  const routerObj = r.object(root["router"], "router") ?? {};
  r.unknownKeys(routerObj, ["port", "httpPort", "replicas", "image"], "router");
  const router: RouterSettings = {
    port: r.int(routerObj, "port", "router", base.router.port, 1, 65535),
    httpPort: r.int(routerObj, "httpPort", "router", base.router.httpPort, 1, 65535),
    replicas: r.int(routerObj, "replicas", "router", base.router.replicas, 1, MAX_REPLICAS),
    // The router is part of the relay image unless told otherwise.
    image: r.string(routerObj, "image", "router", relayImage, IMAGE, IMAGE_HINT),
  };
  if (router.port === router.httpPort) {
    r.problem("router.httpPort", `${router.httpPort} is also router.port; use two different ports`);
  }

  const ranges = readSourceRanges(r, root["loadBalancerSourceRanges"], base.loadBalancerSourceRanges);

  const topology: Topology = {
    sites,
    router,
    relayImage,
    clusterName: r.string(
      root,
      "clusterName",
      "",
      base.clusterName,
      /^[A-Za-z0-9._-]{1,128}$/,
      "1..128 of letters, digits, '.', '_', '-'",
    ),
    namespace: r.string(
      root,
      "namespace",
      "",
      base.namespace,
      /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
      "a DNS-1123 label",
    ),
    tls: r.bool(root, "tls", "", base.tls),
    loadBalancerSourceRanges: ranges,
    backend: readBackend(r, root["backend"]) ?? base.backend,
  };
  if (r.problems.length > 0) throw new TopologyError(r.problems, source);
  return topology;
}

const IMAGE = /^[a-z0-9][a-z0-9._\-/:@]*$/;
const IMAGE_HINT = "an image reference such as ghcr.io/org/relay:1.0 (lower-case, no spaces)";
const SITE_NAME_HINT = `a DNS-1123 label: lower-case letters, digits and '-', starting with a letter, 1..${MAX_SITE_NAME} characters`;
const AWS_REGION = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;
const GCP_LOCATION = /^[a-z]+-[a-z]+\d(-[a-z])?$/;

function readSite(r: Reader, value: unknown, path: string): Site | undefined {
  const s = r.object(value, path);
  if (!s) {
    if (value === undefined) r.problem(path, "is empty");
    return undefined;
  }
  let name = r.requiredString(s, "name", path, DNS_LABEL, SITE_NAME_HINT);
  if (name.length > MAX_SITE_NAME) {
    r.problem(join(path, "name"), `"${clip(name)}" is longer than ${MAX_SITE_NAME} characters`);
    name = "";
  }
  const relayReplicas = r.int(s, "relayReplicas", path, 3, 1, MAX_REPLICAS);
  const cloud = s["cloud"];
  switch (cloud) {
    case "eks": {
      r.unknownKeys(s, ["name", "cloud", "region", "nodeGroup", "kubernetesVersion", "relayReplicas"], path);
      const ngPath = join(path, "nodeGroup");
      const ng = r.object(s["nodeGroup"], ngPath) ?? {};
      r.unknownKeys(ng, ["name", "instanceType", "desired", "min", "max"], ngPath);
      const desired = r.int(ng, "desired", ngPath, 2, 1, MAX_NODES);
      const min = r.int(ng, "min", ngPath, 1, 0, MAX_NODES);
      const max = r.int(ng, "max", ngPath, Math.max(4, desired), 1, MAX_NODES);
      if (min > desired)
        r.problem(
          join(ngPath, "min"),
          `${min} is greater than desired (${desired}); need min <= desired <= max`,
        );
      if (desired > max)
        r.problem(
          join(ngPath, "desired"),
          `${desired} is greater than max (${max}); need min <= desired <= max`,
        );
      return {
        name,
        cloud,
        region: r.string(s, "region", path, "us-east-1", AWS_REGION, "an AWS region such as us-east-1"),
        nodeGroup: {
          name: r.string(
            ng,
            "name",
            ngPath,
            `${name}-nodegroup`,
            /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/,
            "1..63 of letters, digits, '-', '_'",
          ),
          instanceType: r.string(
            ng,
            "instanceType",
            ngPath,
            "t3.small",
            /^[a-z0-9-]+\.[a-z0-9]+$/,
            "an EC2 instance type such as t3.small",
          ),
          desired,
          min,
          max,
        },
        kubernetesVersion: r.optionalString(s, "kubernetesVersion", path),
        relayReplicas,
      };
    }
    case "gke": {
      r.unknownKeys(
        s,
        ["name", "cloud", "location", "project", "nodePool", "deletionProtection", "relayReplicas"],
        path,
      );
      const npPath = join(path, "nodePool");
      const np = r.object(s["nodePool"], npPath) ?? {};
      r.unknownKeys(np, ["machineType", "nodeCount"], npPath);
      return {
        name,
        cloud,
        location: r.string(
          s,
          "location",
          path,
          "us-west1-a",
          GCP_LOCATION,
          "a GCP zone (us-west1-a) or region (us-west1)",
        ),
        project: r.optionalString(s, "project", path),
        nodePool: {
          machineType: r.string(
            np,
            "machineType",
            npPath,
            "e2-medium",
            /^[a-z0-9-]+$/,
            "a machine type such as e2-medium",
          ),
          nodeCount: r.int(np, "nodeCount", npPath, 2, 1, MAX_NODES),
        },
        deletionProtection: r.bool(s, "deletionProtection", path, false),
        relayReplicas,
      };
    }
    case "existing": {
      r.unknownKeys(s, ["name", "cloud", "kubeconfig", "relayReplicas"], path);
      const kcPath = join(path, "kubeconfig");
      const kc = r.object(s["kubeconfig"], kcPath);
      if (!kc) {
        if (s["kubeconfig"] === undefined)
          r.problem(kcPath, "is required for cloud: existing ({ path, context? })");
        return undefined;
      }
      r.unknownKeys(kc, ["path", "context"], kcPath);
      return {
        name,
        cloud,
        kubeconfig: {
          path: r.requiredString(kc, "path", kcPath, undefined, "the kubeconfig file, e.g. ~/.kube/config"),
          context: r.optionalString(kc, "context", kcPath),
        },
        relayReplicas,
      };
    }
    case undefined:
      r.problem(join(path, "cloud"), `is required; allowed: ${CLOUD_KINDS.join(", ")}`);
      return undefined;
    default:
      r.problem(join(path, "cloud"), `unknown cloud ${describe(cloud)}; allowed: ${CLOUD_KINDS.join(", ")}`);
      return undefined;
  }
}

function readSourceRanges(r: Reader, value: unknown, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0) {
    r.problem(
      "loadBalancerSourceRanges",
      `must be a non-empty list of CIDRs such as 203.0.113.0/24, got ${describe(value)}`,
    );
    return fallback;
  }
  value.forEach((v, i) => {
    const problem = typeof v === "string" ? cidrProblem(v) : `must be a CIDR string, got ${describe(v)}`;
    if (problem) r.problem(`loadBalancerSourceRanges[${i}]`, problem);
  });
  return value as string[];
}

/** Returns why `s` is not an IPv4/IPv6 CIDR with its host bits zero, or undefined when it is fine. */
export function cidrProblem(s: string): string | undefined {
  const bad = `"${clip(s)}" is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32`;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return bad;
  const addr = m[1]!;
  const bits = Number(m[2]);
  if (addr.includes(":")) {
    if (!/^[0-9a-fA-F:]+$/.test(addr) || (addr.match(/::/g) ?? []).length > 1 || bits > 128) return bad;
    const groups = addr.split(":").filter((g) => g !== "");
    if (groups.length > 8 || groups.some((g) => g.length > 4)) return bad;
    return undefined;
  }
  const parts = addr.split(".");
  if (parts.length !== 4 || bits > 32) return bad;
  let value = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return bad;
    value = value * 256 + Number(p);
  }
  const hostBits = 32 - bits;
  if (hostBits > 0 && value % 2 ** hostBits !== 0) {
    return `"${s}" has host bits set; the network address of /${bits} is ${networkOf(value, bits)}`;
  }
  return undefined;
}

function networkOf(value: number, bits: number): string {
  const net = bits === 0 ? 0 : value - (value % 2 ** (32 - bits));
  return `${[24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join(".")}/${bits}`;
}

function readBackend(r: Reader, value: unknown): Backend | undefined {
  const b = r.object(value, "backend");
  if (!b) return undefined;
  const kind = b["kind"];
  const bucket = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
  const bucketHint = "a bucket name (lower-case letters, digits, '.', '-', '_')";
  switch (kind) {
    case "local":
      r.unknownKeys(b, ["kind"], "backend");
      return { kind };
    case "s3":
      r.unknownKeys(b, ["kind", "bucket", "region", "keyPrefix", "dynamodbTable"], "backend");
      return {
        kind,
        bucket: r.requiredString(b, "bucket", "backend", bucket, bucketHint),
        region: r.requiredString(b, "region", "backend", AWS_REGION, "an AWS region such as us-east-1"),
        keyPrefix: r.string(
          b,
          "keyPrefix",
          "backend",
          "cross-cloud-relay",
          /^[^\s]+$/,
          "a key prefix without spaces",
        ),
        dynamodbTable: r.optionalString(b, "dynamodbTable", "backend"),
      };
    case "gcs":
      r.unknownKeys(b, ["kind", "bucket", "prefix"], "backend");
      return {
        kind,
        bucket: r.requiredString(b, "bucket", "backend", bucket, bucketHint),
        prefix: r.string(b, "prefix", "backend", "cross-cloud-relay", /^[^\s]+$/, "a prefix without spaces"),
      };
    default:
      r.problem("backend.kind", `unknown backend ${describe(kind)}; allowed: local, s3, gcs`);
      return undefined;
  }
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return `"${clip(v)}"`;
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${clip(String(v))}`;
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}
