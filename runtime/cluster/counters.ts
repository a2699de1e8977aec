// The counters of a LocalCluster and its set of open mesh connections: what stats() reports
// besides the view, and what is kept of a connection's traffic once it is closed.
import type { MeshConnection } from "./connection.js";

export class ClusterCounters {
  viewsInstalled = 0;
  messagesSent = 0;
  messagesReceived = 0;
  badFrames = 0;
  /** Handshakes that failed authentication (bad or missing proof). */
  authFailures = 0;
  /** Handshakes refused (other cluster or site, not admitted, too many pending). */
  refusedHandshakes = 0;
  /** Views ignored as invalid or not sent by their coordinator. */
  viewsRefused = 0;
  /** Errors caught at a socket or timer boundary (bugs; each is logged). */
  internalErrors = 0;
  bytesLostWithConnections = 0;
  /** Open (or opening) mesh connections, inbound and outbound. */
  readonly conns = new Set<MeshConnection>();
  #closedBytesIn = 0;
  #closedBytesOut = 0;

  /** A connection went away: its traffic is kept in the totals. */
  closed(conn: MeshConnection, reason: string): void {
    this.conns.delete(conn);
    this.#closedBytesIn += conn.bytesIn;
    this.#closedBytesOut += conn.bytesOut;
    if (reason.startsWith("bad frame")) this.badFrames++;
  }

  /** Connection counts and bytes so far (closed connections included). */
  traffic(): { inbound: number; outbound: number; bytesIn: number; bytesOut: number } {
    let inbound = 0;
    let outbound = 0;
    let bytesIn = this.#closedBytesIn;
    let bytesOut = this.#closedBytesOut;
    for (const c of this.conns) {
      if (c.status === "closed") continue;
      if (c.outbound) outbound++;
      else inbound++;
      bytesIn += c.bytesIn;
      bytesOut += c.bytesOut;
    }
    return { inbound, outbound, bytesIn, bytesOut };
  }
}
