// A map replicated to every member of its site and backed up to the other sites (docs/KV.md).
//
// - Within a site every member holds the whole map. A write is applied on the writing member
//   (read-your-writes there), then sent to every member of the site in the next turn of the event
//   loop (coalesced per turn), and queued for each backup site.
// - Across sites: each member sends its own writes to each backup site, batched, over the delivery
//   guarantee; the backup site's coordinator acknowledges a batch once its site applied it. What is
//   not acknowledged yet is the backlog (coalesced per key; bounded: writers wait, then are
//   refused, never dropped), and its age is the replication lag: the RPO if this site died now.
// - A batch not acknowledged in time is sent again; a backup site that keeps not answering is taken
//   offline (its backlog is dropped: anti-entropy brings it up to date when it answers again).
// - Anti-entropy (sync.ts): a joining member pulls the map from its site's coordinator before it is
//   ready, and again periodically; each site's coordinator syncs with each backup site's coordinator
//   periodically, when it becomes coordinator and when a backup site comes back.
import { EventEmitter } from "node:events";
import { everyAfterPoll } from "../after-poll.js";
import type { Logger } from "../observability/log.js";
import type { Destination } from "../relay/envelope.js";
import type { RelayAddress } from "../relay/types.js";
import { BackupBacklog } from "./backlog.js";
import { chunkEntries, type KvCodecLimits, type KvMessage, MAX_ENVELOPE_BYTES } from "./codec.js";
import { type Entry, type MergeFn, type StoreLimits, wireEntry } from "./entry.js";
import { KvError } from "./errors.js";
import { HybridClock } from "./hlc.js";
import { type ChangeOrigin, MapStore } from "./store.js";
import { answerSync, type SyncProgress, type SyncRequest, SyncSession } from "./sync.js";
import { jsonCodec, type ValueCodec } from "./value-codec.js";
import { type Version, versionsEqual } from "./version.js";

/** What a map needs from the channel it lives on (KvService implements it over a RelayChannel). */
export interface KvHost {
  readonly site: string;
  readonly member: string;
  /** Name of our site's coordinator (the oldest member), null before a view. */
  coordinator(): string | null;
  /** Names of our site's members. */
  members(): readonly string[];
  /** Remote sites visible now, with their coordinator's name. */
  remoteSites(): readonly { readonly site: string; readonly coordinator: string }[];
  /** False while a send to `site` would be refused for a full send buffer. */
  writableTo(site: string): boolean;
  /** Sends now; throws (RelayError BUFFER_FULL...) when the channel refuses. */
  send(dest: Destination, m: KvMessage): void;
  /** Sends, waiting for room in the send buffer. */
  sendAsync(dest: Destination, m: KvMessage): Promise<void>;
  readonly log: Logger;
}

export interface WriteOptions {
  /**
   * "local" (default): resolves once the write is applied on this member and handed to the
   * channel for its site; backup sites get it asynchronously (see `status()` for the lag).
   * "remote": resolves once every online backup site applied it (at most `timeoutMs`).
   */
  readonly ack?: "local" | "remote";
  /** For ack "remote". @default the map's remoteAckTimeoutMs */
  readonly timeoutMs?: number;
}

