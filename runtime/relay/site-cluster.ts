// What the relay layer needs from the local cluster of its site (runtime/cluster's LocalCluster
// provides it). Kept as an interface so the relay logic states its needs in one place.
import type { Member, View } from "../cluster/member.js";

export interface SiteClusterMessage {
  readonly from: Member;
  readonly payload: Uint8Array;
}

export interface SiteCluster {
  /** This member (name, site, uuid, advertised host and port). */
  readonly localMember: Member;
  /** The current view, or null before the first one is installed. */
  readonly view: View | null;
  /** Joins the site; resolves once a view that includes us is installed. */
  start(): Promise<unknown>;
  /** Unicast to a member (memberKey) or, with null, multicast to every other member. */
  send(to: string | null, payload: Uint8Array): boolean;
  /** Leaves gracefully (the next member takes over at once if we coordinate) and closes. */
  leave(): Promise<void>;
  /** The cluster port's security and traffic counters (LocalCluster has them; a test double may not). */
  stats?(): {
    readonly authFailures: number;
    readonly refusedHandshakes: number;
    readonly viewsRefused: number;
    readonly internalErrors: number;
    readonly bytesIn: number;
    readonly bytesOut: number;
  };
  on(event: "message", listener: (m: SiteClusterMessage) => void): unknown;
  on(event: "view", listener: (v: View) => void): unknown;
}
