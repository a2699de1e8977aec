// The PKI stack issues each site's client certificate with the site's identity URI SAN and each
// router's server certificate with the router's identity URI SAN beside the DNS name the relay
// nodes check (TLS_SERVER_NAME). Without the site identity in the certificate a router could not
// tell nyc from sfc: the issue's hijack (a client with sfc's valid certificate registering nyc-1's
// address) is refused only because the certificate names the site. Validity and early renewal are
// documented props; `terraform apply` re-issues a certificate in its early-renewal window.

import { App, TerraformStack } from "cdktf";
import {
  DEFAULT_CERT_VALIDITY_HOURS,
  DEFAULT_EARLY_RENEWAL_HOURS,
  RelayPki,
  ROUTER_TLS_SERVER_NAME,
  routerCertProfile,
  siteCertProfile,
} from "../../constructs/relay-pki.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { routerIdentityUri, siteFromIdentityUri, siteIdentityUri } from "../../contract/identity.js";
import { defaultTopology, parseTopology } from "../../topology/index.js";
import { containerEnv, findNamed, resourcesOf, synthTopology, type TfJson } from "./synth.js";

const sites = ["nyc", "sfc", "lab"];
const topology = parseTopology({
  sites: [
    { name: "nyc", cloud: "eks" },
    { name: "sfc", cloud: "gke" },
    { name: "lab", cloud: "existing", kubeconfig: { path: "~/.kube/config" }, egressCidrs: ["192.0.2.8/32"] },
  ],
});
const { stacks } = synthTopology(topology);
const pki = stacks["pki"]!;

/** The CSR a tls_locally_signed_cert signs, found through its cert_request_pem reference. */
function csrOf(cert: TfJson): TfJson {
  const m = /^\$\{tls_cert_request\.([\w-]+)\.cert_request_pem\}$/.exec(cert["cert_request_pem"]);
  expect(m).not.toBeNull();
  return pki["resource"]["tls_cert_request"][m![1]!];
}

function certNamed(commonName: string): TfJson {
  const hits = resourcesOf(pki, "tls_locally_signed_cert").filter(
    ([, c]) => csrOf(c)["subject"][0]["common_name"] === commonName,
  );
  expect(hits).toHaveLength(1);
  return hits[0]![1];
}

describe.each(sites)("%s", (site) => {
  test("the site's client certificate carries spiffe://cross-cloud-relay/site/<site>, client auth only", () => {
    const cert = certNamed(`${site}-relay`);
    const csr = csrOf(cert);
    expect(csr["uris"]).toEqual([siteIdentityUri(site)]);
    expect(csr["uris"].map(siteFromIdentityUri)).toEqual([site]);
    expect(csr["dns_names"]).toEqual([`${site}-relay`]);
    expect(cert["allowed_uses"]).toContain("client_auth");
    expect(cert["allowed_uses"]).not.toContain("server_auth");
    // Exactly the shape the e2e tests can reproduce with openssl.
    const p = siteCertProfile(site);
    expect({
      commonName: csr["subject"][0]["common_name"],
      organization: csr["subject"][0]["organization"],
      dnsNames: csr["dns_names"],
      uris: csr["uris"],
      allowedUses: cert["allowed_uses"],
    }).toEqual({ ...p });
  });

  test("the router's server certificate keeps the TLS_SERVER_NAME DNS SAN and adds the router identity URI", () => {
    const cert = certNamed(`${site}-router`);
    const csr = csrOf(cert);
    expect(csr["dns_names"]).toEqual([ROUTER_TLS_SERVER_NAME, `${site}-router`]);
    expect(csr["uris"]).toEqual([routerIdentityUri(site)]);
    // A router URI is not a site identity: a router certificate cannot pose as a site.
    expect(siteFromIdentityUri(csr["uris"][0])).toBeNull();
    expect(cert["allowed_uses"]).toEqual([...routerCertProfile(site).allowedUses]);
    // What the relay nodes check is what the router certificate carries.
    const dep = findNamed(stacks[`${site}-site`]!, "kubernetes_deployment_v1", `${site}-relay`);
    expect(csr["dns_names"]).toContain(containerEnv(dep).get("TLS_SERVER_NAME")!["value"]);
  });
});

test("every leaf: 90 days, re-issued by apply in its last 30 days; the CA outlives them", () => {
  const leaves = resourcesOf(pki, "tls_locally_signed_cert");
  expect(leaves).toHaveLength(2 * sites.length);
  for (const [, cert] of leaves) {
    expect(cert["validity_period_hours"]).toBe(DEFAULT_CERT_VALIDITY_HOURS);
    expect(cert["early_renewal_hours"]).toBe(DEFAULT_EARLY_RENEWAL_HOURS);
  }
  expect(DEFAULT_CERT_VALIDITY_HOURS).toBe(90 * 24);
  expect(DEFAULT_EARLY_RENEWAL_HOURS).toBe(30 * 24);
  const [, ca] = resourcesOf(pki, "tls_self_signed_cert")[0]!;
  expect(ca["validity_period_hours"]).toBeGreaterThan(DEFAULT_CERT_VALIDITY_HOURS);
  // `cdktf output pki` shows which certificates the next apply re-issues.
  const ready = pki["output"]["ready_for_renewal"]["value"];
  expect(Object.keys(ready).sort()).toEqual(sites.flatMap((s) => [`${s}-relay`, `${s}-router`]).sort());
  for (const v of Object.values<string>(ready))
    expect(v).toMatch(/^\$\{tls_locally_signed_cert\.[\w-]+\.ready_for_renewal\}$/);
});

test("the topology's certificates settings reach every leaf", () => {
  const s = synthTopology(parseTopology({ certificates: { validityHours: 720, earlyRenewalHours: 168 } }))
    .stacks["pki"]!;
  for (const [, cert] of resourcesOf(s, "tls_locally_signed_cert")) {
    expect(cert).toMatchObject({ validity_period_hours: 720, early_renewal_hours: 168 });
  }
  expect(defaultTopology().certificates).toEqual({ validityHours: 2160, earlyRenewalHours: 720 });
});

test.each<[string, ConstructorParameters<typeof RelayPki>[2], RegExp]>([
  [
    "renewal window as long as the lifetime",
    { validityHours: 100, earlyRenewalHours: 100 },
    /earlyRenewalHours \(100\) must be less than validityHours \(100\)/,
  ],
  [
    "a lifetime longer than the CA's",
    { validityHours: 2000, caValidityHours: 1000 },
    /validityHours \(2000\) must not exceed caValidityHours \(1000\)/,
  ],
  ["a zero lifetime", { validityHours: 0 }, /validityHours must be an integer >= 1 \(got 0\)/],
  ["a fractional renewal", { earlyRenewalHours: 1.5 }, /earlyRenewalHours must be an integer >= 0/],
])("RelayPki refuses %s", (_, props, message) => {
  const build = () => new RelayPki(new TerraformStack(new App(), "s"), "p", props);
  expect(build).toThrow(message);
  expect(build).toThrow(ValidationError);
});

test("RelayPki refuses a site name that cannot be an identity", () => {
  const p = new RelayPki(new TerraformStack(new App(), "s"), "p");
  expect(() => p.issueSiteCert("Nyc/x")).toThrow(/RelayPki: site "Nyc\/x" must be a DNS-1123 label/);
});
