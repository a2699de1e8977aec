// Origin side of the delivery guarantee: every cross-site message stays here, per destination
// site ("lane"), until that site reports it stable (delivered by all its current members). Bounded
// in bytes and messages: when full the channel refuses new messages (back-pressure), it never
// drops one. Pure: no I/O, no timers.
import { ConfigError } from "../../../contract/errors.js";
import type { Envelope } from "../envelope.js";

export interface SendBufferLimits {
  /** Bytes of buffered envelopes (all lanes). @default 32 MiB */
  readonly maxBytes: number;
  /** Buffered envelopes (all lanes). @default 20000 */
  readonly maxMessages: number;
}

export const DEFAULT_SEND_BUFFER_LIMITS: SendBufferLimits = {
  maxBytes: 32 * 1024 * 1024,
  maxMessages: 20_000,
};

export interface Outgoing {
  /** The envelope without its lane (added when it is sent). */
  readonly env: Envelope;
  readonly laneSeq: number;
  readonly size: number;
  readonly createdAt: number;
  sentAt: number;
  sends: number;
}

interface LaneState {
  readonly site: string;
  nextSeq: number;
  /** Unstable messages, oldest first, from index `head` (dropped ones are cut off in batches). */
  queue: Outgoing[];
  head: number;
  bytes: number;
  stable: number;
}

export interface LaneStats {
  readonly site: string;
  readonly messages: number;
  readonly bytes: number;
  readonly nextSeq: number;
  readonly stable: number;
  readonly oldestSentAt: number | null;
  readonly oldestCreatedAt: number | null;
}

export class SendBuffer {
  readonly limits: SendBufferLimits;
  readonly #lanes = new Map<string, LaneState>();
  #bytes = 0;
  #messages = 0;

  constructor(limits: Partial<SendBufferLimits> = {}) {
    this.limits = { ...DEFAULT_SEND_BUFFER_LIMITS, ...limits };
    if (!(this.limits.maxBytes > 0) || !(this.limits.maxMessages >= 1)) {
      throw new ConfigError("send buffer limits must be positive");
    }
  }

  get bytes(): number {
    return this.#bytes;
  }

  get messages(): number {
    return this.#messages;
  }

  /** True when no new message may be added (back-pressure). */
  get full(): boolean {
    return this.#bytes >= this.limits.maxBytes || this.#messages >= this.limits.maxMessages;
  }

  /** Room for a message of `size` bytes? An empty buffer takes any one message (no deadlock). */
  canTake(size: number): boolean {
    if (this.#messages === 0) return true;
    return this.#messages + 1 <= this.limits.maxMessages && this.#bytes + size <= this.limits.maxBytes;
  }

  /** Buffers `env` for `site`; returns the buffered entry (with its lane seq). */
  add(site: string, env: Envelope, size: number, now: number): Outgoing {
    const lane = this.#lane(site);
    const out: Outgoing = { env, laneSeq: lane.nextSeq++, size, createdAt: now, sentAt: now, sends: 0 };
    lane.queue.push(out);
    lane.bytes += size;
    this.#bytes += size;
    this.#messages++;
    return out;
  }

  /** Oldest lane seq still buffered for `site` (what receivers may start from). */
  lowOf(site: string): number {
    const lane = this.#lanes.get(site);
    if (!lane) return 1;
    return lane.queue[lane.head]?.laneSeq ?? lane.nextSeq;
  }

  /** `site` delivered everything up to `seq`: drops it. Returns how many messages were freed. */
  stable(site: string, seq: number): number {
    const lane = this.#lanes.get(site);
    if (!lane || seq <= lane.stable) return 0;
    lane.stable = Math.min(seq, lane.nextSeq - 1);
    let freed = 0;
    while (lane.head < lane.queue.length && lane.queue[lane.head]!.laneSeq <= seq) {
      const o = lane.queue[lane.head++]!;
      lane.bytes -= o.size;
      this.#bytes -= o.size;
      this.#messages--;
      freed++;
    }
    if (lane.head > 1024 || lane.head === lane.queue.length) {
      lane.queue = lane.queue.slice(lane.head);
      lane.head = 0;
    }
    return freed;
  }

  /** Unstable messages of `site`, oldest first (for retransmission). */
  pending(site: string): readonly Outgoing[] {
    const lane = this.#lanes.get(site);
    return lane ? lane.queue.slice(lane.head) : [];
  }

  sites(): string[] {
    return [...this.#lanes.keys()].sort();
  }

  lanes(): LaneStats[] {
    return this.sites().map((site) => {
      const l = this.#lanes.get(site)!;
      return {
        site,
        messages: l.queue.length - l.head,
        bytes: l.bytes,
        nextSeq: l.nextSeq,
        stable: l.stable,
        oldestSentAt: l.queue[l.head]?.sentAt ?? null,
        oldestCreatedAt: l.queue[l.head]?.createdAt ?? null,
      };
    });
  }

  #lane(site: string): LaneState {
    let lane = this.#lanes.get(site);
    if (!lane) {
      lane = { site, nextSeq: 1, queue: [], head: 0, bytes: 0, stable: 0 };
      this.#lanes.set(site, lane);
    }
    return lane;
  }
}
