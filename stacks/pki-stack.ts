// The private CA and every certificate, in a state of their own: routers and sites both read from
// it and it reads from nobody, so it can never be part of a cycle.

import { TlsProvider } from "@cdktf/provider-tls/lib/provider/index.js";
import { TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { type IssuedCert, RelayPki } from "../constructs/relay-pki.js";
import type { Backend } from "../topology/model.js";
import { configureBackend } from "./backend.js";

export interface PkiStackProps {
  readonly sites: readonly string[];
  readonly backend: Backend;
}

export class PkiStack extends TerraformStack {
  readonly pki: RelayPki;
  readonly routerCerts: ReadonlyMap<string, IssuedCert>;
  readonly siteCerts: ReadonlyMap<string, IssuedCert>;

  constructor(scope: Construct, id: string, props: PkiStackProps) {
    super(scope, id);
    configureBackend(this, id, props.backend);
    new TlsProvider(this, "tls");
    this.pki = new RelayPki(this, "pki");
    this.routerCerts = new Map(props.sites.map((s) => [s, this.pki.issueRouterCert(s)]));
    this.siteCerts = new Map(props.sites.map((s) => [s, this.pki.issueSiteCert(s)]));
  }
}
