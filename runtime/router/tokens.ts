// Token mode (`--auth-tokens <dir>`): one file per site, file name = site, content = its token.
// A file is read again when its mtime or size changes (a Kubernetes Secret volume is updated in
// place), so tokens rotate without a restart. Comparison is constant-time (SHA-256 of both, then
// timingSafeEqual, so not even the length leaks).
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { MAX_TOKEN_BYTES } from "../protocol/auth.js";

const SITE_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

interface Cached {
  readonly mtimeMs: number;
  readonly size: number;
  /** SHA-256 of the token, or null when the file holds no usable token. */
  readonly digest: Buffer | null;
}

function sha256(b: Uint8Array): Buffer {
  return createHash("sha256").update(b).digest();
}

export class TokenStore {
  readonly dir: string;
  readonly #cache = new Map<string, Cached>();

  constructor(dir: string) {
    this.dir = dir;
  }

  /** True when `token` is the token of `site`. Never throws; a missing or unreadable file is false. */
  verify(site: string, token: Uint8Array): boolean {
    const expected = this.#digestOf(site);
    if (expected === null) return false;
    return timingSafeEqual(expected, sha256(token));
  }

  #digestOf(site: string): Buffer | null {
    // The site names a file: only DNS-1123 labels, so nothing like `../x` or `.hidden`.
    if (!SITE_LABEL.test(site)) return null;
    const file = path.join(this.dir, site);
    try {
      const st = statSync(file);
      if (!st.isFile()) return null;
      const hit = this.#cache.get(site);
      if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.digest;
      let digest: Buffer | null = null;
      if (st.size <= MAX_TOKEN_BYTES + 2) {
        // A trailing newline (echo > file, kubectl create secret --from-file) is not part of the token.
        const token = readFileSync(file, "utf8").replace(/\r?\n$/, "");
        if (token.length > 0 && Buffer.byteLength(token) <= MAX_TOKEN_BYTES)
          digest = sha256(Buffer.from(token));
      }
      // Bounded: keys are names of files that exist in the directory.
      if (this.#cache.size >= 4096) this.#cache.clear();
      this.#cache.set(site, { mtimeMs: st.mtimeMs, size: st.size, digest });
      return digest;
    } catch {
      return null;
    }
  }
}
