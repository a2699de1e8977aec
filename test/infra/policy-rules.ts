// Policy checks over synthesized stacks: a small rule set keyed to the IDs of the well-known
// scanners (checkov CKV_*, trivy/tfsec AVD-* and its long names), each rule written here from the
// scanner's documented intent, evaluated on the Terraform JSON the program writes. Where a default
// deliberately deviates, a waiver says so: which rule, which resource, why, since when.
// Used by test/infra/policy.test.ts; documented in docs/DEPLOY.md, "Hardening".

import type { TfJson } from "./synth.js";

/** One resource as a rule sees it. */
export interface Resource {
  readonly stack: string;
  readonly type: string;
  readonly name: string;
  readonly body: TfJson;
}

export interface PolicyRule {
  /** The scanner's check ID (CKV_AWS_37, AVD-AWS-0038, google-gke-...) or RELAY-* for ours. */
  readonly id: string;
  readonly description: string;
  /** Resource types the rule looks at. */
  readonly types: readonly string[];
  /** Why the resource violates the rule, or undefined when it complies. */
  check(r: Resource, stack: TfJson): string | undefined;
}

/** A failed check on one resource. */
export interface Finding {
  readonly id: string;
  /** `<stack>/<type>.<name>` */
  readonly resource: string;
  readonly message: string;
}

/** A deliberate deviation of the defaults, reviewed and dated. */
export interface Waiver {
  readonly id: string;
  /** `<stack>/<type>.<name>`; `*` matches any run of characters. */
  readonly resource: string;
  readonly reason: string;
  /** When the waiver was granted (YYYY-MM-DD); review waivers older than a year. */
  readonly date: string;
}

const EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"];
const ANYWHERE = ["0.0.0.0/0", "::/0"];

// Single nested blocks synthesize as objects, repeated ones as lists: read either.
function block(v: unknown): TfJson | undefined {
  if (Array.isArray(v)) return v[0] as TfJson | undefined;
  return v && typeof v === "object" ? (v as TfJson) : undefined;
}

// Terraform defaults of aws_eks_cluster.vpc_config: public access on, from 0.0.0.0/0.
function eksPublic(body: TfJson): { enabled: boolean; cidrs: string[] } {
  const vpc = block(body["vpc_config"]) ?? {};
  return {
    enabled: vpc["endpoint_public_access"] !== false,
    cidrs: (vpc["public_access_cidrs"] as string[] | undefined) ?? ["0.0.0.0/0"],
  };
}

function missingLogs(body: TfJson): string | undefined {
  const types: string[] = body["enabled_cluster_log_types"] ?? [];
  const missing = EKS_LOG_TYPES.filter((t) => !types.includes(t));
  return missing.length > 0 ? `control-plane log types not enabled: ${missing.join(", ")}` : undefined;
}

function noSecretsEncryption(body: TfJson): string | undefined {
  const enc = block(body["encryption_config"]);
  if (!enc) return "no encryption_config";
  if (!(enc["resources"] ?? []).includes("secrets")) return "encryption_config does not cover secrets";
  if (!block(enc["provider"])?.["key_arn"]) return "encryption_config has no KMS key";
  return undefined;
}

function openPublicEndpoint(body: TfJson): string | undefined {
  const p = eksPublic(body);
  const open = p.cidrs.filter((c) => ANYWHERE.includes(c));
  return p.enabled && open.length > 0 ? `public endpoint admits ${open.join(", ")}` : undefined;
}

function publicEndpoint(body: TfJson): string | undefined {
  return eksPublic(body).enabled ? "public endpoint enabled" : undefined;
}

const GCP_DEFAULT_SA = /-compute@developer\.gserviceaccount\.com$/;
const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";

function nodeConfigOf(r: Resource): TfJson | undefined {
  return block(r.body["node_config"]);
}

