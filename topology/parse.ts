// Reads a user's topology document (already parsed from JSON/YAML) into a Topology: fields left out
// take the seed's values, each site is read by its cloud's module (clouds/<kind>/site.ts), and
// every problem is collected, one line each naming its field, before TopologyError is thrown.

import { AWS_REGION } from "../clouds/eks/site.js";
import { CLOUD_KINDS, CLOUDS, type CloudKind, type CloudModule, type Site } from "../clouds/index.js";
import { MAX_ROUTER_REPLICAS, ROUTER_REPLICAS_WHY } from "../constructs/router-policy.js";
import { awsTagProblem, gcpLabelProblem, RESERVED_TAG_KEYS } from "../constructs/tags.js";
import { MAX_KV_MAPS } from "../contract/relay-env.js";
import {
  type Backend,
  type CertificateSettings,
  DEFAULT_RELAY_REPLICAS,
  defaultTopology,
  type KvSettings,
  type MonitoringSettings,
  type RouterAuthMode,
  type RouterSettings,
  type SourceRanges,
  type Topology,
  TopologyError,
} from "./model.js";
import { clip, describe, join, type Obj, Reader } from "./reader.js";

/** At most this many topology tags (AWS allows 50 per resource; the program adds 2 + its own). */
const MAX_TAGS = 40;

