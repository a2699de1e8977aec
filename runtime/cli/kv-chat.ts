// The `kv ...` lines of `relay chat` (and so of `relay local`'s prompt): the chat member holds a
// replica of each map it names, so a newcomer can write in one site, kill it, and read in the
// other by hand. Maps open on first use and are ready once their state transfer is done.
import { KvError } from "../kv/errors.js";
import type { ReplicatedMap } from "../kv/replicated-map.js";
import type { KvService } from "../kv/service.js";
import { versionKey } from "../kv/version.js";

export const KV_CHAT_HELP = [
  "  kv put <map> <key> <value>   write (JSON, or a word as a string); add --remote to wait for the backup sites",
  "  kv get <map> <key>           read",
  "  kv del <map> <key>           delete",
  "  kv dump <map> [prefix]       every entry (at most 100 shown)",
  "  kv status [map]              entries, backup sites, lag, pending keys",
].join("\n");

const READY_TIMEOUT_MS = 15_000;

async function openReady(kv: KvService, name: string): Promise<ReplicatedMap<unknown>> {
  const map = kv.open<unknown>(name);
  if (!map.isReady) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new KvError(
              "TIMEOUT",
              `map "${name}" still receiving its state after ${READY_TIMEOUT_MS / 1000} s`,
            ),
          ),
        READY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([map.ready, late]);
    } finally {
      clearTimeout(timer);
    }
  }
  return map;
}

/** A JSON value, or the text itself as a string (`kv put` in the chat and in `relay kv`). */
export function parseKvValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Runs one `kv ...` line; resolves with what to print. Never throws. */
export async function runKvLine(kv: KvService, line: string): Promise<string> {
  const words = line.trim().split(/\s+/).slice(1);
  const remote = words.includes("--remote");
  const [cmd, mapName, key, ...rest] = words.filter((w) => w !== "--remote");
  try {
    switch (cmd) {
      case "put": {
        if (!mapName || !key || rest.length === 0) return "usage: kv put <map> <key> <value> [--remote]";
        const map = await openReady(kv, mapName);
        const v = await map.put(key, parseKvValue(rest.join(" ")), remote ? { ack: "remote" } : {});
        return `-- ${key} written (version ${versionKey(v)}${remote ? ", applied by every backup site" : ""})`;
      }
      case "get": {
        if (!mapName || !key) return "usage: kv get <map> <key>";
        const map = await openReady(kv, mapName);
        const value = map.get(key);
        return value === undefined ? `-- no key ${key} in ${mapName}` : JSON.stringify(value);
      }
      case "del": {
        if (!mapName || !key) return "usage: kv del <map> <key>";
        const map = await openReady(kv, mapName);
        const v = await map.delete(key, remote ? { ack: "remote" } : {});
        return v ? `-- ${key} deleted` : `-- no key ${key} in ${mapName}`;
      }
      case "dump": {
        if (!mapName) return "usage: kv dump <map> [prefix]";
        const map = await openReady(kv, mapName);
        const keys = [...map.keys(key ?? "")].sort();
        const shown = keys.slice(0, 100).map((k) => `${k} = ${JSON.stringify(map.get(k))}`);
        if (keys.length > 100) shown.push(`-- ${keys.length - 100} more (relay kv dump shows all)`);
        return shown.length > 0 ? shown.join("\n") : `-- ${mapName} is empty`;
      }
      case "status": {
        const names = mapName ? [mapName] : kv.names();
        if (names.length === 0) return "-- no map open yet (kv get/put <map> ... opens one)";
        const out: string[] = [];
        for (const n of names) {
          const s = (await openReady(kv, n)).status();
          out.push(
            `${n}: ${s.entries} entries, ${s.conflicts} conflicts, ${s.ready ? "ready" : "receiving its state"}`,
          );
          for (const b of s.backups)
            out.push(
              `  backup ${b.site}: ${b.online ? "online" : "OFFLINE"}, ${b.pendingKeys} keys pending, lag ${b.lagMs === null ? "none" : `${b.lagMs} ms`}`,
            );
          if (s.backups.length === 0) out.push("  no backup site visible");
        }
        return out.join("\n");
      }
      default:
        return `kv commands:\n${KV_CHAT_HELP}`;
    }
  } catch (err) {
    return `-- ${err instanceof KvError ? `${err.code}: ` : ""}${(err as Error).message}`;
  }
}
