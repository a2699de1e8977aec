// The private CA and every certificate, in a state of their own: routers and sites both read from
// it and it reads from nobody, so it can never be part of a cycle.

import { TlsProvider } from "@cdktf/provider-tls/lib/provider/index.js";
import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { type IssuedCert, RelayPki } from "../constructs/relay-pki.js";
import type { Backend } from "../topology/model.js";
import { configureBackend } from "./backend.js";

export interface PkiStackProps {
  readonly sites: readonly string[];
  readonly backend: Backend;
  /** Lifetime of each certificate. @default RelayPki's (2160 h, 90 days) */
  readonly validityHours?: number;
  /** Re-issue window before expiry. @default RelayPki's (720 h, 30 days) */
  readonly earlyRenewalHours?: number;
  /** Sites whose kv API gets a server certificate, with the DNS names it carries. @default none */
  readonly kvApis?: readonly { readonly site: string; readonly dnsNames: readonly string[] }[];
}

export class PkiStack extends TerraformStack {
  readonly pki: RelayPki;
  readonly routerCerts: ReadonlyMap<string, IssuedCert>;
  readonly siteCerts: ReadonlyMap<string, IssuedCert>;
  /** The kv API server certificate of each site in `kvApis`. */
  readonly kvApiCerts: ReadonlyMap<string, IssuedCert>;

  constructor(scope: Construct, id: string, props: PkiStackProps) {
    super(scope, id);
    configureBackend(this, id, props.backend);
    new TlsProvider(this, "tls");
    this.pki = new RelayPki(this, "pki", {
      ...(props.validityHours !== undefined ? { validityHours: props.validityHours } : {}),
      ...(props.earlyRenewalHours !== undefined ? { earlyRenewalHours: props.earlyRenewalHours } : {}),
    });
    this.routerCerts = new Map(props.sites.map((s) => [s, this.pki.issueRouterCert(s)]));
    this.siteCerts = new Map(props.sites.map((s) => [s, this.pki.issueSiteCert(s)]));
    this.kvApiCerts = new Map(
      (props.kvApis ?? []).map((k) => [k.site, this.pki.issueKvApiCert(k.site, k.dnsNames)]),
    );
    // `cdktf output pki` / `terraform plan` show which certificates the next apply re-issues.
    new TerraformOutput(this, "ready_for_renewal", {
      value: Object.fromEntries([
        ...[...this.routerCerts].map(([s, c]) => [`${s}-router`, c.readyForRenewal]),
        ...[...this.siteCerts].map(([s, c]) => [`${s}-relay`, c.readyForRenewal]),
        ...[...this.kvApiCerts].map(([s, c]) => [`${s}-relay-kv`, c.readyForRenewal]),
      ]),
      description: "Per certificate: true once the next apply re-issues it (its early-renewal window began)",
    });
  }
}
