// A GKE site in a topology document: its fields, their defaults and their checks.

import { join, MAX_NODES, type Obj, type Reader } from "../../topology/reader.js";
import type { SiteBase } from "../types.js";

/** A site on a new GKE cluster (with its own VPC network). */
export interface GkeSite extends SiteBase<"gke"> {
  /** Zone (zonal cluster, e.g. us-west1-a) or region (regional cluster). */
  readonly location: string;
  /** Google Cloud project; undefined = the provider's default (GOOGLE_PROJECT). */
  readonly project: string | undefined;
  readonly nodePool: {
    readonly machineType: string;
    /** Nodes per zone (the initial count with autoscaling). */
    readonly nodeCount: number;
    /** Cluster autoscaler bounds per zone; undefined = a fixed nodeCount. */
    readonly autoscaling: { readonly min: number; readonly max: number } | undefined;
  };
  readonly deletionProtection: boolean;
}

/** Defaults of a GKE site and of the GkeCluster construct (the seed's sfc). */
export const GKE_DEFAULTS = {
  location: "us-west1-a",
  machineType: "e2-medium",
  nodeCount: 2,
  deletionProtection: false,
} as const;

/** A GKE site with every field at its default. */
export function defaultGkeSite(name: string, relayReplicas: number): GkeSite {
  const { location, machineType, nodeCount, deletionProtection } = GKE_DEFAULTS;
  return {
    name,
    cloud: "gke",
    location,
    project: undefined,
    nodePool: { machineType, nodeCount, autoscaling: undefined },
    deletionProtection,
    relayReplicas,
  };
}

const GCP_LOCATION = /^[a-z]+-[a-z]+\d(-[a-z])?$/;

export function readGkeSite(
  r: Reader,
  s: Obj,
  path: string,
  common: Omit<SiteBase, "cloud">,
): GkeSite | undefined {
  const { name, relayReplicas } = common;
  const d = defaultGkeSite(name, relayReplicas);
  r.unknownKeys(
    s,
    ["name", "cloud", "location", "project", "nodePool", "deletionProtection", "relayReplicas"],
    path,
  );
  const npPath = join(path, "nodePool");
  const np = r.object(s["nodePool"], npPath) ?? {};
  r.unknownKeys(np, ["machineType", "nodeCount", "autoscaling"], npPath);
  const nodeCount = r.int(np, "nodeCount", npPath, d.nodePool.nodeCount, 1, MAX_NODES);
  const asPath = join(npPath, "autoscaling");
  const as = r.object(np["autoscaling"], asPath);
  let autoscaling: { min: number; max: number } | undefined;
  if (as) {
    r.unknownKeys(as, ["min", "max"], asPath);
    if (as["min"] === undefined || as["max"] === undefined) r.problem(asPath, "needs both min and max");
    const min = r.int(as, "min", asPath, 0, 0, MAX_NODES);
    const max = r.int(as, "max", asPath, Math.max(nodeCount, min, 1), 1, MAX_NODES);
    if (min > nodeCount)
      r.problem(
        join(asPath, "min"),
        `${min} is greater than nodeCount (${nodeCount}); need min <= nodeCount <= max`,
      );
    if (nodeCount > max)
      r.problem(
        join(asPath, "max"),
        `${max} is less than nodeCount (${nodeCount}); need min <= nodeCount <= max`,
      );
    autoscaling = { min, max };
  }
  return {
    name,
    cloud: "gke",
    location: r.string(
      s,
      "location",
      path,
      d.location,
      GCP_LOCATION,
      "a GCP zone (us-west1-a) or region (us-west1)",
    ),
    project: r.optionalString(s, "project", path),
    nodePool: {
      machineType: r.string(
        np,
        "machineType",
        npPath,
        d.nodePool.machineType,
        /^[a-z0-9-]+$/,
        "a machine type such as e2-medium",
      ),
      nodeCount,
      autoscaling,
    },
    deletionProtection: r.bool(s, "deletionProtection", path, d.deletionProtection),
    relayReplicas,
  };
}
