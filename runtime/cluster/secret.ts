// The per-site cluster secret (docs/security/cluster-port.md): its file format, validation, and a
// source that follows the mounted file when Kubernetes updates the Secret volume in place.
//
// Format: text, one secret per line, surrounding whitespace ignored, blank lines ignored. The first
// line is the secret this member proves with; every line is accepted from peers (so a rotation is
// three rolling steps: add the new line second, move it first, drop the old one). Each secret is
// used as-is (its bytes are the HMAC key, nothing is decoded): at least MIN_SECRET_BYTES bytes and
// at least MIN_SECRET_BITS of estimated entropy, so placeholders like "changeme..." are refused.
import { readFileSync, statSync } from "node:fs";
import { ConfigError } from "../../contract/errors.js";
import type { Logger } from "../observability/log.js";

/** What a member proves and verifies with. */
export interface ClusterSecret {
  /** The key this member proves with (the file's first line). */
  readonly current: Buffer;
  /** Keys whose proofs are accepted: current first, then the others (during a rotation). */
  readonly accepted: readonly Buffer[];
}

/** Shortest secret accepted, in bytes. */
export const MIN_SECRET_BYTES = 32;
/** Least estimated entropy of a secret (bits; see estimatedBits). */
export const MIN_SECRET_BITS = 128;
/** Most secrets in one file (current + those still accepted during a rotation). */
export const MAX_SECRETS = 4;
const HOW_TO_MAKE = "make one with `head -c 32 /dev/urandom | base64`";

/**
 * An estimate of a string's entropy from its own byte frequencies (length x Shannon entropy per
 * byte). It over-estimates structured text a little and cannot tell a random-looking string from
 * a random one: it catches placeholders and repeated words, not every weak secret.
 */
export function estimatedBits(b: Uint8Array): number {
  const counts = new Map<number, number>();
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) + 1);
  let perByte = 0;
  for (const n of counts.values()) {
    const p = n / b.length;
    perByte -= p * Math.log2(p);
  }
  return perByte * b.length;
}

const isSpace = (x: number) => x === 0x20 || x === 0x09 || x === 0x0d || x === 0x0b || x === 0x0c;

/** Parses a secret file's content; throws ConfigError naming `source` and saying what to fix. */
export function parseClusterSecret(content: Uint8Array, source: string): ClusterSecret {
  const secrets: Buffer[] = [];
  const buf = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  let line = 0;
  let start = 0;
  while (start <= buf.length) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = buf.length;
    line++;
    let a = start;
    let b = end;
    while (a < b && isSpace(buf[a]!)) a++;
    while (b > a && isSpace(buf[b - 1]!)) b--;
    start = end + 1;
    if (a === b) continue;
    const s = Buffer.from(buf.subarray(a, b));
    if (s.length < MIN_SECRET_BYTES) {
      throw new ConfigError(
        `${source}: line ${line} is ${s.length} bytes, a cluster secret needs at least ${MIN_SECRET_BYTES} (${HOW_TO_MAKE}; a binary secret must be written base64-encoded)`,
      );
    }
    const bits = estimatedBits(s);
    if (bits < MIN_SECRET_BITS) {
      throw new ConfigError(
        `${source}: line ${line} looks too weak for a cluster secret (about ${Math.floor(bits)} bits, at least ${MIN_SECRET_BITS} needed): ${HOW_TO_MAKE}`,
      );
    }
    if (secrets.some((x) => x.equals(s))) throw new ConfigError(`${source}: line ${line} repeats a secret`);
    secrets.push(s);
  }
  if (secrets.length === 0)
    throw new ConfigError(`${source}: no cluster secret in the file (${HOW_TO_MAKE})`);
  if (secrets.length > MAX_SECRETS) {
    throw new ConfigError(
      `${source}: ${secrets.length} secrets, at most ${MAX_SECRETS} (current + old ones)`,
    );
  }
  return { current: secrets[0]!, accepted: secrets };
}

/** Reads and parses a secret file; `setting` names where the path came from in the error. */
export function readClusterSecretFile(path: string, setting = "CLUSTER_SECRET_FILE"): ClusterSecret {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`${setting}: cannot read the cluster secret file ${path}: ${e.code ?? e.message}`);
  }
  return parseClusterSecret(content, `${setting} ${path}`);
}

/**
 * The secret of a mounted file, re-read when the file changes (checked at most every
 * `checkEveryMs`; handshakes are rare). A change that does not parse keeps the last good secret
 * and is logged. The first read throws ConfigError: a node does not start with a bad file.
 */
export function clusterSecretFromFile(
  path: string,
  options: { setting?: string; checkEveryMs?: number; logger?: Logger } = {},
): () => ClusterSecret {
  const setting = options.setting ?? "CLUSTER_SECRET_FILE";
  const checkEveryMs = options.checkEveryMs ?? 1000;
  const stamp = () => {
    try {
      const st = statSync(path);
      return `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return "missing";
    }
  };
  let secret = readClusterSecretFile(path, setting);
  let seen = stamp();
  let checkedAt = Date.now();
  return () => {
    const now = Date.now();
    if (now - checkedAt < checkEveryMs) return secret;
    checkedAt = now;
    const s = stamp();
    if (s === seen) return secret;
    seen = s;
    try {
      secret = readClusterSecretFile(path, setting);
      options.logger?.info(
        { path, secrets: secret.accepted.length },
        "cluster secret file changed: reloaded",
      );
    } catch (err) {
      options.logger?.error(
        { path, err: (err as Error).message },
        "cluster secret file changed but cannot be used: keeping the previous secret",
      );
    }
    return secret;
  };
}
