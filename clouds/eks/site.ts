// An EKS site in a topology document: its fields, their defaults and their checks.

import { describe, join, MAX_NODES, type Obj, type Reader } from "../../topology/reader.js";
import type { SiteBase } from "../types.js";

/** A site on a new EKS cluster (with its own VPC). */
export interface EksSite extends SiteBase<"eks"> {
  /** AWS region, e.g. us-east-1. */
  readonly region: string;
  readonly nodeGroup: {
    /** Managed node group name. */
    readonly name: string;
    readonly instanceType: string;
    readonly desired: number;
    readonly min: number;
    readonly max: number;
    /** EKS AMI type of the nodes (EKS_AMI_TYPES). */
    readonly amiType: EksAmiType;
    /** Root volume of each node, GiB. */
    readonly diskSize: number;
  };
  /** Kubernetes version of the control plane, e.g. "1.33"; undefined = the EKS default. */
  readonly kubernetesVersion: string | undefined;
  /** Who reaches the Kubernetes API endpoint. */
  readonly apiEndpoint: EksApiEndpoint;
  /** Control-plane log types sent to CloudWatch Logs ([] = none). */
  readonly controlPlaneLogs: readonly EksLogType[];
  /** Envelope encryption of Kubernetes Secrets with a KMS key created for the cluster. */
  readonly secretsEncryption: boolean;
}

/** Who reaches an EKS cluster's Kubernetes API endpoint. */
export interface EksApiEndpoint {
  /** The endpoint inside the VPC (nodes, and operators on a VPN or bastion). */
  readonly privateAccess: boolean;
  /** CIDRs admitted to the public endpoint; [] turns the public endpoint off. */
  readonly publicCidrs: readonly string[];
  /** The explicit opt-in that `0.0.0.0/0` (or `::/0`) in publicCidrs needs. */
  readonly publicFromAnywhere: boolean;
}

/** Every control-plane log type EKS has. */
export const EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"] as const;
export type EksLogType = (typeof EKS_LOG_TYPES)[number];

/** Managed node group AMI types for the instance families this program expects (x86 and Graviton). */
export const EKS_AMI_TYPES = [
  "AL2023_x86_64_STANDARD",
  "AL2023_ARM_64_STANDARD",
  "BOTTLEROCKET_x86_64",
  "BOTTLEROCKET_ARM_64",
] as const;
export type EksAmiType = (typeof EKS_AMI_TYPES)[number];
/** Node root volume bounds, GiB (EBS gp volumes go to 16 TiB; below 20 the AL2023 image does not fit well). */
export const EKS_DISK_SIZE_RANGE = [20, 16384] as const;

/** Defaults of an EKS site and of the EksCluster construct's node group (the seed's nyc). */
export const EKS_DEFAULTS = {
  region: "us-east-1",
  instanceType: "t3.small",
  desired: 2,
  min: 1,
  max: 4,
  amiType: "AL2023_x86_64_STANDARD",
  diskSize: 20,
} as const;

/** The hardened control-plane defaults: private endpoint only, every log type, Secrets encrypted. */
export const EKS_HARDENING_DEFAULTS = {
  apiEndpoint: { privateAccess: true, publicCidrs: [], publicFromAnywhere: false } as EksApiEndpoint,
  controlPlaneLogs: EKS_LOG_TYPES as readonly EksLogType[],
  secretsEncryption: true,
};

/** True for a CIDR that admits every address. */
export function isAnywhere(cidr: string): boolean {
  return cidr === "0.0.0.0/0" || cidr === "::/0";
}

/** An EKS site with every field at its default. */
export function defaultEksSite(name: string, relayReplicas: number): EksSite {
  const { region, instanceType, desired, min, max, amiType, diskSize } = EKS_DEFAULTS;
  return {
    name,
    cloud: "eks",
    region,
    nodeGroup: { name: `${name}-nodegroup`, instanceType, desired, min, max, amiType, diskSize },
    kubernetesVersion: undefined,
    ...EKS_HARDENING_DEFAULTS,
    relayReplicas,
  };
}

export const AWS_REGION = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;