export interface ReplicatedMapOptions<V> {
  /** @default jsonCodec */
  readonly codec?: ValueCodec<V>;
  /** Deterministic and order-independent (docs/KV.md). @default lastWriterWins */
  readonly merge?: MergeFn;
  /** @default { maxKeyBytes: 256, maxValueBytes: 64 KiB, maxEntries: 1,000,000 } */
  readonly limits?: Partial<StoreLimits>;
  /** Sites this site backs up to: "all" other sites, or a list. @default "all" */
  readonly backupSites?: "all" | readonly string[];
  /** Default of WriteOptions.ack. @default "local" */
  readonly ack?: "local" | "remote";
  /** @default 10_000 */
  readonly remoteAckTimeoutMs?: number;
  /** Unacknowledged changes towards one backup site. @default { maxBytes: 64 MiB, maxKeys: 1,000,000 } */
  readonly backlog?: { readonly maxBytes?: number; readonly maxKeys?: number };
  /** How long a writer waits for room in a full backlog before BACKLOG_FULL. @default 5_000 */
  readonly paceTimeoutMs?: number;
  /** Bytes of entries per message. @default 256 KiB */
  readonly batchBytes?: number;
  /** A batch not acknowledged in this time is sent again. @default 3_000 */
  readonly resendAfterMs?: number;
  /** A backup site is taken offline after this many unanswered resends... @default 5 */
  readonly offlineAfterResends?: number;
  /** ...and at least this long without an acknowledgement. @default 30_000 */
  readonly offlineAfterMs?: number;
  /** Period of the anti-entropy checks (and of the probes of an offline site). @default 30_000 */
  readonly antiEntropyIntervalMs?: number;
  /**
   * A member that is its site's first (coordinator at once) waits this long for a backup site to
   * pull from before it reports ready with what it has. @default 5_000
   */
  readonly remoteReadyWaitMs?: number;
  /** Per step of a sync; a step is retried 3 times. @default 5_000 */
  readonly syncStepTimeoutMs?: number;
  /**
   * Tombstones are collected this long after the delete, once every backup site has them (it has
   * been reachable since, or back and synced). @default 600_000
   */
  readonly tombstoneGraceMs?: number;
  /**
   * Longest a tombstone is held for a backup site that stays away; after it, that site must be
   * re-seeded before it rejoins, or keys deleted meanwhile come back (docs/KV.md).
   * @default 604_800_000 (7 days)
   */
  readonly tombstoneMaxHoldMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** One change, as `watch` and the "change" event report it. `value` undefined = deleted. */
export interface MapChange<V> {
  readonly key: string;
  readonly value: V | undefined;
  readonly version: Version;
  /** "local": written on this member; "remote": replicated from another member or site. */
  readonly origin: ChangeOrigin;
}

export interface BackupSiteStatus {
  readonly site: string;
  readonly online: boolean;
  /** Keys with a change this member sent or has to send, not acknowledged yet. */
  readonly pendingKeys: number;
  readonly pendingBytes: number;
  readonly batchesInFlight: number;
  /** Age of the oldest unacknowledged change (the replication lag), null when none. */
  readonly lagMs: number | null;
  /**
   * How long the site has been away (not visible, or offline) as this member saw it; null while
   * it is up. Past tombstoneMaxHoldMs it must be re-seeded before it comes back.
   */
  readonly awayMs: number | null;
}

export interface MapStatus {
  readonly map: string;
  readonly site: string;
  readonly member: string;
  readonly ready: boolean;
  readonly entries: number;
  readonly tombstones: number;
  /** Root of this replica's digest: equal roots, equal replicas (keys, versions, tombstones). */
  readonly digest: string;
  readonly conflicts: number;
  readonly refusedEntries: number;
  readonly backups: readonly BackupSiteStatus[];
  /** How long a tombstone waits at most for a backup site that is away. */
  readonly tombstoneMaxHoldMs: number;
  /** Backup sites that came back after an absence longer than tombstoneMaxHoldMs (each logged). */
  readonly longAbsences: number;
  readonly syncs: {
    readonly running: number;
    readonly completed: number;
    readonly failed: number;
    readonly entriesReceived: number;
    readonly entriesSent: number;
    /** Sessions other replicas started with this one (digest requests answered). */
    readonly answered: number;
    /** Entries this member sent in its answers to those sessions. */
    readonly entriesServed: number;
    /** Steps of this member's syncs asked for again after their timeout (a lost or corrupt answer). */
    readonly retries: number;
    readonly progress: readonly (SyncProgress & { readonly peer: string })[];
  };
}

export interface ReplicatedMapEvents<V> {
  change: [MapChange<V>];
  /** A backup site was taken offline, or came back online. */
  "backup-status": [{ readonly site: string; readonly online: boolean }];
  /** A sync finished (state transfer, periodic check, cross-site). */
  synced: [
    { readonly peer: string; readonly received: number; readonly sent: number; readonly equal: boolean },
  ];
}

const PROBE_BATCH_BASE = 0xf000_0000;
/** Most other sites remembered as writers of a map (a relay of a few sites; bounds hostile names). */
const MAX_ORIGIN_SITES = 64;

/**
 * What the kv messages between members may carry (KvService decodes with these). A map's own
 * limits must fit inside: its values travel in channel messages (at most 3 MiB by default).
 */
export const KV_WIRE_LIMITS: KvCodecLimits = Object.freeze({
  maxKeyBytes: 4096,
  maxValueBytes: 1024 * 1024,
  maxEntries: 100_000,
  maxMessageBytes: 2 * 1024 * 1024 + 64 * 1024,
});

interface Backup {
  readonly site: string;
  backlog: BackupBacklog;
  online: boolean;
  /** Batch -> when it was (last) sent. */
  readonly sentAt: Map<number, number>;
  /** Resend rounds since the last acknowledgement. */
  resends: number;
  lastAckAt: number;
  /** The batch of the probe sent while offline. */
  probe: number;
  /** Since when changes wait with no route to the site (null: not now). */
  unreachableSince: number | null;
  /** Since when the site has been visible and online without a break (null: it is not now). */
  upSince: number | null;
  /** Since when it has not been (null: it is up); from when this member first saw it go. */
  awaySince: number | null;
}

interface RemoteWaiter {
  readonly entry: Entry;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly deadline: number;
}

let sessionCounter = Math.floor(Math.random() * 0x7fff_ffff);

export class ReplicatedMap<V = unknown> extends EventEmitter<ReplicatedMapEvents<V>> {
  readonly name: string;
  readonly #host: KvHost;
  readonly #codec: ValueCodec<V>;
  readonly #store: MapStore;
  readonly #o: Required<
    Omit<ReplicatedMapOptions<V>, "codec" | "merge" | "limits" | "backlog" | "now" | "backupSites">
  > & { backlogBytes: number; backlogKeys: number };
  readonly #backupSites: "all" | ReadonlySet<string>;
  readonly #now: () => number;
  readonly #backups = new Map<string, Backup>();
  #inSite: Entry[] = [];
  #flushScheduled = false;
  readonly #waiters = new Set<RemoteWaiter>();
  readonly #pacers = new Set<() => void>();
  /** Stops every watch iterator (close()). */
  readonly #watchers = new Set<() => void>();
  readonly #sessions = new Map<number, { session: SyncSession; peer: string; kind: "site" | "remote" }>();
  #ready = false;
  readonly #readyP: Promise<void>;
  #resolveReady!: () => void;
  #closed = false;
  #conflicts = 0;
  #refused = 0;
  #syncsDone = 0;
  #syncsFailed = 0;
  #syncReceived = 0;
  #syncSent = 0;
  #syncAnswered = 0;
  #syncServed = 0;
  #syncRetries = 0;
  #longAbsences = 0;
  /** Other sites named by the versions of entries this replica holds or held (bounded). */
  readonly #originSites = new Set<string>();
  #lastSiteSync = 0;
  readonly #openedAt: number;
  /** A coordinator's pulls from the backup sites before it is ready are running. */
  #readyPulls = false;
  /** Our site's coordinator as last seen (a new one: pull from it at once). */
  #lastCoordinator: string | null = null;
  #lastRemoteSync = 0;
  #wasCoordinator = false;
  readonly #timer: NodeJS.Timeout;

