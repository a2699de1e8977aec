// Proofs of the authenticated mesh handshake (docs/security/cluster-port.md): each side proves it
// knows the site's cluster secret with HMAC-SHA256 over the transcript (codec.ts authTranscript:
// who proves, cluster, both members, both nonces). Fresh nonces on both sides: no replay; the
// direction in the transcript: no reflection of one side's proof as the other's.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Logger } from "../observability/log.js";
import { NONCE_BYTES, PROOF_BYTES } from "./codec.js";
import type { ClusterSecret } from "./secret.js";

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function prove(key: Uint8Array, transcript: Uint8Array): Buffer {
  return createHmac("sha256", key).update(transcript).digest();
}

/** True when `proof` was made over `transcript` with one of the accepted keys (constant time). */
export function verifyProof(secret: ClusterSecret, transcript: Uint8Array, proof: Uint8Array): boolean {
  if (proof.length !== PROOF_BYTES) return false;
  let ok = false;
  for (const key of secret.accepted) if (timingSafeEqual(prove(key, transcript), proof)) ok = true;
  return ok;
}

/**
 * A warning that a stranger can trigger at will: logged at most once per `intervalMs`, with the
 * number of occurrences left out since the last line (`suppressed`).
 */
export class RateLimitedWarning {
  readonly #log: Logger;
  readonly #intervalMs: number;
  #last = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  constructor(log: Logger, intervalMs = 10_000) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  warn(fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.#last < this.#intervalMs) {
      this.#suppressed++;
      return;
    }
    this.#last = now;
    this.#log.warn({ ...fields, suppressed: this.#suppressed }, msg);
    this.#suppressed = 0;
  }
}