export function readEksSite(
  r: Reader,
  s: Obj,
  path: string,
  common: Omit<SiteBase, "cloud">,
): EksSite | undefined {
  const { name, relayReplicas } = common;
  const d = defaultEksSite(name, relayReplicas);
  r.unknownKeys(
    s,
    [
      "name",
      "cloud",
      "region",
      "nodeGroup",
      "kubernetesVersion",
      "apiEndpoint",
      "controlPlaneLogs",
      "secretsEncryption",
      "relayReplicas",
    ],
    path,
  );
  const ngPath = join(path, "nodeGroup");
  const ng = r.object(s["nodeGroup"], ngPath) ?? {};
  r.unknownKeys(ng, ["name", "instanceType", "desired", "min", "max", "amiType", "diskSize"], ngPath);
  const desired = r.int(ng, "desired", ngPath, d.nodeGroup.desired, 1, MAX_NODES);
  const min = r.int(ng, "min", ngPath, d.nodeGroup.min, 0, MAX_NODES);
  const max = r.int(ng, "max", ngPath, Math.max(d.nodeGroup.max, desired), 1, MAX_NODES);
  if (min > desired)
    r.problem(join(ngPath, "min"), `${min} is greater than desired (${desired}); need min <= desired <= max`);
  if (desired > max)
    r.problem(join(ngPath, "desired"), `${desired} is greater than max (${max}); need min <= desired <= max`);
  return {
    name,
    cloud: "eks",
    region: r.string(s, "region", path, d.region, AWS_REGION, "an AWS region such as us-east-1"),
    nodeGroup: {
      name: r.string(
        ng,
        "name",
        ngPath,
        d.nodeGroup.name,
        /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/,
        "1..63 of letters, digits, '-', '_'",
      ),
      instanceType: r.string(
        ng,
        "instanceType",
        ngPath,
        d.nodeGroup.instanceType,
        /^[a-z0-9-]+\.[a-z0-9]+$/,
        "an EC2 instance type such as t3.small",
      ),
      desired,
      min,
      max,
      amiType: r.oneOf(ng, "amiType", ngPath, d.nodeGroup.amiType, EKS_AMI_TYPES),
      diskSize: r.int(ng, "diskSize", ngPath, d.nodeGroup.diskSize, ...EKS_DISK_SIZE_RANGE),
    },
    kubernetesVersion: r.optionalString(s, "kubernetesVersion", path),
    apiEndpoint: readApiEndpoint(r, s["apiEndpoint"], join(path, "apiEndpoint"), d.apiEndpoint),
    controlPlaneLogs: readLogTypes(
      r,
      s["controlPlaneLogs"],
      join(path, "controlPlaneLogs"),
      d.controlPlaneLogs,
    ),
    secretsEncryption: r.bool(s, "secretsEncryption", path, d.secretsEncryption),
    relayReplicas,
  };
}

function readApiEndpoint(r: Reader, value: unknown, path: string, d: EksApiEndpoint): EksApiEndpoint {
  const o = r.object(value, path);
  if (!o) return d;
  r.unknownKeys(o, ["privateAccess", "publicCidrs", "publicFromAnywhere"], path);
  const privateAccess = r.bool(o, "privateAccess", path, d.privateAccess);
  const publicFromAnywhere = r.bool(o, "publicFromAnywhere", path, d.publicFromAnywhere);
  let publicCidrs: readonly string[] = d.publicCidrs;
  const cidrsPath = join(path, "publicCidrs");
  if (Array.isArray(o["publicCidrs"]) && o["publicCidrs"].length === 0) {
    publicCidrs = [];
  } else {
    publicCidrs = r.cidrList(o["publicCidrs"], cidrsPath) ?? d.publicCidrs;
  }
  const anywhere = publicCidrs.findIndex(isAnywhere);
  if (anywhere !== -1 && !publicFromAnywhere) {
    r.problem(
      `${cidrsPath}[${anywhere}]`,
      `"${publicCidrs[anywhere]}" opens the Kubernetes API to the whole internet; list your operators' and CI's addresses, or set ${join(path, "publicFromAnywhere")}: true to mean it`,
    );
  }
  if (!privateAccess && publicCidrs.length === 0) {
    r.problem(path, "privateAccess: false with no publicCidrs leaves no way to reach the Kubernetes API");
  }
  return { privateAccess, publicCidrs, publicFromAnywhere };
}

function readLogTypes(
  r: Reader,
  value: unknown,
  path: string,
  d: readonly EksLogType[],
): readonly EksLogType[] {
  if (value === undefined) return d;
  if (!Array.isArray(value)) {
    r.problem(path, `must be a list of ${EKS_LOG_TYPES.join(", ")} ([] for none), got ${describe(value)}`);
    return d;
  }
  const out: EksLogType[] = [];
  value.forEach((v, i) => {
    if (!(EKS_LOG_TYPES as readonly unknown[]).includes(v)) {
      r.problem(`${path}[${i}]`, `unknown log type ${describe(v)}; allowed: ${EKS_LOG_TYPES.join(", ")}`);
    } else if (out.includes(v as EksLogType)) {
      r.problem(`${path}[${i}]`, `${v} is listed twice`);
    } else {
      out.push(v as EksLogType);
    }
  });
  return out;
}