export const RULES: readonly PolicyRule[] = [
  // --- EKS: checkov
  {
    id: "CKV_AWS_37",
    description: "EKS control-plane logging is enabled for every log type",
    types: ["aws_eks_cluster"],
    check: (r) => missingLogs(r.body),
  },
  {
    id: "CKV_AWS_38",
    description: "EKS public endpoint is not accessible from 0.0.0.0/0",
    types: ["aws_eks_cluster"],
    check: (r) => openPublicEndpoint(r.body),
  },
  {
    id: "CKV_AWS_39",
    description: "EKS public endpoint is disabled",
    types: ["aws_eks_cluster"],
    check: (r) => publicEndpoint(r.body),
  },
  {
    id: "CKV_AWS_58",
    description: "EKS Secrets are encrypted with a KMS key (envelope encryption)",
    types: ["aws_eks_cluster"],
    check: (r) => noSecretsEncryption(r.body),
  },
  {
    id: "CKV_AWS_7",
    description: "Customer-managed KMS keys rotate",
    types: ["aws_kms_key"],
    check: (r) => (r.body["enable_key_rotation"] === true ? undefined : "key rotation not enabled"),
  },
  // --- EKS: trivy / tfsec
  {
    id: "AVD-AWS-0038",
    description: "aws-eks-enable-control-plane-logging: every control-plane log type is on",
    types: ["aws_eks_cluster"],
    check: (r) => missingLogs(r.body),
  },
  {
    id: "AVD-AWS-0039",
    description: "aws-eks-encrypt-secrets: Secrets are encrypted with a KMS key",
    types: ["aws_eks_cluster"],
    check: (r) => noSecretsEncryption(r.body),
  },
  {
    id: "AVD-AWS-0040",
    description: "aws-eks-no-public-cluster-access: the public endpoint is disabled",
    types: ["aws_eks_cluster"],
    check: (r) => publicEndpoint(r.body),
  },
  {
    id: "AVD-AWS-0041",
    description: "aws-eks-no-public-cluster-access-to-cidr: the public endpoint is not open to any address",
    types: ["aws_eks_cluster"],
    check: (r) => openPublicEndpoint(r.body),
  },
  // --- GKE: checkov and tfsec (long names)
  {
    id: "CKV_GCP_7",
    description: "google-gke-use-rbac-permissions: legacy ABAC is disabled",
    types: ["google_container_cluster"],
    check: (r) => (r.body["enable_legacy_abac"] === true ? "enable_legacy_abac is true" : undefined),
  },
  {
    id: "google-gke-node-shielding-enabled",
    description: "Shielded GKE nodes are enabled on the cluster",
    types: ["google_container_cluster"],
    check: (r) => (r.body["enable_shielded_nodes"] === false ? "enable_shielded_nodes is false" : undefined),
  },
  {
    id: "google-gke-enable-private-cluster",
    description: "Nodes are private (no external IPs): on the cluster or on every node pool",
    types: ["google_container_node_pool"],
    check: (r, stack) => {
      const pool = block(r.body["network_config"])?.["enable_private_nodes"] === true;
      const clusters = Object.values<TfJson>(stack["resource"]?.["google_container_cluster"] ?? {});
      const cluster = clusters.some(
        (c) => block(c["private_cluster_config"])?.["enable_private_nodes"] === true,
      );
      return pool || cluster ? undefined : "the node pool's nodes get external IPs";
    },
  },
  {
    id: "google-gke-use-service-account",
    description: "Node pools run as a dedicated service account, not the Compute Engine default",
    types: ["google_container_node_pool"],
    check: (r) => {
      const sa = nodeConfigOf(r)?.["service_account"];
      if (typeof sa !== "string" || sa === "" || sa === "default") return "no node service account (default)";
      return GCP_DEFAULT_SA.test(sa) ? `the Compute Engine default account ${sa}` : undefined;
    },
  },
  {
    id: "RELAY-GKE-SCOPES",
    description:
      "Node pools do not have the cloud-platform OAuth scope (IAM roles alone would then bound them)",
    types: ["google_container_node_pool"],
    check: (r) => {
      const scopes: string[] = nodeConfigOf(r)?.["oauth_scopes"] ?? [];
      return scopes.includes(CLOUD_PLATFORM) ? "has the cloud-platform scope" : undefined;
    },
  },
  {
    id: "RELAY-GKE-SHIELDED-VM",
    description: "Node pool VMs use secure boot and integrity monitoring",
    types: ["google_container_node_pool"],
    check: (r) => {
      const s = block(nodeConfigOf(r)?.["shielded_instance_config"]) ?? {};
      const off = [
        s["enable_secure_boot"] === true ? undefined : "secure boot",
        s["enable_integrity_monitoring"] === false ? "integrity monitoring" : undefined,
      ].filter(Boolean);
      return off.length > 0 ? `${off.join(" and ")} off` : undefined;
    },
  },
  {
    id: "RELAY-GKE-WORKLOAD-IDENTITY",
    description: "Workload Identity is enabled on the cluster",
    types: ["google_container_cluster"],
    check: (r) =>
      block(r.body["workload_identity_config"])?.["workload_pool"]
        ? undefined
        : "no workload_identity_config",
  },
  {
    id: "google-gke-node-metadata-security",
    description: "Node pools serve the GKE metadata server (node credentials hidden from pods)",
    types: ["google_container_node_pool"],
    check: (r) => {
      const mode = block(nodeConfigOf(r)?.["workload_metadata_config"])?.["mode"];
      return mode === "GKE_METADATA" ? undefined : `workload_metadata_config mode ${mode ?? "unset"}`;
    },
  },
  {
    id: "google-gke-metadata-endpoints-disabled",
    description: "Legacy metadata endpoints are disabled on the nodes",
    types: ["google_container_node_pool"],
    check: (r) =>
      nodeConfigOf(r)?.["metadata"]?.["disable-legacy-endpoints"] === "true"
        ? undefined
        : "disable-legacy-endpoints is not true",
  },
  {
    id: "google-gke-enable-master-networks",
    description: "Master authorized networks restrict who reaches the GKE control plane",
    types: ["google_container_cluster"],
    check: (r) =>
      block(r.body["master_authorized_networks_config"]) ? undefined : "no master_authorized_networks_config",
  },
  // --- Kubernetes objects of this program
  {
    id: "RELAY-K8S-SPREAD",
    description: "Router and relay Deployments spread across zones and nodes",
    types: ["kubernetes_deployment_v1"],
    check: (r) => {
      const tsc: TfJson[] = r.body["spec"]?.["template"]?.["spec"]?.["topology_spread_constraint"] ?? [];
      const keys = tsc.map((c) => c["topology_key"]);
      const missing = ["topology.kubernetes.io/zone", "kubernetes.io/hostname"].filter(
        (k) => !keys.includes(k),
      );
      return missing.length > 0 ? `no topology spread over ${missing.join(", ")}` : undefined;
    },
  },
  {
    id: "RELAY-K8S-PDB",
    description: "Every Deployment has a PodDisruptionBudget selecting its pods",
    types: ["kubernetes_deployment_v1"],
    check: (r, stack) => {
      const selector = JSON.stringify(r.body["spec"]?.["selector"]?.["match_labels"]);
      const pdbs = Object.values<TfJson>(stack["resource"]?.["kubernetes_pod_disruption_budget_v1"] ?? {});
      const has = pdbs.some((p) => JSON.stringify(p["spec"]?.["selector"]?.["match_labels"]) === selector);
      return has ? undefined : "no PodDisruptionBudget selects its pods";
    },
  },
];

