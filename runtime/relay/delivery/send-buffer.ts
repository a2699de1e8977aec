// Origin side of the delivery guarantee: every cross-site message stays here, per destination
// site ("lane"), until that site reports it stable (delivered by all its current members). Bounded
// per site in bytes and messages, so one slow or gone site cannot refuse traffic to the others,
// and in total. When a lane is full the channel refuses new messages for that site
// (back-pressure); it never drops one, except all of a site's backlog at once when the channel
// declares the site gone (`dropSite`). Pure: no I/O, no timers.
import { ConfigError } from "../../../contract/errors.js";
import type { LatencyCounts } from "./latency.js";

export interface SendBufferLimits {
  /** Bytes of buffered envelopes per destination site. @default 32 MiB */
  readonly maxBytes: number;
  /**
   * Buffered envelopes per destination site. @default 32768: a message stays until the remote
   * site reports it stable, about one round trip plus two ack ticks (2 x 70 ms one way + 2 x 50
   * ms = 240 ms across a continent); at the target 90,000 msgs/s that is 21,600 messages, and
   * 1.5 x for jitter gives 32,768. 1 KB messages at 60,000 msgs/s fill ~25 MB of maxBytes then.
   */
  readonly maxMessages: number;
  /** Bytes of buffered envelopes over all sites. @default 128 MiB */
  readonly maxTotalBytes: number;
  /** Destination sites with a lane at once (a site beyond it is refused). @default 64 */
  readonly maxSites: number;
}

export const DEFAULT_SEND_BUFFER_LIMITS: SendBufferLimits = {
  maxBytes: 32 * 1024 * 1024,
  maxMessages: 32_768,
  maxTotalBytes: 128 * 1024 * 1024,
  maxSites: 64,
};

/** Lane numbers of dropped sites remembered, so a site that returns continues its numbering. */
const MAX_REMEMBERED_LANES = 1024;

/** What `dropSite` discarded. */
export interface DroppedBacklog {
  readonly site: string;
  readonly messages: number;
  readonly bytes: number;
  /** Lane seqs discarded (inclusive); empty when the lane held nothing. */
  readonly from: number;
  readonly to: number;
}

export interface Outgoing {
  /**
   * The message as first sent on its lane (its encoding, set by the engine's first send; null
   * before): a re-send decodes it and encodes it again with the lane's current fields.
   */
  bytes: Buffer | null;
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
  /** site -> next lane seq of a dropped lane (insertion order = age, for the bound). */
  readonly #dropped = new Map<string, number>();
  #bytes = 0;
  #messages = 0;

  constructor(limits: Partial<SendBufferLimits> = {}) {
    this.limits = { ...DEFAULT_SEND_BUFFER_LIMITS, ...limits };
    const l = this.limits;
    if (!(l.maxBytes > 0) || !(l.maxMessages >= 1) || !(l.maxTotalBytes > 0) || !(l.maxSites >= 1)) {
      throw new ConfigError("send buffer limits must be positive");
    }
  }

  get bytes(): number {
    return this.#bytes;
  }

  get messages(): number {
    return this.#messages;
  }

  /** True when some lane (or the total) has no room left (back-pressure somewhere). */
  get full(): boolean {
    if (this.#bytes >= this.limits.maxTotalBytes) return true;
    for (const lane of this.#lanes.values()) if (this.#laneFull(lane)) return true;
    return false;
  }

  /** True when `site`'s lane (or the total) has no room left. */
  fullFor(site: string): boolean {
    if (this.#bytes >= this.limits.maxTotalBytes && this.#messages > 0) return true;
    const lane = this.#lanes.get(site);
    return lane !== undefined && this.#laneFull(lane);
  }

  /**
   * Room for one message of `size` bytes on each of `sites`? An empty lane takes any one message
   * (no deadlock on a message larger than the budget); a new site needs a free lane slot.
   */
  canTake(size: number, sites: readonly string[]): boolean {
    if (this.#messages > 0 && this.#bytes + size * sites.length > this.limits.maxTotalBytes) return false;
    let newLanes = 0;
    for (const site of sites) {
      const lane = this.#lanes.get(site);
      if (!lane) {
        newLanes++;
        continue;
      }
      const messages = lane.queue.length - lane.head;
      if (messages === 0) continue;
      if (messages + 1 > this.limits.maxMessages || lane.bytes + size > this.limits.maxBytes) return false;
    }
    return newLanes === 0 || this.#lanes.size + newLanes <= this.limits.maxSites;
  }

  /** The sites among `sites` whose lane refuses a message of `size` (for the error message). */
  refusingSites(size: number, sites: readonly string[]): string[] {
    return sites.filter((s) => !this.canTake(size, [s]));
  }

  /** Lane fill level of `site` as the larger of its message and byte fractions (0 when none). */
  fillOf(site: string): number {
    const lane = this.#lanes.get(site);
    if (!lane) return 0;
    const messages = lane.queue.length - lane.head;
    return Math.max(messages / this.limits.maxMessages, lane.bytes / this.limits.maxBytes);
  }

  /**
   * Forgets `site`: its whole backlog is discarded (the channel declared it gone). Its lane
   * numbering is remembered, so a member of it that returns sees the jump and is told what it
   * missed instead of mistaking new messages for old ones.
   */
  dropSite(site: string): DroppedBacklog {
    const lane = this.#lanes.get(site);
    if (!lane) return { site, messages: 0, bytes: 0, from: 0, to: 0 };
    const messages = lane.queue.length - lane.head;
    const from = lane.queue[lane.head]?.laneSeq ?? 0;
    this.#bytes -= lane.bytes;
    this.#messages -= messages;
    this.#lanes.delete(site);
    this.#dropped.delete(site);
    this.#dropped.set(site, lane.nextSeq);
    if (this.#dropped.size > MAX_REMEMBERED_LANES) {
      const oldest = this.#dropped.keys().next().value;
      if (oldest !== undefined) this.#dropped.delete(oldest);
    }
    return { site, messages, bytes: lane.bytes, from, to: messages > 0 ? lane.nextSeq - 1 : 0 };
  }

  #laneFull(lane: LaneState): boolean {
    return lane.queue.length - lane.head >= this.limits.maxMessages || lane.bytes >= this.limits.maxBytes;
  }

  /** Buffers a message of `size` bytes for `site`; returns the buffered entry (with its lane seq). */
  add(site: string, size: number, now: number): Outgoing {
    const lane = this.#lane(site);
    const out: Outgoing = {
      bytes: null,
      laneSeq: lane.nextSeq++,
      size,
      createdAt: now,
      sentAt: now,
      sends: 0,
    };
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

  /**
   * `site` delivered everything up to `seq`: drops it. Returns how many messages were freed.
   * With `latency`, each freed message's time since it was sent (`now - createdAt`) is counted.
   */
  stable(site: string, seq: number, latency: LatencyCounts | null = null, now = 0): number {
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
      latency?.record(now - o.createdAt);
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
      const nextSeq = this.#dropped.get(site) ?? 1;
      this.#dropped.delete(site);
      lane = { site, nextSeq, queue: [], head: 0, bytes: 0, stable: nextSeq - 1 };
      this.#lanes.set(site, lane);
    }
    return lane;
  }
}