export { cidrProblem } from "../constructs/cidr.js";

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** Site names become parts of cluster, node-group and Kubernetes names: keep them short. */
const MAX_SITE_NAME = 20;
const MAX_SITES = 16;
const MAX_REPLICAS = 100;

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
      "routerAuth",
      "certificates",
      "loadBalancerSourceRanges",
      "backend",
      "tags",
      "monitoring",
      "kv",
    ],
    "",
  );

  let sites: Site[] = [...base.sites];
  /** Paths of existing sites that give no egressCidrs (a problem while the egress ranges apply). */
  const withoutEgress: string[] = [];
  if (root["sites"] !== undefined) {
    if (!Array.isArray(root["sites"])) {
      r.problem("sites", `must be a list of sites, got ${describe(root["sites"])}`);
    } else {
      const list = root["sites"] as unknown[];
      if (list.length < 2) r.problem("sites", `needs at least 2 sites, got ${list.length}`);
      if (list.length > MAX_SITES) r.problem("sites", `at most ${MAX_SITES} sites, got ${list.length}`);
      sites = list.slice(0, MAX_SITES).flatMap((s, i) => {
        const site = readSite(r, s, `sites[${i}]`);
        if (site?.cloud === "existing" && (s as Obj)["egressCidrs"] === undefined) {
          withoutEgress.push(`sites[${i}].egressCidrs`);
        }
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
  if (router.replicas > MAX_ROUTER_REPLICAS) {
    r.problem("router.replicas", `${router.replicas} is refused: ${ROUTER_REPLICAS_WHY}`);
  }
  if (router.port === router.httpPort) {
    r.problem("router.httpPort", `${router.httpPort} is also router.port; use two different ports`);
  }

  const ranges = readSourceRanges(r, root["loadBalancerSourceRanges"], base.loadBalancerSourceRanges);
  if (ranges.egress) {
    for (const path of withoutEgress) {
      r.problem(
        path,
        `is required while loadBalancerSourceRanges includes "${EGRESS}" (the default): the CIDRs this cluster's pods reach the internet from, e.g. [203.0.113.7/32]; or list loadBalancerSourceRanges yourself`,
      );
    }
  }
  const tls = r.bool(root, "tls", "", base.tls);
  const routerAuth = readRouterAuth(r, root["routerAuth"], tls);
  const certificates = readCertificates(r, root["certificates"], base.certificates);

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
    tls,
    routerAuth,
    certificates,
    loadBalancerSourceRanges: ranges,
    backend: readBackend(r, root["backend"]) ?? base.backend,
    tags: readTags(r, root["tags"], sites),
    monitoring: readMonitoring(r, root["monitoring"], base.monitoring),
  };
  // Names as written, also of sites that had other problems (reported already): no second
  // "not a site" problem for them.
  const siteNames = Array.isArray(root["sites"])
    ? (root["sites"] as unknown[]).flatMap((s) => {
        const name = (s as Obj | null)?.["name"];
        return typeof name === "string" ? [name] : [];
      })
    : sites.map((s) => s.name);
  const kv = readKv(r, root["kv"], siteNames);
  if (r.problems.length > 0) throw new TopologyError(r.problems, source);
  return kv === undefined ? topology : { ...topology, kv };
}

const IMAGE = /^[a-z0-9][a-z0-9._\-/:@]*$/;
const IMAGE_HINT = "an image reference such as ghcr.io/org/relay:1.0 (lower-case, no spaces)";
const SITE_NAME_HINT = `a DNS-1123 label: lower-case letters, digits and '-', starting with a letter, 1..${MAX_SITE_NAME} characters`;

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
  const relayReplicas = r.int(s, "relayReplicas", path, DEFAULT_RELAY_REPLICAS, 1, MAX_REPLICAS);
  const cloud = s["cloud"];
  if (cloud === undefined) {
    r.problem(join(path, "cloud"), `is required; allowed: ${CLOUD_KINDS.join(", ")}`);
    return undefined;
  }
  if (!(CLOUD_KINDS as unknown[]).includes(cloud)) {
    r.problem(join(path, "cloud"), `unknown cloud ${describe(cloud)}; allowed: ${CLOUD_KINDS.join(", ")}`);
    return undefined;
  }
  const module: CloudModule<Site> = CLOUDS[cloud as CloudKind];
  return module.readSite(r, s, path, { name, relayReplicas });
}

/** The word in `loadBalancerSourceRanges` that stands for every site's egress addresses. */
export const EGRESS = "egress";

function readSourceRanges(r: Reader, value: unknown, fallback: SourceRanges): SourceRanges {
  if (value === undefined) return fallback;
  const list = r.cidrList(value, "loadBalancerSourceRanges", [EGRESS]);
  if (!list) return fallback;
  return { egress: list.includes(EGRESS), cidrs: list.filter((c) => c !== EGRESS) };
}

const ROUTER_AUTH: readonly RouterAuthMode[] = ["tls", "tokens", "open"];

function readRouterAuth(r: Reader, value: unknown, tls: boolean): RouterAuthMode {
  const fallback: RouterAuthMode = tls ? "tls" : "tokens";
  if (value === undefined) return fallback;
  if (!(ROUTER_AUTH as unknown[]).includes(value)) {
    r.problem("routerAuth", `unknown mode ${describe(value)}; allowed: ${ROUTER_AUTH.join(", ")}`);
    return fallback;
  }
  const mode = value as RouterAuthMode;
  if (tls && mode !== "tls") {
    r.problem(
      "routerAuth",
      `"${mode}" is for tls: false; with tls: true clients authenticate by their certificate ("tls")`,
    );
    return fallback;
  }
  if (!tls && mode === "tls") {
    r.problem("routerAuth", `"tls" needs tls: true; with tls: false use "tokens" (default) or "open"`);
    return fallback;
  }
  return mode;
}

/** Longest certificate lifetime accepted: 5 years (the CA lives 10). */
const MAX_CERT_HOURS = 43_800;

function readCertificates(r: Reader, value: unknown, fallback: CertificateSettings): CertificateSettings {
  const c = r.object(value, "certificates");
  if (!c) return fallback;
  r.unknownKeys(c, ["validityHours", "earlyRenewalHours"], "certificates");
  const validityHours = r.int(c, "validityHours", "certificates", fallback.validityHours, 2, MAX_CERT_HOURS);
  const earlyRenewalHours = r.int(
    c,
    "earlyRenewalHours",
    "certificates",
    fallback.earlyRenewalHours,
    0,
    MAX_CERT_HOURS,
  );
  if (earlyRenewalHours >= validityHours) {
    r.problem(
      "certificates.earlyRenewalHours",
      `${earlyRenewalHours} must be less than certificates.validityHours (${validityHours})`,
    );
    return fallback;
  }
  return { validityHours, earlyRenewalHours };
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

/**
 * `tags:` — string keys and values, checked against the rules of every cloud the topology uses:
 * AWS tag rules with an EKS site, GCP label rules with a GKE site (lower-case, 63 characters).
 */
function readTags(r: Reader, value: unknown, sites: readonly Site[]): Record<string, string> {
  const t = r.object(value, "tags");
  if (!t) return {};
  const keys = Object.keys(t);
  if (keys.length > MAX_TAGS) {
    r.problem("tags", `at most ${MAX_TAGS} tags, got ${keys.length}`);
    return {};
  }
  const aws = sites.some((s) => s.cloud === "eks");
  const gcp = sites.some((s) => s.cloud === "gke");
  const out: Record<string, string> = {};
  for (const key of keys) {
    const path = join("tags", key);
    const v = t[key];
    if (typeof v !== "string") {
      r.problem(path, `must be a string (quote numbers and booleans), got ${describe(v)}`);
      continue;
    }
    if (RESERVED_TAG_KEYS.includes(key)) {
      r.problem(
        path,
        `is set by the program on every resource (${RESERVED_TAG_KEYS.join(", ")}); use another key`,
      );
      continue;
    }
    const problem = (aws ? awsTagProblem(key, v) : undefined) ?? (gcp ? gcpLabelProblem(key, v) : undefined);
    if (problem) {
      r.problem(path, `"${clip(v)}": ${problem}${gcp && aws ? " (the tags go to AWS and GCP)" : ""}`);
      continue;
    }
    out[key] = v;
  }
  return out;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function readMonitoring(r: Reader, value: unknown, fallback: MonitoringSettings): MonitoringSettings {
  const m = r.object(value, "monitoring");
  if (!m) return fallback;
  r.unknownKeys(m, ["namespace", "serviceMonitor", "serviceMonitorLabels", "interval"], "monitoring");
  const namespace =
    m["namespace"] === null
      ? null
      : r.string(
          m,
          "namespace",
          "monitoring",
          fallback.namespace ?? "monitoring",
          /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
          "a namespace name (DNS-1123 label), or null to admit only the relay namespace",
        );
  const labels: Record<string, string> = {};
  const l =
    m["serviceMonitorLabels"] === undefined
      ? undefined
      : r.object(m["serviceMonitorLabels"], "monitoring.serviceMonitorLabels");
  for (const [k, v] of Object.entries(l ?? {})) {
    if (!LABEL_KEY.test(k) || typeof v !== "string" || !LABEL_VALUE.test(v)) {
      r.problem(
        `monitoring.serviceMonitorLabels.${clip(k)}`,
        "must be a Kubernetes label: a key such as release and a string value of up to 63 letters, digits, '-', '_', '.'",
      );
      continue;
    }
    labels[k] = v;
  }
  return {
    namespace,
    serviceMonitor: r.bool(m, "serviceMonitor", "monitoring", fallback.serviceMonitor),
    serviceMonitorLabels: labels,
    interval: r.string(
      m,
      "interval",
      "monitoring",
      fallback.interval,
      /^[0-9]+(ms|s|m|h)$/,
      "a duration such as 30s or 1m",
    ),
  };
}

const MAP_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * `kv:` — replicated maps on every site: `maps` (required), `backups` (site -> sites it backs up
 * to; a site left out backs up to every other site) and `clientNamespaces` (who may call the API;
 * default: the relay namespace only). Absent: no maps, nothing kv is deployed.
 */
function readKv(r: Reader, value: unknown, names: readonly string[]): KvSettings | undefined {
  const k = r.object(value, "kv");
  if (!k) return undefined;
  r.unknownKeys(k, ["maps", "backups", "clientNamespaces"], "kv");
  const maps = readNameList(r, k["maps"], "kv.maps", {
    pattern: MAP_NAME,
    hint: "a map name: 1..64 of letters, digits, '.', '_' or '-'",
    min: 1,
    max: MAX_KV_MAPS,
    required: true,
  });

  const backups: Record<string, string[]> = {};
  const b = r.object(k["backups"], "kv.backups");
  for (const [site, list] of Object.entries(b ?? {})) {
    const path = `kv.backups.${clip(site)}`;
    if (!names.includes(site)) {
      r.problem(path, `"${clip(site)}" is not a site of this topology; sites: ${names.join(", ")}`);
      continue;
    }
    const targets = readNameList(r, list, path, {
      pattern: DNS_LABEL,
      hint: "a site name",
      min: 1,
      max: MAX_SITES,
      required: true,
    });
    let ok = targets !== undefined;
    targets?.forEach((t, i) => {
      if (t === site) {
        r.problem(`${path}[${i}]`, `"${t}" is the site itself; a site backs up to other sites`);
        ok = false;
      } else if (!names.includes(t)) {
        r.problem(`${path}[${i}]`, `"${clip(t)}" is not a site of this topology; sites: ${names.join(", ")}`);
        ok = false;
      }
    });
    if (ok && targets) backups[site] = targets;
  }

  const clientNamespaces =
    k["clientNamespaces"] === undefined
      ? undefined
      : readNameList(r, k["clientNamespaces"], "kv.clientNamespaces", {
          pattern: NAMESPACE,
          hint: "a namespace name (DNS-1123 label)",
          min: 0,
          max: 32,
          required: false,
        });
  if (maps === undefined) return undefined;
  return { maps, backups, clientNamespaces };
}

/** A list of distinct strings matching `pattern`, `min..max` long; undefined after a problem. */
function readNameList(
  r: Reader,
  value: unknown,
  path: string,
  o: { pattern: RegExp; hint: string; min: number; max: number; required: boolean },
): string[] | undefined {
  if (value === undefined) {
    if (o.required) r.problem(path, `is required (a list of ${o.hint}s)`);
    return undefined;
  }
  if (!Array.isArray(value)) {
    r.problem(path, `must be a list (of ${o.hint}s), got ${describe(value)}`);
    return undefined;
  }
  if (value.length < o.min || value.length > o.max) {
    r.problem(path, `needs ${o.min}..${o.max} entries, got ${value.length}`);
    return undefined;
  }
  let ok = true;
  const seen = new Map<string, number>();
  value.forEach((v, i) => {
    if (typeof v !== "string" || !o.pattern.test(v)) {
      r.problem(`${path}[${i}]`, `${describe(v)} is not allowed: ${o.hint}`);
      ok = false;
      return;
    }
    const first = seen.get(v);
    if (first !== undefined) {
      r.problem(`${path}[${i}]`, `"${clip(v)}" is listed twice (also ${path}[${first}])`);
      ok = false;
    } else seen.set(v, i);
  });
  return ok ? (value as string[]) : undefined;
}
