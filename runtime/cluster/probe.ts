// Discovery probes: asks every address discovery lists which member answers there and which view
// it is in (INFO_REQ -> INFO). A probe reuses an open link to that address; a connection it has to
// open becomes the member's link when there is none yet, and is closed after the answer otherwise.
import type { Logger } from "../observability/log.js";
import { encodeFrame } from "./codec.js";
import type { MeshConnection } from "./connection.js";
import type { DiscoveredAddress, Discovery } from "./discovery.js";
import type { LinkPool } from "./link-pool.js";
import { type Member, memberKey, type View } from "./member.js";

export interface ProbeResult {
  readonly member: Member;
  /** null: the member is not in a view yet (joining). */
  readonly view: View | null;
}

/** What the probes need from the member that runs them. */
export interface ProbeOwner {
  local(): Member;
  isClosed(): boolean;
  /** Opens a connection and completes the handshake; null when refused, failed or timed out. */
  dial(host: string, port: number): Promise<MeshConnection | null>;
}

export interface ProbeOptions {
  readonly discovery: Discovery;
  readonly discoveryIntervalMs: number;
  readonly suspectTimeoutMs: number;
}

export class Prober {
  readonly #owner: ProbeOwner;
  readonly #links: LinkPool;
  readonly #o: ProbeOptions;
  readonly #log: Logger;
  /** Probes waiting for an INFO on a connection, oldest first. */
  readonly #waiters = new Map<MeshConnection, Array<(v: View | null) => void>>();
  #nothingFoundLogged = false;

  constructor(owner: ProbeOwner, links: LinkPool, options: ProbeOptions, log: Logger) {
    this.#owner = owner;
    this.#links = links;
    this.#o = options;
    this.#log = log;
  }

  /** Asks every discovered address (except this member) which member it is and its view. */
  async probeAll(): Promise<ProbeResult[]> {
    let addrs: DiscoveredAddress[];
    try {
      addrs = await bounded(this.#o.discovery.find(), Math.max(1000, this.#o.discoveryIntervalMs));
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, "discovery failed");
      return [];
    }
    // Nothing at all, not even ourselves: a DNS_QUERY that does not resolve (yet), or an empty
    // list. Said once per stretch, so a typo in DNS_QUERY is not a silent singleton.
    if (addrs.length === 0 && !this.#nothingFoundLogged) {
      const query = (this.#o.discovery as { readonly name?: unknown }).name;
      this.#log.warn(
        typeof query === "string" ? { query } : {},
        "discovery found no address (a DNS name that does not resolve, or no endpoints yet): alone until it does",
      );
    }
    this.#nothingFoundLogged = addrs.length === 0;
    const local = this.#owner.local();
    const seen = new Set<string>();
    const unique = addrs.filter((a) => {
      const k = `${a.host}:${a.port}`;
      if (seen.has(k) || (a.host === local.host && a.port === local.port)) return false;
      seen.add(k);
      return true;
    });
    const results = await Promise.all(unique.map((a) => this.#probe(a)));
    const byKey = new Map<string, ProbeResult>();
    for (const r of results) if (r) byKey.set(memberKey(r.member), r);
    return [...byKey.values()];
  }

  /** An INFO arrived on `conn`: it answers the oldest probe waiting there. */
  answered(conn: MeshConnection, view: View | null): void {
    const waiters = this.#waiters.get(conn);
    const w = waiters?.shift();
    if (waiters && waiters.length === 0) this.#waiters.delete(conn);
    w?.(view);
  }

  /** `conn` closed: the probes waiting on it get no view. */
  closed(conn: MeshConnection): void {
    const waiters = this.#waiters.get(conn);
    this.#waiters.delete(conn);
    for (const w of waiters ?? []) w(null);
  }

  async #probe(addr: DiscoveredAddress): Promise<ProbeResult | null> {
    if (this.#owner.isClosed()) return null;
    // Reuse an open link to whoever is known to be at this address.
    let conn: MeshConnection | null = null;
    let own = false;
    for (const l of this.#links.values()) {
      if (l.member.host === addr.host && l.member.port === addr.port && l.conn?.status === "open")
        conn = l.conn;
    }
    if (!conn) {
      conn = await this.#owner.dial(addr.host, addr.port);
      if (!conn) return null;
      const peer = conn.peer!;
      const link = this.#links.get(memberKey(peer));
      if (!link) {
        this.#links.adopt(conn, peer);
      } else if (link.conn?.status === "open" || link.dialing) {
        own = true;
      } else {
        this.#links.attach(link, conn);
      }
    }
    const c = conn;
    const view = await new Promise<View | null | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), Math.min(1000, this.#o.suspectTimeoutMs));
      const waiters = this.#waiters.get(c) ?? [];
      waiters.push((v) => {
        clearTimeout(timer);
        resolve(v);
      });
      this.#waiters.set(c, waiters);
      c.write(encodeFrame({ type: "info-req" }));
    });
    if (own) c.close("probe done", true);
    if (view === undefined) return null;
    return { member: c.peer!, view };
  }
}

/** `p`, or a rejection after `ms` (a discovery that hangs must not stall joining). */
function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
