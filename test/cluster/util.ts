// Helpers of the cluster tests: quiet loggers, bounded waits, members started on ephemeral ports
// with a discovery list the test can change.
import { pino } from "pino";
import type { DiscoveredAddress, Discovery } from "../../runtime/cluster/discovery.js";
import { LocalCluster } from "../../runtime/cluster/local-cluster.js";
import { memberKey } from "../../runtime/cluster/member.js";
import type { LocalClusterOptions } from "../../runtime/cluster/options.js";

export const quietLog = () => pino({ level: process.env["LOG_LEVEL"] ?? "silent" });

/** Resolves with the next emission of `event` (bounded). */
export function nextEvent<T>(
  c: LocalCluster,
  event: "view" | "coordinator-changed" | "drain",
  timeoutMs = 8000,
) {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    c.once(event, (v: unknown) => {
      clearTimeout(timer);
      resolve(v as T);
    });
  });
}

/** A discovery whose list the test edits (members started on port 0 are added once listening). */
export class ListDiscovery implements Discovery {
  addresses: DiscoveredAddress[] = [];
  async find(): Promise<DiscoveredAddress[]> {
    return [...this.addresses];
  }
}

/** Fast timings so failures and merges show within a test's budget. */
export const FAST = {
  heartbeatIntervalMs: 50,
  suspectTimeoutMs: 400,
  discoveryIntervalMs: 150,
  joinTimeoutMs: 600,
} as const;

export function member(
  name: string,
  discovery: Discovery,
  extra: Partial<LocalClusterOptions> = {},
): LocalCluster {
  return new LocalCluster({
    site: "nyc",
    cluster: "chat",
    name,
    discovery,
    bindAddr: "127.0.0.1",
    bindPort: 0,
    logger: quietLog(),
    ...FAST,
    ...extra,
  });
}

/** Member keys of a view, in order. */
export function keysOf(c: LocalCluster): string[] {
  return c.members.map((m) => memberKey(m));
}

/** True when every cluster has installed the same view id listing exactly `expected`. */
export function sameView(cs: readonly LocalCluster[], expected: readonly LocalCluster[] = cs): boolean {
  const want = new Set(expected.map((c) => memberKey(c.localMember)));
  const first = cs[0]?.view;
  if (!first) return false;
  return cs.every((c) => {
    const v = c.view;
    return (
      v !== null &&
      v.id.seq === first.id.seq &&
      v.id.coordinator === first.id.coordinator &&
      v.members.length === want.size &&
      v.members.every((m) => want.has(memberKey(m)))
    );
  });
}
