// Router tokens for a topology without TLS (routerAuth: tokens), in a state of their own: every
// router reads all of them and every site its own, and this stack reads from nobody, so it can
// never be part of a cycle (the same reason the CA has the pki stack).

import { TlsProvider } from "@cdktf/provider-tls/lib/provider/index.js";
import { TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { RouterTokens } from "../constructs/relay-secrets.js";
import type { Backend } from "../topology/model.js";
import { configureBackend } from "./backend.js";

export interface TokensStackProps {
  readonly sites: readonly string[];
  readonly backend: Backend;
}

export class TokensStack extends TerraformStack {
  readonly tokens: RouterTokens;

  constructor(scope: Construct, id: string, props: TokensStackProps) {
    super(scope, id);
    configureBackend(this, id, props.backend);
    // The tokens are hashes of tls_private_key seeds (constructs/random-secret.ts).
    new TlsProvider(this, "tls");
    this.tokens = new RouterTokens(this, "tokens", { sites: props.sites });
  }
}
