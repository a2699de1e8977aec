// Router counters as plain numbers: the hot path bumps array slots, never a prom-client call.
// Prometheus reads them through collect() callbacks (./metrics.ts); `snapshot()` serves /healthz,
// tests and the programmatic API.

/** Why a frame was not delivered (metric label `reason`). */
export type UndeliveredReason =
  /** MESSAGE to a group nobody is registered in. */
  | "unknown-group"
  /** Unicast MESSAGE to a member not registered in the group. */
  | "unknown-dest"
  /** The receiving connection was already closing. */
  | "receiver-closed"
  /** Queued for a connection that was then lost (in-flight frames at close time). */
  | "receiver-lost"
  /** Queued for a receiver disconnected for staying over --max-queue too long. */
  | "slow-receiver"
  /** A multicast copy for a receiver over --max-queue for longer than --congestion-grace. */
  | "receiver-congested";

/** Frames the router received and deliberately did not act on (metric `ignored_frames_total`). */
export type IgnoredReason =
  | "response-type"
  | "missing-group"
  | "missing-address"
  /** An AUTH frame the router does not need (open mode, or the certificate's own site). */
  | "auth-frame";

/**
 * Why a connection or a REGISTER was refused by a limit (metric `refused_total{reason}`, shared with
 * authorization, whose reasons are policy.ts AuthzRefusal).
 */
export type RefusedReason =
  /** Accept: --max-connections open already (or the open-file limit's share of it). */
  | "max-connections"
  /** Accept: --max-connections-per-address open from that address already. */
  | "max-connections-per-address"
  /** REGISTER: the connection holds MAX_REGISTRATIONS_PER_CONNECTION already. */
  | "too-many-registrations"
  /** REGISTER: it would create a group beyond --max-groups. */
  | "max-groups"
  /** REGISTER: the router holds --max-registrations already. */
  | "max-registrations"
  /** REGISTER: group name longer than --max-group-name. */
  | "group-name-too-long"
  /** REGISTER: logical name longer than --max-logical-name. */
  | "logical-name-too-long";

export type CloseReason =
  | "graceful"
  | "eof"
  | "error"
  | "decode-error"
  | "expired"
  | "slow-receiver"
  | "shutdown"
  /** After a TLS reload, the new CA bundle no longer trusts the connection's client certificate. */
  | "tls-untrusted"
  /** Authentication or authorization refused (policy.ts; counted in `refused` by reason). */
  | "refused"
  /** No complete frame within --first-frame-timeout of the accept. */
  | "first-frame-timeout"
  /** A frame not complete within --frame-timeout of its first byte (slowloris). */
  | "frame-timeout"
  /** Held the most partial-frame bytes when all of them together went over --max-partial-bytes. */
  | "partial-frame-memory";

/** Metric label per GossipType wire value; index 8 = the GRACEFUL_CLOSE marker. */
export const TYPE_NAMES: readonly string[] = [
  "REGISTER",
  "UNREGISTER",
  "GET_MBRS",
  "GET_MBRS_RSP",
  "MESSAGE",
  "HEARTBEAT",
  "SUSPECT",
  "GET_MBRS_RSP_LAST",
  "GRACEFUL_CLOSE",
];

/** A point-in-time copy of every counter. */
export interface RouterStats {
  readonly connections: number;
  readonly connectionsTotal: number;
  readonly groups: number;
  readonly registrations: number;
  readonly framesIn: Readonly<Record<string, number>>;
  readonly bytesIn: Readonly<Record<string, number>>;
  readonly framesOut: Readonly<Record<string, number>>;
  readonly bytesOut: Readonly<Record<string, number>>;
  readonly undelivered: Readonly<Record<string, number>>;
  readonly ignored: Readonly<Record<string, number>>;
  readonly decodeErrors: Readonly<Record<string, number>>;
  readonly closes: Readonly<Record<string, number>>;
  /** Refusals by reason: limits (RefusedReason) and authorization (policy.ts AuthzRefusal). */
  readonly refused: Readonly<Record<string, number>>;
  readonly backpressurePauses: number;
  readonly congestionSheds: number;
  readonly tlsHandshakeTimeouts: number;
  readonly slowReceiverDisconnects: number;
  readonly expiries: number;
  readonly tlsRejected: number;
}

