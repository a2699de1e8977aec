// What a LocalCluster emits and reports: its events and its stats snapshot.
import type { Member, View } from "./member.js";

/** A message delivered to this member. */
export interface ClusterMessage {
  readonly from: Member;
  readonly payload: Uint8Array;
}

/** Emitted when the coordinator (members[0] of the view) is another member than before. */
export interface CoordinatorChange {
  readonly coordinator: Member;
  readonly previous: Member | null;
  /** True when this member is now the coordinator. */
  readonly isCoordinator: boolean;
}

export interface LocalClusterEvents {
  message: [ClusterMessage];
  view: [View];
  "coordinator-changed": [CoordinatorChange];
  /** Every peer buffer that made `send` return false is back under the high-water mark. */
  drain: [];
}

/** Snapshot of counters and gauges (one-to-one with metrics). */
export interface ClusterStats {
  readonly member: string;
  readonly joined: boolean;
  readonly isCoordinator: boolean;
  readonly viewSeq: number;
  readonly members: number;
  readonly suspects: number;
  readonly inboundConnections: number;
  readonly outboundConnections: number;
  readonly viewsInstalled: number;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly badFrames: number;
  /** Mesh handshakes that failed authentication (bad or missing proof of the cluster secret). */
  readonly authFailures: number;
  /** Mesh handshakes refused (other cluster or site, not admitted, too many pending). */
  readonly refusedHandshakes: number;
  /** Views ignored: invalid (sequence, size, members) or not sent by their coordinator. */
  readonly viewsRefused: number;
  /** Errors caught at a socket or timer boundary instead of crashing the process (bugs; logged). */
  readonly internalErrors: number;
  /** Messages that could not reach a peer because it was suspected or its link failed. */
  readonly messagesLostToFailedPeers: number;
  /** Bytes still in a socket's write buffer when its connection to a member was lost. */
  readonly bytesLostWithConnections: number;
  /** Bytes waiting to be written to peers. */
  readonly bufferedBytes: number;
}
