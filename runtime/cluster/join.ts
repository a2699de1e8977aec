// Join: how a starting member finds its way into a view (discovery, then JOIN_REQ to the
// coordinator that would win a merge, or a view of its own), and how a coordinator admits a joiner.
import type { Logger } from "../observability/log.js";
import { encodeFrame } from "./codec.js";
import type { MeshConnection } from "./connection.js";
import type { LinkPool } from "./link-pool.js";
import { compareMembers, describeMember, type Member, memberKey, type View } from "./member.js";
import type { Prober } from "./probe.js";
import type { Sleepers } from "./sleepers.js";
import { viewWithJoiner } from "./view-rules.js";

/** What join and merge need from the member that runs them. */
export interface ViewOwner {
  /** The installed view while this member is its joined coordinator, else null. */
  coordinated(): View | null;
  /** Sends a view to its members and installs it here. */
  broadcast(view: View): void;
}

/** What the join needs, besides the views. */
export interface JoinOwner extends ViewOwner {
  local(): Member;
  /** Still joining and no view installed yet. */
  stillJoining(): boolean;
  /** Installs the view of this member alone (sequence 1). */
  startAlone(): void;
  /** A member is (re)admitted: it is no longer suspected. */
  admitted(key: string): void;
}

export interface JoinOptions {
  readonly joinTimeoutMs: number;
  readonly suspectTimeoutMs: number;
}

export class Joiner {
  readonly #owner: JoinOwner;
  readonly #links: LinkPool;
  readonly #probes: Prober;
  readonly #sleepers: Sleepers;
  readonly #o: JoinOptions;
  readonly #log: Logger;
  #wake: (() => void) | null = null;

  constructor(
    owner: JoinOwner,
    deps: { links: LinkPool; probes: Prober; sleepers: Sleepers },
    options: JoinOptions,
    log: Logger,
  ) {
    this.#owner = owner;
    this.#links = deps.links;
    this.#probes = deps.probes;
    this.#sleepers = deps.sleepers;
    this.#o = options;
    this.#log = log;
  }

  /**
   * Finds the coordinator through discovery and asks to be admitted, or starts a singleton view
   * after `joinTimeoutMs`. Returns once a view is installed or the member stopped joining.
   */
  async run(): Promise<void> {
    const owner = this.#owner;
    const deadline = Date.now() + this.#o.joinTimeoutMs;
    const pause = Math.max(20, Math.min(250, Math.floor(this.#o.joinTimeoutMs / 10)));
    while (owner.stillJoining()) {
      const found = await this.#probes.probeAll();
      if (!owner.stillJoining()) return;
      const coordinators = found.filter((p) => p.view !== null).map((p) => p.view!.members[0]!);
      if (coordinators.length > 0) {
        // Several views (a partition not merged yet): ask the one that would win a merge.
        const target = coordinators.sort(compareMembers)[0]!;
        await this.#askToJoin(
          target,
          Math.max(pause, Math.min(deadline - Date.now(), this.#o.suspectTimeoutMs)),
        );
        if (!owner.stillJoining()) return;
      } else if (found.length > 0 && found.every((p) => compareMembers(owner.local(), p.member) < 0)) {
        // Peers are up but nobody coordinates yet: the first in the order starts the view, the
        // others find it on their next round. This is what makes concurrent starts converge.
        this.#log.info({ peers: found.length }, "no coordinator yet and first in order: starting the view");
        owner.startAlone();
        return;
      }
      if (Date.now() >= deadline) {
        this.#log.info(
          { joinTimeoutMs: this.#o.joinTimeoutMs },
          "no coordinator answered: starting a singleton view",
        );
        owner.startAlone();
        return;
      }
      await this.#sleepers.sleep(pause);
    }
  }

  /** Ends the wait for an answer to our JOIN_REQ (a view arrived, the join was refused, closing). */
  wake(): void {
    this.#wake?.();
  }

  /** A JOIN_REQ: the coordinator admits the joiner (or resends the view it is already in). */
  onRequest(joiner: Member, conn: MeshConnection): void {
    const view = this.#owner.coordinated();
    if (!view) {
      conn.write(encodeFrame({ type: "join-reject", reason: "not the coordinator" }));
      return;
    }
    const next = viewWithJoiner(view, joiner);
    if (next === null) {
      this.#log.error(
        { joiner: describeMember(joiner), seq: view.id.seq, size: view.members.length },
        "cannot admit a member: view sequence or size exhausted",
      );
      conn.write(encodeFrame({ type: "join-reject", reason: "view full" }));
      return;
    }
    if (next === view) {
      this.#links.write(this.#links.link(joiner), encodeFrame({ type: "view", view }));
      return;
    }
    this.#log.info({ joiner: describeMember(joiner), seq: next.id.seq }, "admitting a member");
    this.#owner.admitted(memberKey(joiner));
    this.#owner.broadcast(next);
  }

  async #askToJoin(coordinator: Member, timeoutMs: number): Promise<void> {
    this.#log.debug({ coordinator: memberKey(coordinator) }, "asking to join");
    const link = this.#links.link(coordinator);
    this.#links.write(link, encodeFrame({ type: "join-req" }));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      this.#wake = done;
    });
  }
}
