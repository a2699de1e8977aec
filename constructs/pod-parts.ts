// Pieces of pod specs shared by the router and the relay Deployments: the hardened security
// contexts, the volumes (writable /tmp, Secrets) and their mounts, the Secrets themselves (TLS,
// mesh secret, router tokens), and the contract's env list in the provider's shape.

import type { DeploymentV1SpecTemplateSpecContainerEnv } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { SecretV1 } from "@cdktf/provider-kubernetes/lib/secret-v1/index.js";
import { Construct } from "constructs";
import type { RelayEnvVar } from "../contract/relay-env.js";
import { objectLabels } from "./labels.js";
import type { IssuedCert } from "./relay-pki.js";

/** Where TLS material is mounted in routers and relay pods. */
export const TLS_MOUNT_DIR = "/etc/relay/tls";
export const TLS_FILES = {
  cert: `${TLS_MOUNT_DIR}/tls.crt`,
  key: `${TLS_MOUNT_DIR}/tls.key`,
  ca: `${TLS_MOUNT_DIR}/ca.crt`,
} as const;
/** Where a relay pod's cluster secret is mounted (a Secret with the one key MESH_SECRET_KEY). */
export const MESH_SECRET_DIR = "/etc/relay/mesh";
export const MESH_SECRET_KEY = "cluster-secret";
/** CLUSTER_SECRET_FILE of every relay pod. */
export const CLUSTER_SECRET_PATH = `${MESH_SECRET_DIR}/${MESH_SECRET_KEY}`;
/** Where a relay pod's router token is mounted (token mode: routers without TLS). */
export const ROUTER_TOKEN_DIR = "/etc/relay/router-token";
export const ROUTER_TOKEN_KEY = "token";
/** ROUTER_TOKEN_FILE of every relay pod in token mode. */
export const ROUTER_TOKEN_PATH = `${ROUTER_TOKEN_DIR}/${ROUTER_TOKEN_KEY}`;
/** Where a relay pod's kv API token is mounted (a Secret with the one key KV_TOKEN_KEY). */
export const KV_TOKEN_DIR = "/etc/relay/kv-token";
export const KV_TOKEN_KEY = "token";
/** KV_TOKEN_FILE of every relay pod hosting replicated maps. */
export const KV_TOKEN_PATH = `${KV_TOKEN_DIR}/${KV_TOKEN_KEY}`;
/** Where a relay pod's kv API certificate is mounted (a TLS Secret: tls.crt, tls.key, ca.crt). */
export const KV_TLS_DIR = "/etc/relay/kv-tls";
/** KV_TLS_CERT / KV_TLS_KEY of every relay pod whose kv API serves HTTPS. */
export const KV_TLS_FILES = { cert: `${KV_TLS_DIR}/tls.crt`, key: `${KV_TLS_DIR}/tls.key` } as const;
/** Where a router's token directory is mounted (`--auth-tokens`): one file per site. */
export const ROUTER_TOKENS_DIR = "/etc/relay/tokens";

/** UID/GID of the image's non-root user (the Dockerfile's `USER 1000:1000`). */
export const RUN_AS_USER = 1000;

