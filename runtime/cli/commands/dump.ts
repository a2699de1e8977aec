// `relay dump HOST[PORT]`: asks a GossipRouter (ours or JGroups') for its members with GET_MBRS and
// prints one member per line, like JGroups' RouterStubGet. Output on stdout; exit 1 when the router
// is unreachable or does not answer in time.

import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { type Command, InvalidArgumentError } from "commander";
import { ConfigError } from "../../../contract/errors.js";
import { parseInitialHosts, type RouterEndpoint } from "../../../contract/initial-hosts.js";
import { ROUTER_PORT } from "../../../contract/ports.js";
import { authFrame } from "../../protocol/auth.js";
import { decodeBody } from "../../protocol/codec.js";
import { ALL_GROUPS_PREFIX, GRACEFUL_CLOSE_FRAME, getMbrsFrame } from "../../protocol/frames.js";
import { FrameSplitter } from "../../protocol/splitter.js";
import { type Address, GossipType, type PingData } from "../../protocol/types.js";
import { readRouterToken } from "../../relay/config.js";
import { intArg, readableFile } from "./router.js";

const DEFAULT_DUMP_PORT = ROUTER_PORT;

export interface MemberRow {
  readonly group: string | null;
  readonly address: string;
  readonly site: string | null;
  readonly name: string | null;
  readonly physical: string | null;
}

/** Human form of an address: uuid, uuid:site for site addresses, host:port for IP addresses. */
export function formatAddress(a: Address | null): string | null {
  if (a === null) return null;
  switch (a.kind) {
    case "uuid":
    case "magic":
      return a.uuid;
    case "site-uuid":
      return a.site === null ? a.uuid : `${a.uuid}:${a.site}`;
    case "site-master":
      return `SiteMaster(${a.site ?? "*"})`;
    case "ip": {
      const host = a.host === null ? "" : a.host.includes(":") ? `[${a.host}]` : a.host;
      return `${host}:${a.port}`;
    }
  }
}

export function memberRow(group: string | null, p: PingData): MemberRow {
  const m = p.member;
  return {
    group,
    address: formatAddress(m) ?? "-",
    site: m && (m.kind === "site-uuid" || m.kind === "site-master") ? m.site : null,
    name: p.logicalName,
    physical: formatAddress(p.physicalAddr),
  };
}

/** `host[port]` or a bare host (port 12001). */
function parseTarget(value: string): RouterEndpoint {
  const text = value.includes("[") ? value : `${value}[${DEFAULT_DUMP_PORT}]`;
  const eps = parseInitialHosts(text, "HOST[PORT]");
  if (eps.length !== 1) throw new InvalidArgumentError("give exactly one router: HOST[PORT]");
  return eps[0]!;
}

interface DumpOptions {
  group?: string;
  timeout: number;
  json?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** Token mode: a site's token file (`<dir>/<site>`: the site is the file name unless --site). */
  tokenFile?: string;
  site?: string;
}

