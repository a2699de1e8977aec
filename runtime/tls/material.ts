// TLS material (certificate chain, private key, CA bundle), read from files or given inline, and
// checked before anything uses it: an unreadable file, a truncated PEM block, a key that does not
// belong to the certificate or a bundle Node refuses is an error naming the file, so a bad or
// half-written rotation can never replace material that works (see ./watch.ts).
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";

/**
 * A PEM value: a Buffer or a string holding PEM text ("-----BEGIN …") is used as is; any other
 * string is a file path, read again on every check so rotated files are picked up.
 */
export type PemSource = string | Buffer;

/** Where the material comes from. The router needs cert and key; a client may have only a CA. */
export interface TlsSources {
  /** PEM certificate chain, leaf first. */
  readonly cert?: PemSource;
  /** PEM private key of the leaf certificate (unencrypted). */
  readonly key?: PemSource;
  /** PEM CA bundle (one or more certificates). */
  readonly ca?: PemSource;
}

/** One read of the sources, not yet checked. */
export interface RawTlsMaterial {
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  readonly ca: Buffer | null;
  /** sha256 over the three contents: equal hashes = same material. */
  readonly hash: string;
}

/** Material that passed every check. */
export interface TlsMaterial extends RawTlsMaterial {
  /** The leaf certificate; null without `cert`. */
  readonly leaf: X509Certificate | null;
  /** notAfter of the leaf certificate, ms since the epoch; null without `cert`. */
  readonly notAfter: number | null;
  /** Certificates in the CA bundle. */
  readonly caCount: number;
  /** The CA bundle's certificates, parsed. */
  readonly caCerts: readonly X509Certificate[];
  /** What tls.createSecureContext / server.setSecureContext take. */
  readonly contextOptions: tls.SecureContextOptions;
  /** Built once per material, shared by every connection made with it. */
  readonly secureContext: tls.SecureContext;
}

export type TlsPart = "cert" | "key" | "ca";

/** Material that cannot be used; `part` says which file, `source` names it (path or "inline"). */
export class TlsMaterialError extends Error {
  override readonly name = "TlsMaterialError";
  constructor(
    readonly part: TlsPart,
    readonly source: string,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(`TLS ${PART_NAMES[part]} ${source}: ${message}`, options);
  }
}

const PART_NAMES: Record<TlsPart, string> = { cert: "certificate", key: "key", ca: "CA bundle" };

export function isPemText(value: string): boolean {
  return value.includes("-----BEGIN");
}

function describe(source: PemSource): string {
  return typeof source === "string" && !isPemText(source) ? source : "(inline)";
}

function readPart(part: TlsPart, source: PemSource | undefined): Buffer | null {
  if (source === undefined) return null;
  if (Buffer.isBuffer(source)) return source;
  if (isPemText(source)) return Buffer.from(source);
  try {
    return readFileSync(source);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TlsMaterialError(part, source, `cannot be read (${e.code ?? e.message})`, { cause: err });
  }
}

