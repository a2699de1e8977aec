// Admission of TCP connections, before any byte is read (and before a TLS handshake costs CPU):
// at most `maxConnections` open in total and `maxConnectionsPerAddress` from one source. IPv6
// sources count per /64 (one host usually holds a whole /64), IPv4-mapped IPv6 as IPv4. The
// per-source map holds only sources with an open connection, so it is bounded by the total.
// The total is also kept under the process's open-file limit, so that the HTTP server (/metrics,
// /healthz), the logs and certificate reloads always find a descriptor (libuv sheds connections
// silently at EMFILE: nothing would be logged).
import { readdirSync, readFileSync } from "node:fs";
import type { RefusedReason } from "./stats.js";

/** Descriptors kept free for everything but gossip connections (HTTP scrapes, files, DNS). */
export const FD_RESERVE = 32;

/** The key a source address is counted under. */
export function sourceKey(address: string): string {
  if (address.startsWith("::ffff:") && address.includes(".")) return address.slice(7);
  if (!address.includes(":")) return address;
  // IPv6: the first four groups of the expanded address (its /64).
  const zone = address.indexOf("%");
  const bare = zone === -1 ? address : address.slice(0, zone);
  const [head = "", tail] = bare.split("::", 2);
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || "0", 16).toString(16))
    .join(":")}::/64`;
}

/** Soft RLIMIT_NOFILE of this process, from /proc (Linux); null when unknown. */
export function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (!m || m[1] === "unlimited") return null;
    return Number(m[1]);
  } catch {
    return null;
  }
}

/** Descriptors open in this process now (Linux); null when unknown. */
export function openFds(): number | null {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return null;
  }
}

/**
 * The connection cap that fits the open-file limit: what is left of it once the descriptors
 * open now and FD_RESERVE are set aside (at least 1). `configured` when the limit is unknown.
 */
export function fdBoundedMaxConnections(
  configured: number,
  limit = openFileLimit(),
  open = openFds(),
): number {
  if (limit === null || open === null) return configured;
  return Math.max(1, Math.min(configured, limit - open - FD_RESERVE));
}

export class ConnectionAdmission {
  readonly #perSource = new Map<string, number>();
  #open = 0;

  constructor(
    /** Effective total cap (already bounded by the open-file limit). */
    readonly maxConnections: number,
    readonly maxPerSource: number,
  ) {}

  /** Open connections counted. */
  get open(): number {
    return this.#open;
  }

  /** Sources with at least one open connection. */
  get sources(): number {
    return this.#perSource.size;
  }

  /** Counts a new connection from `key`, or says why it is refused (then nothing is counted). */
  admit(key: string): RefusedReason | null {
    if (this.#open >= this.maxConnections) return "max-connections";
    const n = this.#perSource.get(key) ?? 0;
    if (n >= this.maxPerSource) return "max-connections-per-address";
    this.#perSource.set(key, n + 1);
    this.#open++;
    return null;
  }

  /** The admitted connection from `key` is gone. */
  release(key: string): void {
    const n = this.#perSource.get(key);
    if (n === undefined) return;
    if (n <= 1) this.#perSource.delete(key);
    else this.#perSource.set(key, n - 1);
    this.#open--;
  }
}
