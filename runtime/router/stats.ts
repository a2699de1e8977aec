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
  | "slow-receiver";

/** Frames the router received and deliberately did not act on (metric `ignored_frames_total`). */
export type IgnoredReason =
  | "response-type"
  | "missing-group"
  | "missing-address"
  | "too-many-registrations"
  /** An AUTH frame the router does not need (open mode, or the certificate's own site). */
  | "auth-frame";

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
  | "refused";

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
  readonly backpressurePauses: number;
  readonly slowReceiverDisconnects: number;
  readonly expiries: number;
  readonly tlsRejected: number;
  /** Authorization refusals by reason (policy.ts AuthzRefusal). */
  readonly refused: Readonly<Record<string, number>>;
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
  connections = 0;
  connectionsTotal = 0;
  backpressurePauses = 0;
  slowReceiverDisconnects = 0;
  expiries = 0;
  tlsRejected = 0;

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

  // ---- authorization (policy.ts): relay_router_refused_total{reason} ----
  readonly refused = new Map<string, number>();
  refusedBy(reason: string, n = 1): void {
    bump(this.refused, reason, n);
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
      backpressurePauses: this.backpressurePauses,
      slowReceiverDisconnects: this.slowReceiverDisconnects,
      expiries: this.expiries,
      tlsRejected: this.tlsRejected,
      refused: Object.fromEntries(this.refused),
    };
  }
}

/** Index of the GRACEFUL_CLOSE marker in the per-type arrays. */
export const GRACEFUL_CLOSE_INDEX = 8;