function bump(map: Map<string, number>, key: string, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

function byType(arr: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < arr.length; i++) if (arr[i]! > 0) out[TYPE_NAMES[i]!] = arr[i]!;
  return out;
}

/** Mutable counters owned by one router. */
/** Bounds (frames) of relay_router_flush_frames: 1, 2, 4 ... 1024 (index i = 2^i). */
export const FLUSH_FRAME_BOUNDS: readonly number[] = Array.from({ length: 11 }, (_, i) => 2 ** i);

export class RouterCounters {
  /** Indexed by GossipType; 8 = GRACEFUL_CLOSE marker. */
  readonly framesIn = new Float64Array(9);
  readonly bytesIn = new Float64Array(9);
  readonly framesOut = new Float64Array(9);
  readonly bytesOut = new Float64Array(9);
  readonly undelivered = new Map<string, number>();
  readonly ignored = new Map<string, number>();
  readonly decodeErrors = new Map<string, number>();
  readonly closes = new Map<string, number>();
  readonly refusals = new Map<string, number>();
  connections = 0;
  connectionsTotal = 0;
  backpressurePauses = 0;
  /** Receivers that stayed congested past --congestion-grace (multicast copies to them dropped). */
  congestionSheds = 0;
  tlsHandshakeTimeouts = 0;
  slowReceiverDisconnects = 0;
  expiries = 0;
  tlsRejected = 0;
  /**
   * Output batches written (one socket write per receiver per read), by frames per batch: index i
   * counts batches of at most FLUSH_FRAME_BOUNDS[i] frames, the last one the larger ones.
   */
  readonly flushFrames = new Float64Array(FLUSH_FRAME_BOUNDS.length + 1);
  flushFramesSum = 0;

  /** One batch of `frames` (>= 1) written: a power-of-two bucket, no search. */
  flushed(frames: number): void {
    const i = frames <= 1 ? 0 : 32 - Math.clz32(frames - 1);
    this.flushFrames[Math.min(i, FLUSH_FRAME_BOUNDS.length)]!++;
    this.flushFramesSum += frames;
  }

  undeliveredFrames(reason: UndeliveredReason, n = 1): void {
    bump(this.undelivered, reason, n);
  }
  ignoredFrame(reason: IgnoredReason): void {
    bump(this.ignored, reason, 1);
  }
  decodeError(code: string): void {
    bump(this.decodeErrors, code, 1);
  }
  closed(reason: CloseReason): void {
    bump(this.closes, reason, 1);
  }
  /** A limit refused a connection or a REGISTER. */
  refused(reason: RefusedReason): void {
    bump(this.refusals, reason, 1);
  }
  /** Authorization refused something (policy.ts AuthzRefusal); the same metric. */
  refusedBy(reason: string, n = 1): void {
    bump(this.refusals, reason, n);
  }

  snapshot(groups: number, registrations: number): RouterStats {
    return {
      connections: this.connections,
      connectionsTotal: this.connectionsTotal,
      groups,
      registrations,
      framesIn: byType(this.framesIn),
      bytesIn: byType(this.bytesIn),
      framesOut: byType(this.framesOut),
      bytesOut: byType(this.bytesOut),
      undelivered: Object.fromEntries(this.undelivered),
      ignored: Object.fromEntries(this.ignored),
      decodeErrors: Object.fromEntries(this.decodeErrors),
      closes: Object.fromEntries(this.closes),
      refused: Object.fromEntries(this.refusals),
      backpressurePauses: this.backpressurePauses,
      congestionSheds: this.congestionSheds,
      tlsHandshakeTimeouts: this.tlsHandshakeTimeouts,
      slowReceiverDisconnects: this.slowReceiverDisconnects,
      expiries: this.expiries,
      tlsRejected: this.tlsRejected,
    };
  }
}

/** Index of the GRACEFUL_CLOSE marker in the per-type arrays. */
export const GRACEFUL_CLOSE_INDEX = 8;