/** Connects, sends GET_MBRS and collects the answer until GET_MBRS_RSP_LAST. */
export function fetchMembers(ep: RouterEndpoint, o: DumpOptions): Promise<MemberRow[]> {
  const where = `${ep.host}[${ep.port}]`;
  return new Promise((resolve, reject) => {
    // Token mode: AUTH first (read before connecting, so a bad file is a plain error).
    let auth: Buffer | null = null;
    try {
      auth = o.tokenFile
        ? authFrame(o.site ?? path.basename(o.tokenFile), readRouterToken(o.tokenFile, "--token-file"))
        : null;
    } catch (err) {
      reject(err);
      return;
    }
    const useTls = !!(o.tlsCa || o.tlsCert);
    const socket: net.Socket = useTls
      ? tls.connect({
          host: ep.host,
          port: ep.port,
          ...(net.isIP(ep.host) ? {} : { servername: ep.host }),
          ...(o.tlsCa ? { ca: [readFileSyncSafe("--tls-ca", o.tlsCa)] } : {}),
          ...(o.tlsCert ? { cert: readFileSyncSafe("--tls-cert", o.tlsCert) } : {}),
          ...(o.tlsKey ? { key: readFileSyncSafe("--tls-key", o.tlsKey) } : {}),
        })
      : net.connect({ host: ep.host, port: ep.port });
    const rows: MemberRow[] = [];
    const splitter = new FrameSplitter();
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        // Leave like a JGroups client: GRACEFUL_CLOSE, then close.
        socket.end(GRACEFUL_CLOSE_FRAME);
        setTimeout(() => socket.destroy(), 500).unref();
        resolve(rows);
      }
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `no answer from ${where} within ${o.timeout} ms` +
              (o.group ? ` (JGroups routers do not answer for a group that does not exist)` : ""),
          ),
        ),
      o.timeout,
    );
    socket.once(useTls ? "secureConnect" : "connect", () => {
      if (auth) socket.write(auth);
      socket.write(getMbrsFrame(o.group ?? null));
    });
    socket.on("error", (err: Error & { code?: string }) =>
      finish(
        new Error(`cannot talk to ${where}: ${err.code ?? ""} ${err.message}`.replace(/\s+/g, " ").trim()),
      ),
    );
    socket.on("close", () => finish(new Error(`${where} closed the connection before answering`)));
    socket.on("data", (chunk: Buffer) => {
      try {
        splitter.push(chunk, {
          frame: (f) => {
            if (done) return;
            const d = decodeBody(f.subarray(4));
            if (d.type !== GossipType.GetMbrsRsp && d.type !== GossipType.GetMbrsRspLast) return;
            const group = d.group?.startsWith(ALL_GROUPS_PREFIX)
              ? d.group.slice(ALL_GROUPS_PREFIX.length)
              : d.group;
            for (const p of d.pingData) rows.push(memberRow(group, p));
            if (d.type === GossipType.GetMbrsRspLast) finish(null);
          },
          gracefulClose: () =>
            finish(
              new Error(
                `${where} closed the connection (GRACEFUL_CLOSE) before answering` +
                  (o.tokenFile ? "" : " (a router in token mode needs --token-file)"),
              ),
            ),
        });
      } catch (err) {
        finish(new Error(`bad answer from ${where}: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  });
}

function readFileSyncSafe(option: string, file: string): Buffer {
  return readFileSync(readableFile(option, file));
}

export function registerDumpCommand(program: Command): void {
  program
    .command("dump")
    .description("list the members registered on a GossipRouter (GET_MBRS), one per line")
    .argument("<router>", "HOST[PORT], e.g. 127.0.0.1[12001] (port 12001 when omitted)", parseTarget)
    .option("--group <name>", "only this group (default: every group)")
    .option("--timeout <ms>", "give up after this long", intArg("--timeout", 1, 600_000), 3000)
    .option("--json", "print a JSON array instead of lines")
    .option("--tls-cert <file>", "PEM client certificate (routers with client authentication)")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--tls-ca <file>", "PEM CA bundle that signs the router's certificate")
    .option(
      "--token-file <file>",
      "routers in token mode: a site's token file (e.g. <log dir>/tokens/nyc of relay local)",
    )
    .option("--site <site>", "the site of --token-file (default: its file name)")
    .action(async (ep: RouterEndpoint, o: DumpOptions) => {
      if (!!o.tlsCert !== !!o.tlsKey) throw new ConfigError("--tls-cert and --tls-key go together");
      let rows: MemberRow[];
      try {
        rows = await fetchMembers(ep, o);
      } catch (err) {
        process.stderr.write(`relay dump: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
        return;
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
        return;
      }
      const dash = (s: string | null) => (s === null || s === "" ? "-" : s);
      for (const r of rows) {
        process.stdout.write(
          [dash(r.group), r.address, dash(r.site), dash(r.name), dash(r.physical)].join("\t") + "\n",
        );
      }
      if (rows.length === 0) process.stderr.write("relay dump: no members\n");
    });
}