  constructor(host: KvHost, name: string, options: ReplicatedMapOptions<V> = {}) {
    super();
    this.name = name;
    this.#host = host;
    this.#codec = options.codec ?? (jsonCodec as ValueCodec<V>);
    this.#now = options.now ?? Date.now;
    this.#o = {
      ack: options.ack ?? "local",
      remoteAckTimeoutMs: positive("remoteAckTimeoutMs", options.remoteAckTimeoutMs, 10_000),
      paceTimeoutMs: positive("paceTimeoutMs", options.paceTimeoutMs, 5_000),
      batchBytes: positive("batchBytes", options.batchBytes, 256 * 1024),
      resendAfterMs: positive("resendAfterMs", options.resendAfterMs, 3_000),
      offlineAfterResends: positive("offlineAfterResends", options.offlineAfterResends, 5),
      offlineAfterMs: positive("offlineAfterMs", options.offlineAfterMs, 30_000),
      antiEntropyIntervalMs: positive("antiEntropyIntervalMs", options.antiEntropyIntervalMs, 30_000),
      syncStepTimeoutMs: positive("syncStepTimeoutMs", options.syncStepTimeoutMs, 5_000),
      remoteReadyWaitMs: positive("remoteReadyWaitMs", options.remoteReadyWaitMs, 5_000),
      tombstoneGraceMs: positive("tombstoneGraceMs", options.tombstoneGraceMs, 600_000),
      tombstoneMaxHoldMs: positive("tombstoneMaxHoldMs", options.tombstoneMaxHoldMs, 7 * 86_400_000),
      backlogBytes: positive("backlog.maxBytes", options.backlog?.maxBytes, 64 * 1024 * 1024),
      backlogKeys: positive("backlog.maxKeys", options.backlog?.maxKeys, 1_000_000),
    };
    const lim = options.limits ?? {};
    if (
      (lim.maxKeyBytes ?? 0) > KV_WIRE_LIMITS.maxKeyBytes ||
      (lim.maxValueBytes ?? 0) > KV_WIRE_LIMITS.maxValueBytes
    )
      throw new TypeError(
        `ReplicatedMap limits: maxKeyBytes at most ${KV_WIRE_LIMITS.maxKeyBytes}, maxValueBytes at most ${KV_WIRE_LIMITS.maxValueBytes} (values travel in channel messages)`,
      );
    if (this.#o.batchBytes > 1024 * 1024)
      throw new TypeError(`ReplicatedMap option batchBytes must be at most 1 MiB, not ${this.#o.batchBytes}`);
    if (this.#o.ack !== "local" && this.#o.ack !== "remote")
      throw new TypeError(`ReplicatedMap option ack must be "local" or "remote", not ${String(this.#o.ack)}`);
    const b = options.backupSites ?? "all";
    this.#backupSites = b === "all" ? "all" : new Set(b);
    this.#store = new MapStore({
      site: host.site,
      member: host.member,
      clock: new HybridClock({ now: this.#now }),
      ...(options.merge ? { merge: options.merge } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      now: this.#now,
    });
    this.#store.on("change", (e, origin) => {
      this.#noteOrigin(e.version.site);
      this.#emitChange(e, origin);
    });
    this.#readyP = new Promise((r) => {
      this.#resolveReady = r;
    });
    const tickMs = Math.max(50, Math.min(1000, Math.floor(this.#o.resendAfterMs / 3)));
    // Becoming coordinator later (not being it from the start) is what triggers an immediate sync.
    this.#wasCoordinator = host.coordinator() === host.member;
    this.#lastCoordinator = host.coordinator();
    this.#openedAt = this.#now();
    this.#refreshBackups();
    // The tick judges (sync step timeouts, resends, offline) after the loop has polled the
    // sockets: after a stall of this process it would ask again for answers waiting unread
    // (test/kv/replication.test.ts, "stalls during a sync").
    this.#timer = everyAfterPoll(() => this.#tick(), tickMs);
    this.#timer.unref();
    queueMicrotask(() => this.#startTransfer());
  }

  // ------------------------------------------------------------------------------------------
  // Reads

  /** Resolves once this member holds its site's map (state transfer done). */
  get ready(): Promise<void> {
    return this.#readyP;
  }

  get isReady(): boolean {
    return this.#ready;
  }

  get size(): number {
    return this.#store.size;
  }

  get(key: string): V | undefined {
    const bytes = this.#store.getValue(key);
    return bytes === undefined ? undefined : this.#codec.decode(bytes);
  }

  has(key: string): boolean {
    return this.#store.getValue(key) !== undefined;
  }

  /** The version of the key's current entry (its tombstone's when deleted), undefined if unknown. */
  version(key: string): Version | undefined {
    return this.#store.get(key)?.version;
  }

  *entries(prefix?: string): IterableIterator<[string, V]> {
    for (const e of this.#store.entries(prefix)) yield [e.key, this.#codec.decode(e.value!)];
  }

  *keys(prefix?: string): IterableIterator<string> {
    for (const e of this.#store.entries(prefix)) yield e.key;
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  async put(key: string, value: V, options: WriteOptions = {}): Promise<Version> {
    const bytes = this.#codec.encode(value);
    await this.#pace(bytes.length + key.length);
    const e = this.#store.put(key, bytes);
    this.#replicate(e);
    await this.#acked(e, options);
    return e.version;
  }

  /** Deletes `key`; resolves with the tombstone's version, or null when there was nothing to delete. */
  async delete(key: string, options: WriteOptions = {}): Promise<Version | null> {
    await this.#pace(key.length);
    const e = this.#store.delete(key);
    if (!e) return null;
    this.#replicate(e);
    await this.#acked(e, options);
    return e.version;
  }

  /**
   * Writes `value` (null: deletes) only if the key is at `expected` (null: absent). Checked on
   * this member (KvError VERSION_MISMATCH otherwise); concurrent successes in two sites are
   * resolved by the merge like any concurrent writes.
   */
  async compareAndSet(
    key: string,
    expected: Version | null,
    value: V | null,
    options: WriteOptions = {},
  ): Promise<Version> {
    const bytes = value === null ? null : this.#codec.encode(value);
    await this.#pace((bytes?.length ?? 0) + key.length);
    const e = this.#store.compareAndSet(key, expected, bytes);
    this.#replicate(e);
    await this.#acked(e, options);
    return e.version;
  }

  // ------------------------------------------------------------------------------------------
  // Watch

  /**
   * The changes of keys starting with `prefix`: first those after `since` (a version from an
   * earlier change: resuming; the latest entry of each key changed since then, oldest first),
   * then live. Iterate with `for await`; `return()` (break) stops it. A consumer that falls more
   * than `maxQueued` changes behind ends with KvError BACKLOG_FULL (resume from its last version).
   */
  watch(
    prefix = "",
    options: { readonly since?: Version | null; readonly maxQueued?: number } = {},
  ): AsyncIterableIterator<MapChange<V>> {
    const maxQueued = options.maxQueued ?? 10_000;
    const queue: MapChange<V>[] = [];
    let wake: (() => void) | null = null;
    let failure: Error | null = null;
    let done = false;
    if (options.since !== undefined)
      for (const e of this.#store.changedSince(options.since))
        if (e.key.startsWith(prefix)) queue.push(this.#toChange(e, "remote"));
    const listener = (c: MapChange<V>) => {
      if (!c.key.startsWith(prefix) || done) return;
      if (queue.length >= maxQueued) {
        failure = new KvError(
          "BACKLOG_FULL",
          `watch consumer more than ${maxQueued} changes behind: resume from its last version`,
        );
        stop();
      } else queue.push(c);
      wake?.();
    };
    const stop = () => {
      done = true;
      this.off("change", listener);
      this.#watchers.delete(stop);
      wake?.();
    };
    this.on("change", listener);
    this.#watchers.add(stop);
    const it: AsyncIterableIterator<MapChange<V>> = {
      [Symbol.asyncIterator]: () => it,
      next: async () => {
        for (;;) {
          const c = queue.shift();
          if (c) return { value: c, done: false };
          if (failure) throw failure;
          if (done || this.#closed) return { value: undefined, done: true };
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = null;
        }
      },
      return: async () => {
        stop();
        return { value: undefined, done: true };
      },
    };
    return it;
  }

  // ------------------------------------------------------------------------------------------
  // Status

  status(): MapStatus {
    return {
      map: this.name,
      site: this.#host.site,
      member: this.#host.member,
      ready: this.#ready,
      entries: this.#store.size,
      tombstones: this.#store.tombstones,
      digest: this.#store.digest().root(),
      conflicts: this.#conflicts,
      refusedEntries: this.#refused,
      backups: [...this.#backups.values()].map((b) => ({
        site: b.site,
        online: b.online,
        pendingKeys: b.backlog.pendingKeys,
        pendingBytes: b.backlog.pendingBytes,
        batchesInFlight: b.backlog.batchesInFlight,
        lagMs: b.backlog.oldestPendingMs(),
        awayMs: b.awaySince === null ? null : this.#now() - b.awaySince,
      })),
      tombstoneMaxHoldMs: this.#o.tombstoneMaxHoldMs,
      longAbsences: this.#longAbsences,
      syncs: {
        running: this.#sessions.size,
        completed: this.#syncsDone,
        failed: this.#syncsFailed,
        entriesReceived: this.#syncReceived,
        entriesSent: this.#syncSent,
        answered: this.#syncAnswered,
        entriesServed: this.#syncServed,
        retries: this.#syncRetries,
        progress: [...this.#sessions.values()].map((s) => ({ peer: s.peer, ...s.session.progress() })),
      },
    };
  }

  /** Stops timers and sessions; pending remote acknowledgements are rejected (CLOSED). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const err = new KvError("CLOSED", `map "${this.name}" is closed`);
    for (const w of this.#waiters) w.reject(err);
    this.#waiters.clear();
    for (const s of this.#sessions.values()) s.session.abort(err);
    this.#sessions.clear();
    for (const p of this.#pacers) p();
    for (const stop of [...this.#watchers]) stop();
  }

  // ------------------------------------------------------------------------------------------
  // Messages from the other replicas (KvService routes them here)

  onMessage(from: RelayAddress, dest: Destination, m: KvMessage): void {
    if (this.#closed) return;
    const local = from.site === this.#host.site;
    switch (m.type) {
      case "update": {
        // A push (to us as a member) from another site, or a sync's push from our site: passed on
        // to our site, which has not seen it.
        const forward = dest.kind === "member";
        for (const e of m.entries) this.#applyRemote(e, forward);
        if (!local && m.batch !== 0 && this.#host.coordinator() === this.#host.member)
          this.#sendTo(from, { type: "ack", map: this.name, batch: m.batch });
        if (forward) this.#scheduleFlush();
        return;
      }
      case "ack":
        if (!local) this.#onAck(from.site, m.batch);
        return;
      case "digest-req":
      case "sub-digest-req":
      case "leaf-req":
      case "leaf-diff-req":
        void this.#answer(from, m);
        return;
      case "digest-res":
      case "sub-digest-res":
      case "bucket-res":
      case "want":
      case "error": {
        if (m.type !== "error") {
          this.#sessions.get(m.session)?.session.onMessage(m, this.#now());
          return;
        }
        // An error names no session: it ends every session with that replica (UNKNOWN_MAP...).
        const label = local ? from.name : `${from.name}:${from.site}`;
        let ended = 0;
        for (const s of this.#sessions.values())
          if (s.peer === label) {
            s.session.onMessage(m, this.#now());
            ended++;
          }
        if (ended === 0)
          this.#host.log.warn({ map: this.name, from: `${from.name}:${from.site}`, code: m.code }, m.message);
        return;
      }
      default:
        return;
    }
  }

  /** The host's view or the visible sites changed: re-check the coordinator's duties. */
  topologyChanged(): void {
    if (this.#closed) return;
    const coordinator = this.#host.coordinator() === this.#host.member;
    if (coordinator && !this.#wasCoordinator) this.#lastRemoteSync = 0; // sync with every backup site now
    this.#wasCoordinator = coordinator;
    // A new coordinator (we were merged into another view, or ours left): pull from it at once.
    const coord = this.#host.coordinator();
    if (coord !== this.#lastCoordinator && !coordinator && this.#ready) this.#lastSiteSync = 0;
    this.#lastCoordinator = coord;
    this.#refreshBackups();
    for (const [id, s] of this.#sessions) {
      const gone =
        s.kind === "site"
          ? !this.#host.members().includes(s.peer)
          : !this.#host.remoteSites().some((r) => `${r.coordinator}:${r.site}` === s.peer);
      if (gone) {
        s.session.abort(new KvError("CLOSED", `${s.peer} left`));
        this.#sessions.delete(id);
      }
    }
    if (!this.#ready) this.#startTransfer();
  }

  // ------------------------------------------------------------------------------------------
  // Replication

  #replicate(e: Entry): void {
    this.#inSite.push(e);
    // The backup set is refreshed on topology changes and every tick, not per write (hot path).
    for (const b of this.#backups.values()) {
      if (!b.online) continue;
      try {
        b.backlog.add(e);
      } catch (err) {
        // Over budget despite the pacing (a burst): not dropped, the anti-entropy carries it.
        this.#host.log.warn({ map: this.name, site: b.site, err: (err as Error).message }, "backlog full");
      }
    }
    this.#scheduleFlush();
  }

  /**
   * Adds a backup (and its backlog) for every visible remote site this map backs up to, and
   * notes since when each has been visible and online (tombstones wait for that: #tombstoneStable).
   */
  #refreshBackups(): void {
    const visible = new Set<string>();
    for (const r of this.#host.remoteSites()) {
      this.#backup(r.site);
      visible.add(r.site);
    }
    const now = this.#now();
    for (const b of this.#backups.values()) {
      if (!b.online || !visible.has(b.site)) {
        b.upSince = null;
        b.awaySince ??= now;
      } else {
        b.upSince ??= now;
        if (b.awaySince !== null) this.#cameBack(b, now - b.awaySince);
        b.awaySince = null;
      }
    }
  }

  /**
   * A backup site is back. After an absence longer than tombstoneMaxHoldMs the tombstones of the
   * keys deleted meanwhile are gone here, and anti-entropy may bring its old values of those keys
   * back: say so loudly (the site should have been re-seeded: docs/KV.md, "Tombstones").
   */
  #cameBack(b: Backup, awayMs: number): void {
    if (awayMs <= this.#o.tombstoneMaxHoldMs) return;
    this.#longAbsences++;
    this.#host.log.error(
      { map: this.name, site: b.site, awayMs, tombstoneMaxHoldMs: this.#o.tombstoneMaxHoldMs },
      "backup site back after an absence longer than tombstoneMaxHoldMs: keys deleted meanwhile may come back from it; re-seed that site (docs/KV.md, Tombstones)",
    );
  }

  /**
   * Whether every backup site has tombstone `e` (or will get it without it: no later write can
   * resurrect the key): each backup site is visible and online now, and either it has been so
   * since before this replica applied the delete (replication carried it; for our own delete,
   * acknowledged) or for two anti-entropy periods (a sync between the coordinators carried it).
   * So a site that is away holds every tombstone here until it is back and synced; after
   * tombstoneMaxHoldMs they go anyway (a site away that long must be re-seeded: docs/KV.md).
   */
  #tombstoneStable(e: Entry, now: number): boolean {
    const appliedAt = e.deletedAt ?? 0;
    if (now - appliedAt >= this.#o.tombstoneMaxHoldMs) return true;
    const mine = e.version.member === this.#host.member && e.version.site === this.#host.site;
    for (const b of this.#backups.values()) {
      if (!b.online || b.upSince === null) return false;
      if (now - b.upSince >= 2 * this.#o.antiEntropyIntervalMs) continue;
      if (b.upSince > appliedAt || (mine && !b.backlog.isAcked(e))) return false;
    }
    // A backup site this member has never seen (it started while that site was away) but that
    // wrote into the map, or that is named in backupSites, may still hold the key.
    if (this.#backupSites !== "all")
      for (const site of this.#backupSites) if (!this.#backups.has(site)) return false;
    for (const site of this.#originSites)
      if (this.#isBackupSite(site) && !this.#backups.has(site)) return false;
    return true;
  }

  #isBackupSite(site: string): boolean {
    return this.#backupSites === "all" || this.#backupSites.has(site);
  }

  #backup(site: string): Backup | undefined {
    if (!this.#isBackupSite(site)) return undefined;
    let b = this.#backups.get(site);
    if (!b) {
      b = {
        site,
        backlog: this.#newBacklog(),
        online: true,
        sentAt: new Map(),
        resends: 0,
        lastAckAt: this.#now(),
        probe: 0,
        unreachableSince: null,
        upSince: null,
        awaySince: null,
      };
      this.#backups.set(site, b);
    }
    return b;
  }

  #newBacklog(): BackupBacklog {
    return new BackupBacklog({
      maxBytes: this.#o.backlogBytes,
      maxKeys: this.#o.backlogKeys,
      now: this.#now,
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Sends what the channel takes of our backlog for `b`, in batches. */
  #flushBackup(b: Backup, now: number): void {
    while (b.backlog.queued > 0 && this.#host.writableTo(b.site)) {
      const { batch, entries } = b.backlog.take(this.#o.batchBytes);
      if (batch === 0) break;
      try {
        this.#host.send(
          { kind: "site", site: b.site },
          { type: "update", map: this.name, batch, entries: entries.map(wireEntry) },
        );
        b.sentAt.set(batch, now);
      } catch {
        b.backlog.requeue(batch);
        break;
      }
    }
  }

  #flush(): void {
    if (this.#closed) return;
    if (this.#inSite.length > 0 && this.#host.members().length > 1) {
      const entries = this.#inSite;
      this.#inSite = [];
      for (const chunk of chunks(entries, this.#o.batchBytes)) {
        try {
          this.#host.send(
            { kind: "site", site: this.#host.site },
            { type: "update", map: this.name, batch: 0, entries: chunk },
          );
        } catch {
          this.#inSite.push(...chunk); // the site's links are full: next tick
        }
      }
    } else this.#inSite = [];
    const now = this.#now();
    for (const b of this.#backups.values()) if (b.online) this.#flushBackup(b, now);
  }

  #onAck(site: string, batch: number): void {
    const b = this.#backups.get(site);
    if (!b) return;
    b.resends = 0;
    b.lastAckAt = this.#now();
    if (batch >= PROBE_BATCH_BASE) {
      if (!b.online && batch === b.probe) {
        b.online = true;
        this.#host.log.info({ map: this.name, site }, "backup site answers again: online");
        this.emit("backup-status", { site, online: true });
        this.#lastRemoteSync = 0; // the coordinator syncs with it at once
      }
      return;
    }
    b.backlog.ack(batch);
    b.sentAt.delete(batch);
    this.#settleWaiters();
    for (const p of [...this.#pacers]) p();
    this.#scheduleFlush();
  }

  async #acked(e: Entry, options: WriteOptions): Promise<void> {
    const ack = options.ack ?? this.#o.ack;
    if (ack !== "remote") return;
    const timeoutMs = options.timeoutMs ?? this.#o.remoteAckTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const w: RemoteWaiter = { entry: e, resolve, reject, deadline: this.#now() + timeoutMs };
      this.#waiters.add(w);
      this.#settleWaiters();
    });
  }

  #settleWaiters(): void {
    if (this.#waiters.size === 0) return;
    const online = [...this.#backups.values()].filter((b) => b.online);
    const now = this.#now();
    for (const w of this.#waiters) {
      if (online.length > 0 && online.every((b) => b.backlog.isAcked(w.entry))) {
        this.#waiters.delete(w);
        w.resolve();
      } else if (now > w.deadline) {
        this.#waiters.delete(w);
        const missing = online.filter((b) => !b.backlog.isAcked(w.entry)).map((b) => b.site);
        w.reject(
          new KvError(
            "TIMEOUT",
            `"${w.entry.key}" not acknowledged by ${missing.length > 0 ? missing.join(", ") : "any backup site (none online)"} in time; it is applied in ${this.#host.site} and still replicating`,
          ),
        );
      }
    }
  }

  /** Waits (at most paceTimeoutMs) while an online backup site's backlog cannot take `bytes` more. */
  async #pace(bytes: number): Promise<void> {
    if (this.#closed) throw new KvError("CLOSED", `map "${this.name}" is closed`);
    const full = () => [...this.#backups.values()].filter((b) => b.online && !b.backlog.wouldFit(bytes + 64));
    if (full().length === 0) return;
    const deadline = this.#now() + this.#o.paceTimeoutMs;
    while (full().length > 0) {
      if (this.#closed) throw new KvError("CLOSED", `map "${this.name}" is closed`);
      const left = deadline - this.#now();
      if (left <= 0) {
        const b = full()[0]!;
        throw new KvError(
          "BACKLOG_FULL",
          `backlog towards ${b.site} is full (${b.backlog.pendingKeys} keys, ${b.backlog.pendingBytes} bytes unacknowledged for ${b.backlog.oldestPendingMs() ?? 0} ms): the write is refused; retry later or raise backlog.maxBytes / maxKeys`,
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(done, Math.min(left, 250));
        function done() {
          clearTimeout(t);
          r();
        }
        this.#pacers.add(done);
      });
      this.#pacers.clear();
    }
  }

  #applyRemote(e: Entry, forward: boolean): boolean {
    const before = this.#store.get(e.key);
    let changed: Entry | null;
    try {
      changed = this.#store.apply(e);
    } catch (err) {
      this.#refused++;
      this.#host.log.warn(
        { map: this.name, key: e.key.slice(0, 64), err: (err as Error).message },
        "entry refused",
      );
      return false;
    }
    // A conflict: another site's write replaced a write of ours that its writer had not seen (it
    // did not replace ours: neither side had seen the other's). Counted once, by the member whose
    // write lost, however the winner arrived (replication or a sync), so the sum over every member
    // of every site is the number of keys in conflict.
    if (
      changed !== null &&
      before &&
      e.version.site !== this.#host.site &&
      before.version.site === this.#host.site &&
      before.version.member === this.#host.member &&
      !(e.replaces !== undefined && versionsEqual(e.replaces, before.version))
    )
      this.#conflicts++;
    if (changed && forward) this.#inSite.push(changed);
    return changed !== null;
  }

  /** A site that wrote into this map is one of its replicas' sites, whether or not we saw it. */
  #noteOrigin(site: string): void {
    if (site === this.#host.site || this.#originSites.has(site)) return;
    if (this.#originSites.size < MAX_ORIGIN_SITES) this.#originSites.add(site);
  }

  #emitChange(e: Entry, origin: ChangeOrigin): void {
    if (this.listenerCount("change") > 0) this.emit("change", this.#toChange(e, origin));
  }

  #toChange(e: Entry, origin: ChangeOrigin): MapChange<V> {
    let value: V | undefined;
    if (e.value !== null) {
      try {
        value = this.#codec.decode(e.value);
      } catch {
        value = undefined;
      }
    }
    return { key: e.key, value, version: e.version, origin };
  }

  // ------------------------------------------------------------------------------------------
  // Anti-entropy

  /** Pulls the map from our coordinator (a joiner's state transfer); ready when done. */
  #startTransfer(): void {
    if (this.#ready || this.#closed) return;
    const coord = this.#host.coordinator();
    if (coord === null) return; // no view yet: topologyChanged() calls again
    if (coord === this.#host.member) {
      this.#startAsCoordinator();
      return;
    }
    if ([...this.#sessions.values()].some((s) => s.kind === "site")) return;
    this.#sync({ site: this.#host.site, name: coord }, "site").then(
      () => this.#markReady(),
      () => {}, // retried on the next tick
    );
  }

  /**
   * The first member of its site (a new site, a site restarted after a total loss, or a member that
   * could not find its site and started alone) holds nothing its site had: it is ready once it has
   * pulled from every backup site it sees, or when none is seen within `remoteReadyWaitMs`.
   */
  #startAsCoordinator(): void {
    const remotes = this.#host.remoteSites().filter((r) => this.#backup(r.site) !== undefined);
    if (remotes.length === 0) {
      if (this.#now() - this.#openedAt >= this.#o.remoteReadyWaitMs) this.#markReady();
      return; // the tick and topologyChanged() call again
    }
    if (this.#readyPulls) return;
    this.#readyPulls = true;
    this.#lastRemoteSync = this.#now();
    const pulls = remotes.map((r) => this.#sync({ site: r.site, name: r.coordinator }, "remote"));
    void Promise.allSettled(pulls).then((results) => {
      this.#readyPulls = false;
      const unknown = (r: PromiseSettledResult<void>) =>
        r.status === "rejected" && r.reason instanceof KvError && r.reason.code === "UNKNOWN_MAP";
      if (results.some((r) => r.status === "fulfilled" || unknown(r))) this.#markReady();
      else if (this.#now() - this.#openedAt >= this.#o.remoteReadyWaitMs) {
        // Every pull failed (a backup site left, timeouts): it cannot block the site for ever.
        this.#host.log.warn({ map: this.name }, "ready without the backup sites' data: no pull succeeded");
        this.#markReady();
      }
    });
  }

  #markReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.#lastSiteSync = this.#now();
    this.#resolveReady();
  }

  #sync(peer: RelayAddress, kind: "site" | "remote"): Promise<void> {
    sessionCounter = (sessionCounter + 1) % 0x7fff_ffff;
    const id = sessionCounter;
    const toPeer: Destination = { kind: "member", site: peer.site, name: peer.name };
    const session = new SyncSession({
      session: id,
      map: this.name,
      store: this.#store,
      peer: { send: (m) => this.#host.sendAsync(toPeer, m) },
      // Entries from another site's coordinator are passed on to our site.
      apply: (e) => this.#applyRemote(e, kind === "remote"),
      push: async (entries) => {
        for (const chunk of chunks(entries.map(wireEntry), this.#o.batchBytes))
          await this.#host.sendAsync(toPeer, { type: "update", map: this.name, batch: 0, entries: chunk });
      },
      stepTimeoutMs: this.#o.syncStepTimeoutMs,
      now: this.#now(),
    });
    const label = `${peer.name}:${peer.site}`;
    this.#sessions.set(id, { session, peer: kind === "site" ? peer.name : label, kind });
    session.start();
    return session.result.then(
      (r) => {
        this.#sessions.delete(id);
        this.#syncsDone++;
        this.#syncReceived += r.entriesReceived;
        this.#syncSent += r.entriesSent;
        this.#syncRetries += r.retries;
        if (kind === "remote") this.#scheduleFlush();
        this.#host.log.info(
          {
            map: this.name,
            peer: label,
            equal: r.equal,
            buckets: r.bucketsDiffering,
            received: r.entriesReceived,
            applied: r.entriesApplied,
            sent: r.entriesSent,
          },
          "map synced",
        );
        this.emit("synced", {
          peer: label,
          received: r.entriesReceived,
          sent: r.entriesSent,
          equal: r.equal,
        });
      },
      (err: unknown) => {
        this.#sessions.delete(id);
        this.#syncsFailed++;
        this.#host.log.warn({ map: this.name, peer: label, err: (err as Error).message }, "map sync failed");
        throw err;
      },
    );
  }

  async #answer(from: RelayAddress, m: SyncRequest) {
    const to: Destination = { kind: "member", site: from.site, name: from.name };
    try {
      if (m.type === "digest-req") this.#syncAnswered++;
      for (const out of answerSync(this.#store, m, this.#o.batchBytes)) {
        await this.#host.sendAsync(to, out);
        if (out.type === "bucket-res") this.#syncServed += out.entries.length;
      }
    } catch (err) {
      this.#host.log.warn(
        { map: this.name, to: `${from.name}:${from.site}`, err: (err as Error).message },
        "sync answer not sent",
      );
    }
  }

  #sendTo(to: RelayAddress, m: KvMessage): void {
    try {
      this.#host.send({ kind: "member", site: to.site, name: to.name }, m);
    } catch (err) {
      this.#host.log.debug({ map: this.name, err: (err as Error).message }, "kv message not sent");
    }
  }

  // ------------------------------------------------------------------------------------------
  // Timer: resends, offline detection, probes, periodic syncs, tombstones

  #tick(): void {
    if (this.#closed) return;
    try {
      this.#tickOnce();
    } catch (err) {
      this.#host.log.error({ map: this.name, err: (err as Error).stack }, "kv tick failed");
    }
  }

  #tickOnce(): void {
    const now = this.#now();
    for (const s of this.#sessions.values()) s.session.expire(now);
    if (!this.#ready) this.#startTransfer();
    this.#refreshBackups();
    for (const b of this.#backups.values()) this.#checkBackup(b, now);
    this.#settleWaiters();
    if (this.#inSite.length > 0) this.#scheduleFlush();
    const coordinator = this.#host.coordinator() === this.#host.member;
    const every = this.#o.antiEntropyIntervalMs;
    if (this.#ready && !coordinator && now - this.#lastSiteSync >= every) {
      this.#lastSiteSync = now;
      const coord = this.#host.coordinator();
      if (coord && ![...this.#sessions.values()].some((s) => s.kind === "site"))
        this.#sync({ site: this.#host.site, name: coord }, "site").catch(() => {});
    }
    if (coordinator && now - this.#lastRemoteSync >= every) {
      this.#lastRemoteSync = now;
      for (const r of this.#host.remoteSites()) {
        const b = this.#backup(r.site);
        if (!b?.online) continue;
        const label = `${r.coordinator}:${r.site}`;
        if ([...this.#sessions.values()].some((s) => s.peer === label)) continue;
        this.#sync({ site: r.site, name: r.coordinator }, "remote").catch(() => {});
      }
    }
    if (this.#store.tombstones > 0)
      this.#store.collectTombstones(
        (e) => this.#tombstoneStable(e, now),
        this.#o.tombstoneGraceMs,
        // The backlogs' memory of what was acknowledged goes with the key.
        (key) => {
          for (const b of this.#backups.values()) b.backlog.forget(key);
        },
      );
  }

  #checkBackup(b: Backup, now: number): void {
    if (!b.online) {
      // Probe every anti-entropy period: an acknowledgement brings it back (see #onAck).
      if (now - b.lastAckAt >= this.#o.antiEntropyIntervalMs && b.probe !== 0) b.probe = 0;
      if (b.probe === 0) {
        b.probe = PROBE_BATCH_BASE + Math.floor(Math.random() * 0x0fff_ffff);
        b.lastAckAt = now;
        const r = this.#host.remoteSites().find((x) => x.site === b.site);
        if (r)
          this.#sendTo(
            { site: b.site, name: r.coordinator },
            { type: "update", map: this.name, batch: b.probe, entries: [] },
          );
      }
      return;
    }
    // Not visible (no route to it) for offlineAfterMs: offline, whether or not this member has
    // anything for it. Without it a member with nothing in flight showed a vanished site online
    // (status, relay_kv_backup_online) until its next write failed its resends.
    if (b.awaySince !== null && now - b.awaySince >= this.#o.offlineAfterMs) {
      this.#takeOffline(b, now, "backup site not visible: taken offline");
      return;
    }
    let resent = false;
    for (const [batch, at] of b.sentAt) {
      if (now - at < this.#o.resendAfterMs) continue;
      b.sentAt.delete(batch);
      b.backlog.requeue(batch);
      resent = true;
    }
    // Unreachable: changes wait, nothing is in flight and the channel takes nothing for the site
    // (no route to it). No resend can fail then, so this is the other way to go offline: without
    // it, a site that vanished would fill the backlog and refuse this site's writes.
    if (b.backlog.queued > 0 && b.sentAt.size === 0 && !this.#host.writableTo(b.site)) {
      b.unreachableSince ??= now;
      if (now - b.unreachableSince >= this.#o.offlineAfterMs) {
        this.#takeOffline(b, now, "backup site unreachable: taken offline");
        return;
      }
    } else b.unreachableSince = null;
    if (!resent) return;
    b.resends++;
    if (b.resends >= this.#o.offlineAfterResends && now - b.lastAckAt >= this.#o.offlineAfterMs) {
      this.#takeOffline(b, now, "backup site does not acknowledge: taken offline");
      return;
    }
    this.#scheduleFlush();
  }

  /** Stops replicating to `b` (its backlog is dropped); probed until it answers, then synced. */
  #takeOffline(b: Backup, now: number, why: string): void {
    this.#host.log.warn(
      { map: this.name, site: b.site, pendingKeys: b.backlog.pendingKeys, silentMs: now - b.lastAckAt },
      `${why} (anti-entropy brings it up to date when it answers)`,
    );
    b.online = false;
    b.upSince = null;
    b.backlog = this.#newBacklog();
    b.sentAt.clear();
    b.unreachableSince = null;
    b.probe = 0;
    b.lastAckAt = now;
    this.emit("backup-status", { site: b.site, online: false });
    this.#settleWaiters();
  }
}

/** Splits entries into groups of at most `maxBytes` on the wire (at least one entry each). */
function chunks(entries: readonly Entry[], maxBytes: number): Entry[][] {
  return chunkEntries(entries, { ...KV_WIRE_LIMITS, maxMessageBytes: maxBytes + MAX_ENVELOPE_BYTES });
}

function positive(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new TypeError(`ReplicatedMap option ${name} must be a positive integer, not ${String(v)}`);
  return n;
}