/** Every finding of `rules` over every resource of every stack. */
export function evaluate(stacks: Record<string, TfJson>, rules: readonly PolicyRule[] = RULES): Finding[] {
  const findings: Finding[] = [];
  for (const [stackName, stack] of Object.entries(stacks)) {
    for (const rule of rules) {
      for (const type of rule.types) {
        for (const [name, body] of Object.entries<TfJson>(stack["resource"]?.[type] ?? {})) {
          const message = rule.check({ stack: stackName, type, name, body }, stack);
          if (message !== undefined)
            findings.push({ id: rule.id, resource: `${stackName}/${type}.${name}`, message });
        }
      }
    }
  }
  return findings;
}

function matches(pattern: string, resource: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map(escapeRe).join(".*")}$`);
  return re.test(resource);
}

function escapeRe(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/** The findings no waiver covers, and the waivers that covered nothing (stale). */
export function applyWaivers(
  findings: readonly Finding[],
  waivers: readonly Waiver[],
): { unwaived: Finding[]; waived: Finding[]; unused: Waiver[] } {
  const used = new Set<Waiver>();
  const unwaived: Finding[] = [];
  const waived: Finding[] = [];
  for (const f of findings) {
    const w = waivers.find((w) => w.id === f.id && matches(w.resource, f.resource));
    if (w) {
      used.add(w);
      waived.push(f);
    } else {
      unwaived.push(f);
    }
  }
  return { unwaived, waived, unused: waivers.filter((w) => !used.has(w)) };
}

/**
 * Where the defaults deliberately deviate. Each entry: the rule, the resources, why, and when it
 * was decided. A waiver that no longer matches anything fails the test (remove it).
 */
export const WAIVERS: readonly Waiver[] = [
  {
    id: "google-gke-enable-master-networks",
    resource: "*-cluster/google_container_cluster.*",
    reason:
      "The GKE control plane keeps its public endpoint without authorized networks: the operators' and CI's addresses are not known to the program, and every request is authenticated by Google IAM. Restrict it in the console or with a future `masterAuthorizedNetworks` site field.",
    date: "2026-12-02",
  },
];
