// Reloads TLS material when its files change, without a restart. Kubernetes updates a Secret
// volume in place by writing a new timestamped directory and swapping the `..data` symlink to it
// (each `tls.crt` is a symlink through `..data`), so a watch on one file misses the change; we
// poll instead: read the files, compare a content hash, and check new content before using it.
// Bad content (a key that does not match, a truncated file, an expired certificate) never
// replaces working material: the old one stays, the refusal is logged and counted once per
// distinct content. Content that changes between two reads (a writer still at work, or a
// cert/key pair read across a swap) is only retried at the next poll.
import { EventEmitter } from "node:events";
import type tls from "node:tls";
import type { Logger } from "../observability/log.js";
import {
  checkTlsMaterial,
  describeMaterial,
  type RawTlsMaterial,
  readTlsMaterial,
  type TlsMaterial,
  TlsMaterialError,
  type TlsSources,
} from "./material.js";

/** Default period of the file check. */
export const DEFAULT_TLS_RELOAD_INTERVAL_MS = 10_000;

export interface TlsReloaderOptions {
  readonly sources: TlsSources;
  /** Period of the background check, ms; 0 = no timer (checks happen only on `check()`/`material()`). @default DEFAULT_TLS_RELOAD_INTERVAL_MS */
  readonly intervalMs?: number;
  readonly log: Logger;
}

/** What a check found. */
export type TlsCheckResult =
  /** First load, or new content that passed every check and is now in use. */
  | "loaded"
  | "unchanged"
  /** New content refused; the previous material (if any) stays in use. */
  | "rejected"
  /** The content changed while being read; retried at the next check. */
  | "in-flux";

export interface TlsReloadStats {
  /** Successful reloads after the first load. */
  readonly reloads: number;
  /** Refused new contents (each distinct content counted once). */
  readonly rejected: number;
  /** notAfter of the certificate in use, ms since the epoch; null without one. */
  readonly notAfter: number | null;
}

export interface TlsReloaderEvents {
  /** New material is in use (`previous` null on the first load). */
  loaded: [material: TlsMaterial, previous: TlsMaterial | null];
  rejected: [error: Error];
}

export class TlsReloader extends EventEmitter<TlsReloaderEvents> {
  readonly sources: TlsSources;
  readonly intervalMs: number;
  readonly #log: Logger;
  #current: TlsMaterial | null = null;
  /** Hash of the last refused content, so it is counted and logged once. */
  #rejectedHash: string | null = null;
  #lastError: Error | null = null;
  #reloads = 0;
  #rejected = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: TlsReloaderOptions) {
    super();
    this.sources = options.sources;
    this.intervalMs = options.intervalMs ?? DEFAULT_TLS_RELOAD_INTERVAL_MS;
    this.#log = options.log;
  }

  /** The material in use; null until a first load succeeded. */
  get current(): TlsMaterial | null {
    return this.#current;
  }

  get stats(): TlsReloadStats {
    return { reloads: this.#reloads, rejected: this.#rejected, notAfter: this.#current?.notAfter ?? null };
  }

  /**
   * Checks the files, then returns the material to use: the new one if it changed and passed, else
   * the one in use. Throws the last error when no material was ever loaded.
   */
  material(): TlsMaterial {
    this.check();
    if (this.#current) return this.#current;
    throw this.#lastError ?? new Error("TLS material not loaded");
  }

  /** Starts the background check (no-op with intervalMs 0 or when started). */
  start(): this {
    if (this.intervalMs > 0 && this.#timer === null) {
      this.#timer = setInterval(() => this.check(), this.intervalMs);
      this.#timer.unref();
    }
    return this;
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One check of the files; never throws. */
  check(): TlsCheckResult {
    const first = this.#attempt();
    if (first.kind === "unchanged") return "unchanged";
    if (first.kind === "ok") return this.#use(first.material);
    // A failure may be a read across a change: read again at once; different content = in flux.
    const second = this.#attempt();
    if (second.kind === "unchanged") return "unchanged";
    if (second.kind === "ok") return this.#use(second.material);
    if (first.key !== second.key) return "in-flux";
    return this.#refuse(second.key, second.error);
  }

  #attempt():
    | { kind: "unchanged" }
    | { kind: "ok"; material: TlsMaterial }
    | { kind: "bad"; key: string; error: Error } {
    let raw: RawTlsMaterial;
    try {
      raw = readTlsMaterial(this.sources);
    } catch (err) {
      return { kind: "bad", key: `unreadable:${(err as Error).message}`, error: err as Error };
    }
    if (raw.hash === this.#current?.hash) {
      this.#rejectedHash = null; // back to the material in use: a later bad content counts again
      return { kind: "unchanged" };
    }
    if (raw.hash === this.#rejectedHash) return { kind: "bad", key: raw.hash, error: this.#lastError! };
    try {
      const material = checkTlsMaterial(raw, this.sources);
      // A replacement must be usable now; at first load an expired certificate is only logged
      // (peers will say so), since there is nothing better to serve.
      if (this.#current && material.notAfter !== null && material.notAfter <= Date.now()) {
        throw new TlsMaterialError(
          "cert",
          typeof this.sources.cert === "string" ? this.sources.cert : "(inline)",
          `expired on ${material.leaf!.validTo}`,
        );
      }
      return { kind: "ok", material };
    } catch (err) {
      return { kind: "bad", key: raw.hash, error: err as Error };
    }
  }

  #use(material: TlsMaterial): TlsCheckResult {
    const previous = this.#current;
    this.#current = material;
    this.#rejectedHash = null;
    this.#lastError = null;
    if (previous) {
      this.#reloads++;
      this.#log.info(
        { tls: describeMaterial(material), previous: describeMaterial(previous) },
        "TLS material reloaded",
      );
    } else {
      const expired = material.notAfter !== null && material.notAfter <= Date.now();
      this.#log[expired ? "warn" : "debug"](
        { tls: describeMaterial(material) },
        expired ? "TLS certificate loaded but already expired" : "TLS material loaded",
      );
    }
    this.emit("loaded", material, previous);
    return "loaded";
  }

  #refuse(key: string, error: Error): TlsCheckResult {
    if (key === this.#rejectedHash) return "rejected";
    this.#rejectedHash = key;
    this.#lastError = error;
    this.#rejected++;
    this.#log.warn(
      {
        err: error.message,
        ...(this.#current ? { keeping: describeMaterial(this.#current) } : {}),
      },
      this.#current ? "TLS reload refused: keeping the material in use" : "TLS material cannot be loaded",
    );
    this.emit("rejected", error);
    return "rejected";
  }
}

/**
 * Makes every material `reloader` loads after the first one the context of `server`'s new
 * handshakes (setSecureContext; established connections keep theirs), then calls `then` with it.
 * Checked material should never fail to install; if it does, the error is logged and never leaves
 * the reloader's timer.
 */
export function serveReloads(
  reloader: TlsReloader,
  server: tls.Server,
  log: Logger,
  then?: (m: TlsMaterial) => void,
): void {
  reloader.on("loaded", (m, previous) => {
    if (!previous) return;
    try {
      server.setSecureContext(m.contextOptions);
      then?.(m);
    } catch (err) {
      log.error({ err: (err as Error).message }, "TLS reload: installing the new material failed");
    }
  });
}
