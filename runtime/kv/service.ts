// The replicated maps of one member: opens maps by name on a RelayChannel and carries their
// messages as the channel's service data (RelayChannel.sendService, first byte KV_SERVICE), so the
// application's own messages and the maps' never mix. A message for a map this member has not
// opened is answered with an UNKNOWN_MAP error (requests only, so two members never loop).
import { createLogger, type Logger } from "../observability/log.js";
import type { RelayChannel } from "../relay/channel.js";
import type { Destination } from "../relay/envelope.js";
import { RelayError } from "../relay/errors.js";
import type { RelayMessage } from "../relay/types.js";
import { decodeKvMessage, encodeKvMessage, type KvMessage, MAX_MAP_NAME_BYTES } from "./codec.js";
import { KvError } from "./errors.js";
import {
  KV_WIRE_LIMITS,
  type KvHost,
  type MapStatus,
  ReplicatedMap,
  type ReplicatedMapOptions,
} from "./replicated-map.js";
import { isSyncRequest } from "./sync.js";

/** First payload byte of the maps' service data ("K"). */
export const KV_SERVICE = 0x4b;

export interface KvServiceOptions {
  readonly logger?: Logger;
}

export interface KvServiceStats {
  /** Service payloads that were not well-formed kv messages (dropped; a sync retries). */
  readonly badMessages: number;
  /** Messages for maps not open here. */
  readonly unknownMap: number;
}

/** A map's line in `relay probe`: size, readiness, each backup site's state and the syncs. */
export function probeLine(s: MapStatus): string {
  const backups = s.backups.map((b) => {
    const state = b.online ? "online" : "OFFLINE";
    const lag = b.lagMs === null ? "" : `, lag ${b.lagMs} ms`;
    const away = b.awayMs === null ? "" : `, away ${Math.round(b.awayMs / 1000)} s`;
    return `backup ${b.site} ${state}, ${b.pendingKeys} pending${lag}${away}`;
  });
  return [
    `${s.map}: ${s.entries} entries, ${s.tombstones} tombstones, ${s.ready ? "ready" : "NOT READY"}`,
    ...(backups.length > 0 ? backups : ["no backup site visible"]),
    `${s.conflicts} conflicts`,
    `syncs ${s.syncs.completed} done, ${s.syncs.failed} failed, ${s.syncs.running} running`,
  ].join("; ");
}

export class KvService {
  readonly #channel: RelayChannel;
  readonly #log: Logger;
  readonly #maps = new Map<string, ReplicatedMap<never>>();
  readonly #host: KvHost;
  #badMessages = 0;
  #unknownMap = 0;
  #closed = false;
  readonly #onService = (m: RelayMessage) => this.#receive(m);
  readonly #onTopology = () => {
    for (const map of this.#maps.values()) map.topologyChanged();
  };

  constructor(channel: RelayChannel, options: KvServiceOptions = {}) {
    this.#channel = channel;
    this.#log = options.logger ?? createLogger("kv", { site: channel.site, node: channel.name });
    this.#host = this.#makeHost();
    channel.on("service", this.#onService);
    channel.on("topology", this.#onTopology);
    channel.on("view", this.#onTopology);
    channel.setProbeMaps(() => this.probeLines());
  }

  /** One probeLine per open map, in name order (`relay probe`, the chat's `topo`). */
  probeLines(): string[] {
    return this.names().map((n) => probeLine(this.#maps.get(n)!.status()));
  }

  /** Opens (or returns the open) map `name`: 1..64 bytes of UTF-8. */
  open<V = unknown>(name: string, options: ReplicatedMapOptions<V> = {}): ReplicatedMap<V> {
    if (this.#closed) throw new KvError("CLOSED", "the kv service is closed");
    const bytes = Buffer.byteLength(name);
    if (bytes === 0 || bytes > MAX_MAP_NAME_BYTES)
      throw new KvError("BAD_KEY", `map name of ${bytes} bytes: use 1..${MAX_MAP_NAME_BYTES} bytes`);
    const open = this.#maps.get(name);
    if (open) return open as unknown as ReplicatedMap<V>;
    const map = new ReplicatedMap<V>(this.#host, name, options);
    this.#maps.set(name, map as unknown as ReplicatedMap<never>);
    return map;
  }

  /** The open map `name`, if any. */
  get(name: string): ReplicatedMap<unknown> | undefined {
    return this.#maps.get(name) as ReplicatedMap<unknown> | undefined;
  }

  /** Names of the open maps. */
  names(): string[] {
    return [...this.#maps.keys()].sort();
  }

  stats(): KvServiceStats {
    return { badMessages: this.#badMessages, unknownMap: this.#unknownMap };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.off("service", this.#onService);
    this.#channel.off("topology", this.#onTopology);
    this.#channel.off("view", this.#onTopology);
    this.#channel.setProbeMaps(null);
    for (const m of this.#maps.values()) m.close();
    this.#maps.clear();
  }

  #receive(msg: RelayMessage): void {
    if (this.#closed || msg.payload[0] !== KV_SERVICE) return;
    let m: KvMessage;
    try {
      m = decodeKvMessage(msg.payload.subarray(1), KV_WIRE_LIMITS);
    } catch (err) {
      this.#badMessages++;
      this.#log.warn(
        { from: `${msg.from.name}:${msg.from.site}`, err: (err as Error).message },
        "bad kv message dropped",
      );
      return;
    }
    const map = this.#maps.get(m.map);
    if (map) {
      try {
        map.onMessage(msg.from, msg.dest, m);
      } catch (err) {
        this.#log.error({ map: m.map, err: (err as Error).stack }, "kv message handler failed");
      }
      return;
    }
    this.#unknownMap++;
    if (isSyncRequest(m) || (m.type === "update" && m.batch !== 0)) {
      const reply: KvMessage = {
        type: "error",
        map: m.map,
        code: "UNKNOWN_MAP",
        message: `map "${m.map}" is not open on ${this.#channel.name}:${this.#channel.site}`,
      };
      try {
        this.#send({ kind: "member", site: msg.from.site, name: msg.from.name }, reply);
      } catch {
        // no room: the asker times out
      }
    }
  }

  #send(dest: Destination, m: KvMessage): void {
    const body = encodeKvMessage(m, KV_WIRE_LIMITS);
    const payload = Buffer.allocUnsafe(body.length + 1);
    payload[0] = KV_SERVICE;
    body.copy(payload, 1);
    this.#channel.sendService(dest, payload);
  }

  #makeHost(): KvHost {
    const ch = this.#channel;
    return {
      site: ch.site,
      member: ch.name,
      log: this.#log,
      coordinator: () => ch.view?.members[0]?.name ?? null,
      members: () => ch.view?.members.map((m) => m.name) ?? [],
      remoteSites: () =>
        ch
          .topology()
          .sites.filter((s) => s.site !== ch.site && s.members.length > 0)
          .map((s) => ({ site: s.site, coordinator: s.members[0]!.name })),
      writableTo: (site) => ch.writableTo({ kind: "site", site }),
      send: (dest, m) => this.#send(dest, m),
      sendAsync: async (dest, m) => {
        for (;;) {
          if (this.#closed) throw new KvError("CLOSED", "the kv service is closed");
          try {
            this.#send(dest, m);
            return;
          } catch (err) {
            if (!(err instanceof RelayError) || err.code !== "BUFFER_FULL") throw err;
          }
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(t);
              ch.off("drain", done);
              resolve();
            };
            const t = setTimeout(done, 250); // a drain may belong to another destination
            ch.on("drain", done);
          });
        }
      },
    };
  }
}
