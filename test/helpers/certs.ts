// A throw-away PKI for TLS tests, made with the openssl CLI: one CA, a server certificate for
// 127.0.0.1/localhost and a client certificate signed by it (site identity `test`: URI SAN
// spiffe://cross-cloud-relay/site/test), a CA-signed client certificate without a site identity,
// and a "rogue" self-signed pair that no test CA trusts. siteCert issues one per site, shaped
// like RelayPki's. EC P-256 keys keep generation fast (a few tens of ms per key).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Paths of the PEM files written by makeTestPki. */
export interface TestPki {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Signed by the CA, no site identity URI SAN (a router with client auth refuses it). */
  readonly noSiteCert: string;
  readonly noSiteKey: string;
  readonly rogueCert: string;
  readonly rogueKey: string;
}

const DAYS = "2";
const KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd, timeout: 20_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Random positive serial (hex), so no serial file is shared between parallel test files. */
function serial(): string {
  return "0x" + randomBytes(8).toString("hex").replace(/^./, "1");
}

/** `<name>.*` signed by the PKI's own `ca.crt` / `ca.key` in `dir` (see signedByCa). */
async function signedBy(dir: string, name: string, cn: string, ext: string): Promise<void> {
  const ca = { cert: path.join(dir, "ca.crt"), key: path.join(dir, "ca.key") };
  await signedByCa(dir, name, ca, `/CN=${cn}`, ext, DAYS);
}

/** Creates the PKI under `dir` (created if needed) and returns the file paths. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  await openssl(
    [
      "req",
      "-x509",
      ...KEY_ARGS,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      DAYS,
      "-subj",
      "/CN=relay-test-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  await Promise.all([
    signedBy(
      dir,
      "server",
      "localhost",
      "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    ),
    signedBy(dir, "client", "relay-test-client", siteExt("test")),
    signedBy(dir, "nosite", "relay-test-nosite", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"),
    openssl(
      [
        "req",
        "-x509",
        ...KEY_ARGS,
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.crt",
        "-days",
        DAYS,
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
      dir,
    ),
  ]);
  const p = (f: string) => path.join(dir, f);
  return {
    caCert: p("ca.crt"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    noSiteCert: p("nosite.crt"),
    noSiteKey: p("nosite.key"),
    rogueCert: p("rogue.crt"),
    rogueKey: p("rogue.key"),
  };
}

/** Extensions of a site's client certificate: its identity URI SAN (contract/identity.ts). */
function siteExt(site: string): string {
  return `basicConstraints=CA:FALSE\nsubjectAltName=URI:spiffe://cross-cloud-relay/site/${site}\nextendedKeyUsage=clientAuth\n`;
}

/** A client certificate of site `site` signed by the CA of `pki` (written next to it). */
export async function siteCert(pki: TestPki, site: string): Promise<{ cert: string; key: string }> {
  const dir = path.dirname(pki.caCert);
  await signedBy(dir, `site-${site}`, `relay-${site}`, siteExt(site));
  return { cert: path.join(dir, `site-${site}.crt`), key: path.join(dir, `site-${site}.key`) };
}

// ---- rotation (test/tls): several CAs, and certificates issued by any of them ----------------

/** A PEM certificate and its key, as file paths. */
export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

/** A CA of its own under `dir`: `<name>.crt` / `<name>.key`, subject CN=`<name>` unless given. */
export async function makeCa(dir: string, name: string, subject = `/CN=${name}`): Promise<CertPair> {
  await mkdir(dir, { recursive: true });
  await openssl(
    [
      "req",
      "-x509",
      ...KEY_ARGS,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      DAYS,
      "-subj",
      subject,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ],
    dir,
  );
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

/** A key and a certificate `<name>.*` with `subject` and the extensions `ext`, signed by `ca`. */
async function signedByCa(
  dir: string,
  name: string,
  ca: CertPair,
  subject: string,
  ext: string,
  days: number | string,
): Promise<CertPair> {
  await openssl(["req", ...KEY_ARGS, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], dir);
  await writeFile(path.join(dir, `${name}.ext`), ext);
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-set_serial",
      serial(),
      "-days",
      String(days),
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ],
    dir,
  );
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

/**
 * A certificate `<name>.crt` / `<name>.key` signed by `ca`, for 127.0.0.1/localhost, usable as
 * server and client certificate (CN = `name`), valid `days` days (0: it expires at once), with
 * the identity URI SAN of `site` (a router in mutual-TLS mode refuses clients without one).
 */
export async function issueCert(
  dir: string,
  name: string,
  ca: CertPair,
  days: number | string = DAYS,
  site = "test",
): Promise<CertPair> {
  return signedByCa(
    dir,
    name,
    ca,
    `/CN=${name}`,
    `basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost,URI:spiffe://cross-cloud-relay/site/${site}\nextendedKeyUsage=serverAuth,clientAuth\n`,
    days,
  );
}

// ---- deployment-shaped certificates (e2e): the subjects and SANs RelayPki issues --------------

/** What a RelayPki certificate holds (constructs/relay-pki.ts CertProfile), as plain data. */
export interface CertShape {
  readonly commonName: string;
  readonly organization: string;
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
  /** provider-tls `allowed_uses` names (digital_signature, key_encipherment, server_auth, client_auth). */
  readonly allowedUses: readonly string[];
}

const KEY_USAGE: Readonly<Record<string, string>> = {
  digital_signature: "digitalSignature",
  key_encipherment: "keyEncipherment",
};
const EXTENDED_KEY_USAGE: Readonly<Record<string, string>> = {
  server_auth: "serverAuth",
  client_auth: "clientAuth",
};

/** A CA like RelayPki's (CN "<organization> CA", O = organization) as `<name>.crt` / `<name>.key`. */
export function makeShapedCa(dir: string, name: string, organization: string): Promise<CertPair> {
  return makeCa(dir, name, `/CN=${organization} CA/O=${organization}`);
}

/** A certificate of `shape` signed by `ca`, as `<name>.crt` / `<name>.key` under `dir`. */
export function issueShapedCert(
  dir: string,
  name: string,
  ca: CertPair,
  shape: CertShape,
): Promise<CertPair> {
  const san = [...shape.dnsNames.map((d) => `DNS:${d}`), ...shape.uris.map((u) => `URI:${u}`)].join(",");
  const ku = shape.allowedUses.flatMap((u) => (KEY_USAGE[u] ? [KEY_USAGE[u]] : []));
  const eku = shape.allowedUses.flatMap((u) => (EXTENDED_KEY_USAGE[u] ? [EXTENDED_KEY_USAGE[u]] : []));
  const ext = ["basicConstraints=CA:FALSE", `subjectAltName=${san}`];
  if (ku.length > 0) ext.push(`keyUsage=${ku.join(",")}`);
  if (eku.length > 0) ext.push(`extendedKeyUsage=${eku.join(",")}`);
  return signedByCa(
    dir,
    name,
    ca,
    `/CN=${shape.commonName}/O=${shape.organization}`,
    `${ext.join("\n")}\n`,
    DAYS,
  );
}
