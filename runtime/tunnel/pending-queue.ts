// Frames handed to the client while no router is registered. Bounded in bytes: when full, the
// caller gets a typed error instead of the frame being dropped or memory growing without limit.
import { TunnelError } from "./errors.js";

export class PendingQueue {
  readonly maxBytes: number;
  #frames: Buffer[] = [];
  #bytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get length(): number {
    return this.#frames.length;
  }

  /** Appends a frame, or throws TUNNEL_QUEUE_FULL if it would exceed maxBytes (the queue is unchanged). */
  push(frame: Buffer): void {
    if (this.#bytes + frame.length > this.maxBytes) {
      throw new TunnelError(
        "TUNNEL_QUEUE_FULL",
        `no router is registered and the pending queue is full (${this.#bytes} + ${frame.length} bytes > maxPendingBytes ${this.maxBytes})`,
      );
    }
    this.#frames.push(frame);
    this.#bytes += frame.length;
  }

  /** Removes and returns every frame, oldest first. */
  drain(): Buffer[] {
    const out = this.#frames;
    this.#frames = [];
    this.#bytes = 0;
    return out;
  }

  clear(): void {
    this.drain();
  }
}
