// Pieces of pod specs shared by the router and the relay Deployments: the hardened security
// contexts, the volumes (writable /tmp, TLS Secret) and their mounts, the TLS Secret itself, and
// the contract's env list in the provider's shape.

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

/**
 * The pod's volumes and the container's mounts of them: an emptyDir on /tmp (the root filesystem
 * is read-only) and, given a TLS Secret's name, that Secret read-only on TLS_MOUNT_DIR.
 */
export function podVolumes(tlsSecretName: string | undefined) {
  const tls = tlsSecretName !== undefined;
  return {
    volumeMount: [
      { name: "tmp", mountPath: "/tmp" },
      ...(tls ? [{ name: "tls", mountPath: TLS_MOUNT_DIR, readOnly: true }] : []),
    ],
    volume: [
      { name: "tmp", emptyDir: { sizeLimit: "16Mi" } },
      ...(tls ? [{ name: "tls", secret: { secretName: tlsSecretName, defaultMode: "0440" } }] : []),
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
  /** Whose pods mount it; names it `<site>-<component>-tls` and labels it like their objects. */
  readonly component: "router" | "relay";
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
    labels: objectLabels(props.site, props.component),
  });
}