/** Non-root, read-only root filesystem, no privilege escalation, no capabilities. */
export function containerSecurityContext() {
  return {
    runAsNonRoot: true,
    runAsUser: String(RUN_AS_USER),
    runAsGroup: String(RUN_AS_USER),
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Pod-level security context: non-root, mounted volumes group-owned by the image's user. */
export function podSecurityContext() {
  return { runAsNonRoot: true, fsGroup: String(RUN_AS_USER) };
}

/** One Secret mounted as a directory: each key becomes a file. */
export interface SecretMount {
  /** Volume name inside the pod. */
  readonly volume: string;
  /** Name of the Secret (a reference, so the Deployment waits for it). */
  readonly secretName: string;
  /** Directory the Secret's keys appear in. */
  readonly mountPath: string;
}

/** The TLS Secret (tls.crt, tls.key, ca.crt) on TLS_MOUNT_DIR. */
export function tlsMount(secretName: string): SecretMount {
  return { volume: "tls", secretName, mountPath: TLS_MOUNT_DIR };
}

/**
 * The pod's volumes and the container's mounts of them: an emptyDir on /tmp (the root filesystem
 * is read-only) and each Secret read-only on its directory. Whole directories, never `subPath`:
 * the kubelet updates a Secret volume in place when the Secret changes (the runtime reloads
 * certificates from there), while a subPath mount keeps the first version forever.
 */
export function podVolumes(secrets: readonly SecretMount[]) {
  return {
    volumeMount: [
      { name: "tmp", mountPath: "/tmp" },
      ...secrets.map((m) => ({ name: m.volume, mountPath: m.mountPath, readOnly: true })),
    ],
    volume: [
      { name: "tmp", emptyDir: { sizeLimit: "16Mi" } },
      ...secrets.map((m) => ({ name: m.volume, secret: { secretName: m.secretName, defaultMode: "0440" } })),
    ],
  };
}

/** The contract's env list as Kubernetes env entries (downward API for valueFrom). */
export function toKubeEnv(env: readonly RelayEnvVar[]): DeploymentV1SpecTemplateSpecContainerEnv[] {
  return env.map((e) =>
    "valueFrom" in e ? { name: e.name, valueFrom: { fieldRef: { fieldPath: e.valueFrom.fieldPath } } } : e,
  );
}

export interface TlsSecretProps {
  /** Secret name. */
  readonly name: string;
  readonly namespace: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
  readonly labels?: Record<string, string>;
}

/** A `kubernetes.io/tls` Secret with `tls.crt`, `tls.key` and `ca.crt`. */
export class TlsSecret extends Construct {
  /** The Secret's name as a reference to the resource (token). */
  readonly name: string;
  readonly secret: SecretV1;

  constructor(scope: Construct, id: string, props: TlsSecretProps) {
    super(scope, id);
    this.secret = new SecretV1(this, "secret", {
      metadata: { name: props.name, namespace: props.namespace, labels: props.labels ?? {} },
      type: "kubernetes.io/tls",
      data: { "tls.crt": props.certPem, "tls.key": props.keyPem, "ca.crt": props.caPem },
    });
    // A reference, not the literal: whatever mounts the Secret then waits for it to exist.
    this.name = this.secret.metadata.name;
  }
}

export interface SiteTlsSecretProps {
  readonly site: string;
  /**
   * Whose pods mount it and for what: names it `<site>-<component>-tls` ("relay-kv": the relay
   * pods' kv API certificate) and labels it like their objects.
   */
  readonly component: "router" | "relay" | "relay-kv";
  readonly namespace: string;
  readonly cert: IssuedCert;
  readonly caPem: string;
}

/** The TLS Secret of one site's router or relay pods, holding an issued certificate and the CA. */
export function siteTlsSecret(scope: Construct, id: string, props: SiteTlsSecretProps): TlsSecret {
  return new TlsSecret(scope, id, {
    name: `${props.site}-${props.component}-tls`,
    namespace: props.namespace,
    certPem: props.cert.certPem,
    keyPem: props.cert.keyPem,
    caPem: props.caPem,
    labels: objectLabels(props.site, props.component === "router" ? "router" : "relay"),
  });
}

export interface OpaqueSecretProps {
  /** Secret name. */
  readonly name: string;
  readonly namespace: string;
  /** Key -> value (plain text; the provider base64-encodes it). Values may be tokens. */
  readonly data: Readonly<Record<string, string>>;
  readonly labels?: Record<string, string>;
}

/** An `Opaque` Secret (the mesh secret, router tokens). */
export class OpaqueSecret extends Construct {
  /** The Secret's name as a reference to the resource (token). */
  readonly name: string;
  readonly secret: SecretV1;

  constructor(scope: Construct, id: string, props: OpaqueSecretProps) {
    super(scope, id);
    this.secret = new SecretV1(this, "secret", {
      metadata: { name: props.name, namespace: props.namespace, labels: props.labels ?? {} },
      type: "Opaque",
      data: { ...props.data },
    });
    this.name = this.secret.metadata.name;
  }
}
