// Memory held by frames received in part, across all connections. Each connection's splitter
// holds at most one incomplete frame (so at most 4 + --max-frame bytes); together they may hold
// --max-partial-bytes. A frame that straddles reads reserves its announced size at once (the
// splitter's exactReserve: no growth garbage, untouched pages cost nothing), so a frame that does
// not fit is seen at its first read. Over the cap, buffers kept between frames are dropped first
// (nobody loses anything), then connections are cut, worst first: those that registered nothing
// before those that did, then the largest holder, then the newest (the frame that did not fit,
// which has received the least). Accounting is one subtraction per read.
import type { ClientConnection } from "./connection.js";

export class PartialFrameBudget {
  #total = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes held in reassembly buffers by all connections. */
  get total(): number {
    return this.#total;
  }

  /** The reassembly buffer of `conn` is now `held` bytes. True when the total is over the cap. */
  update(conn: ClientConnection, held: number): boolean {
    this.#total += held - conn.heldBytes;
    conn.heldBytes = held;
    return this.#total > this.maxBytes;
  }

  /**
   * Over the cap: frees every buffer kept by a connection with no incomplete frame, then returns
   * the connections to cut (the caller closes them, which brings their bytes back to 0).
   */
  relieve(conns: Iterable<ClientConnection>): ClientConnection[] {
    const holders: ClientConnection[] = [];
    for (const c of conns) {
      if (c.heldBytes === 0) continue;
      if (c.splitter.releaseIdle()) this.update(c, 0);
      else if (c.state === "open") holders.push(c);
    }
    if (this.#total <= this.maxBytes) return [];
    holders.sort(
      (a, b) =>
        Number(a.registrations.size > 0) - Number(b.registrations.size > 0) ||
        b.heldBytes - a.heldBytes ||
        b.id - a.id,
    );
    const victims: ClientConnection[] = [];
    let total = this.#total;
    for (const c of holders) {
      if (total <= this.maxBytes) break;
      victims.push(c);
      total -= c.heldBytes;
    }
    return victims;
  }
}