/** Reads every source once. Throws TlsMaterialError when a file cannot be read. */
export function readTlsMaterial(sources: TlsSources): RawTlsMaterial {
  const cert = readPart("cert", sources.cert);
  const key = readPart("key", sources.key);
  const ca = readPart("ca", sources.ca);
  const h = createHash("sha256");
  for (const b of [cert, key, ca]) {
    // Length-prefixed, so moving bytes from one file to the next changes the hash.
    h.update(String(b?.length ?? -1)).update(":");
    if (b) h.update(b);
  }
  return { cert, key, ca, hash: h.digest("hex") };
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * The complete PEM blocks of `text`. A BEGIN line without its END (a file cut short by a writer
 * that has not finished) is an error, not a shorter bundle.
 */
function pemBlocks(part: TlsPart, source: string, text: string): { label: string; pem: string }[] {
  const blocks = [...text.matchAll(BLOCK)].map((m) => ({ label: m[1]!, pem: m[0] }));
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  if (begins === 0) throw new TlsMaterialError(part, source, "holds no PEM block");
  if (begins !== blocks.length) {
    throw new TlsMaterialError(part, source, "holds an incomplete PEM block (truncated or half-written?)");
  }
  return blocks;
}

function certificates(part: TlsPart, source: string, buf: Buffer): X509Certificate[] {
  const blocks = pemBlocks(part, source, buf.toString("latin1")).filter((b) => b.label === "CERTIFICATE");
  if (blocks.length === 0) throw new TlsMaterialError(part, source, "holds no CERTIFICATE block");
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b.pem);
    } catch (err) {
      throw new TlsMaterialError(
        part,
        source,
        `certificate #${i + 1} does not parse: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  });
}

/** Checks raw material; returns it ready to use or throws TlsMaterialError naming the bad part. */
export function checkTlsMaterial(raw: RawTlsMaterial, sources: TlsSources): TlsMaterial {
  let leaf: X509Certificate | null = null;
  if (raw.cert) leaf = certificates("cert", describe(sources.cert!), raw.cert)[0]!;
  if ((raw.cert === null) !== (raw.key === null)) {
    const missing: TlsPart = raw.cert === null ? "cert" : "key";
    throw new TlsMaterialError(missing, "(none)", "is required with the other of certificate/key");
  }
  if (raw.key && leaf) {
    const src = describe(sources.key!);
    pemBlocks("key", src, raw.key.toString("latin1"));
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey(raw.key);
    } catch (err) {
      throw new TlsMaterialError("key", src, `does not parse: ${(err as Error).message}`, { cause: err });
    }
    if (!leaf.checkPrivateKey(key)) {
      throw new TlsMaterialError("key", src, `does not belong to the certificate (${leaf.subject.trim()})`);
    }
  }
  const caCerts = raw.ca ? certificates("ca", describe(sources.ca!), raw.ca) : [];
  const contextOptions: tls.SecureContextOptions = {
    ...(raw.cert ? { cert: raw.cert } : {}),
    ...(raw.key ? { key: raw.key } : {}),
    ...(raw.ca ? { ca: raw.ca } : {}),
  };
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext(contextOptions);
  } catch (err) {
    // Our own checks passed but OpenSSL still refuses (an unsupported key type, ...).
    const part: TlsPart = raw.key ? "key" : raw.cert ? "cert" : "ca";
    throw new TlsMaterialError(
      part,
      describe(sources[part]!),
      `refused by OpenSSL: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const notAfter = leaf ? Date.parse(leaf.validTo) : null;
  return { ...raw, leaf, notAfter, caCount: caCerts.length, caCerts, contextOptions, secureContext };
}

/** Reads and checks in one go. */
export function loadTlsMaterial(sources: TlsSources): TlsMaterial {
  return checkTlsMaterial(readTlsMaterial(sources), sources);
}

/**
 * Whether a peer's verified certificate chain (as a TLSSocket gives it: the leaf, then
 * `issuerCertificate` up to the root it was verified against) is still anchored in `m`'s CA
 * bundle: one of its certificates is in the bundle, or is issued and signed by one in it (a CA
 * re-issued with the same key keeps its links). null when there is no peer certificate.
 */
export function chainTrustedBy(peer: X509Certificate | undefined, m: TlsMaterial): boolean | null {
  if (peer === undefined) return null;
  const bundle = new Set(m.caCerts.map((c) => c.fingerprint256));
  const seen = new Set<string>();
  for (let c: X509Certificate | undefined = peer; c !== undefined && !seen.has(c.fingerprint256); ) {
    seen.add(c.fingerprint256);
    if (bundle.has(c.fingerprint256)) return true;
    for (const ca of m.caCerts) if (c.checkIssued(ca) && c.verify(ca.publicKey)) return true;
    c = c.issuerCertificate;
  }
  return false;
}

/** A short description for logs. */
export function describeMaterial(m: TlsMaterial): Record<string, unknown> {
  return {
    ...(m.leaf
      ? {
          subject: m.leaf.subject.replace(/\n/g, ", "),
          issuer: m.leaf.issuer.replace(/\n/g, ", "),
          serial: m.leaf.serialNumber,
          notAfter: m.leaf.validTo,
        }
      : {}),
    caCertificates: m.caCount,
    sha256: m.hash.slice(0, 16),
  };
}
