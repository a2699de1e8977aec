// An EKS site in a topology document: its fields, their defaults and their checks.

import { join, MAX_NODES, type Obj, type Reader } from "../../topology/reader.js";
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
  };
  /** Kubernetes version of the control plane, e.g. "1.33"; undefined = the EKS default. */
  readonly kubernetesVersion: string | undefined;
}

/** Defaults of an EKS site and of the EksCluster construct's node group (the seed's nyc). */
export const EKS_DEFAULTS = {
  region: "us-east-1",
  instanceType: "t3.small",
  desired: 2,
  min: 1,
  max: 4,
} as const;

/** An EKS site with every field at its default. */
export function defaultEksSite(name: string, relayReplicas: number): EksSite {
  const { region, instanceType, desired, min, max } = EKS_DEFAULTS;
  return {
    name,
    cloud: "eks",
    region,
    nodeGroup: { name: `${name}-nodegroup`, instanceType, desired, min, max },
    kubernetesVersion: undefined,
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
  r.unknownKeys(s, ["name", "cloud", "region", "nodeGroup", "kubernetesVersion", "relayReplicas"], path);
  const ngPath = join(path, "nodeGroup");
  const ng = r.object(s["nodeGroup"], ngPath) ?? {};
  r.unknownKeys(ng, ["name", "instanceType", "desired", "min", "max"], ngPath);
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
    },
    kubernetesVersion: r.optionalString(s, "kubernetesVersion", path),
    relayReplicas,
  };
}
