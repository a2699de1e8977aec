// `relay local`: the embedded default (`npm start`). Two routers, nyc with 5 members and sfc with
// 3, as separate processes on loopback, then `relay chat` as Temp in sfc on this terminal.

import { type Command, InvalidArgumentError } from "commander";
import { ConfigError } from "../../../contract/errors.js";
import { parseInitialHosts } from "../../../contract/initial-hosts.js";
import { LocalTopology, parseSites } from "../local-topology.js";
import { onStopSignal } from "../process-lifecycle.js";

interface LocalOptions {
  chat: boolean;
  routers?: string;
  sites: string;
  routerCount: number;
  chatSite?: string;
  chatName: string;
  logDir?: string;
  readyTimeout: number;
  kvMaps?: string;
}

export function registerLocalCommand(program: Command): void {
  program
    .command("local")
    .description("start the two-site walkthrough topology on loopback and chat in it (npm start)")
    .option("--no-chat", "only run the topology, until Ctrl-C / SIGTERM")
    .option("--routers <list>", "use these routers (host[port],...) instead of starting our own")
    .option("--sites <list>", "sites and members per site", "nyc=5,sfc=3")
    .option(
      "--kv-maps <names>",
      "replicated maps every node hosts (KV_MAPS), each node's API on its own port (try 'kv help' in the chat)",
      (v) => {
        if (!v.split(",").every((m) => /^[A-Za-z0-9._-]{1,64}$/.test(m)))
          throw new InvalidArgumentError(
            "--kv-maps: comma-separated names of 1..64 letters, digits, '.', '_' or '-'.",
          );
        return v;
      },
    )
    .option(
      "--router-count <n>",
      "routers to start",
      (v) => {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 8)
          throw new InvalidArgumentError("--router-count must be 1..8.");
        return n;
      },
      2,
    )
    .option("--chat-site <site>", "site the chat joins (default: sfc if present, else the last site)")
    .option("--chat-name <name>", "name of the chat member", "Temp")
    .option(
      "--log-dir <dir>",
      "where the processes' logs go, created if missing (default: a new temp directory)",
    )
    .option(
      "--ready-timeout <seconds>",
      "give up (exit 1) when the topology is not ready after this long",
      (v) => {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 3600)
          throw new InvalidArgumentError("--ready-timeout must be 1..3600 seconds.");
        return n;
      },
      60,
    )
    .action(async (o: LocalOptions) => {
      const t0 = Date.now();
      const sites = parseSites(o.sites);
      const routers = o.routers ? parseInitialHosts(o.routers, "--routers") : undefined;
      const chatSite =
        o.chatSite ?? (sites.some((s) => s.site === "sfc") ? "sfc" : sites[sites.length - 1]!.site);
      if (!sites.some((s) => s.site === chatSite))
        throw new ConfigError(`--chat-site: ${chatSite} is not in --sites`);
      const print = (line: string) => process.stdout.write(`${line}\n`);
      const topo = new LocalTopology({
        sites,
        routerCount: o.routerCount,
        ...(routers ? { routers } : {}),
        ...(o.logDir ? { logDir: o.logDir } : {}),
        readyTimeoutMs: o.readyTimeout * 1000,
        ...(o.kvMaps ? { kvMaps: o.kvMaps } : {}),
        print,
      });
      let exiting = false;
      const exit = (code: number) => {
        if (exiting) return;
        exiting = true;
        void topo.stop().then(() => process.exit(code));
      };
      onStopSignal(() => exit(0));
      print(`logs: ${topo.logDir}`);
      try {
        await topo.start();
        await topo.waitReady();
        const members = sites.reduce((n, s) => n + s.members, 0);
        print(`ready: ${members} members in ${sites.length} sites, ${Date.now() - t0} ms after start`);
      } catch (err) {
        process.stderr.write(`relay local: ${(err as Error).message}\n`);
        exit(1);
        return;
      }
      if (!o.chat) {
        print("running; Ctrl-C or SIGTERM stops everything");
        return;
      }
      const code = await topo.runChat(chatSite, o.chatName);
      exit(code);
    });
}
