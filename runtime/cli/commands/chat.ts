// `relay chat`: the walkthrough's RelayDemo. Joins a site as a member; every line typed goes to
// every member of every site, and every member (this one included) answers "response".
// Non-interactive with --send: sends each line, waits for --expect answers, exits 1 if fewer came.
import readline from "node:readline";
import type { Command } from "commander";
import { KvService } from "../../kv/service.js";
import { createLogger } from "../../observability/log.js";
import { describeView, RelayChannel } from "../../relay/channel.js";
import { channelOptionsFor } from "../../relay/config.js";
import { answerBroadcasts, RESPONSE_TEXT } from "../../relay/responder.js";
import type { RelayMessage } from "../../relay/types.js";
import { durationArg, intArg, portArg } from "../args.js";
import {
  CHAT_HELP,
  formatChatLine,
  formatRoutes,
  formatSiteMasters,
  formatSites,
  formatTopology,
  printable,
} from "../chat-format.js";
import { runKvLine } from "../kv-chat.js";
import { type MemberFlags, memberConfig } from "../member-config.js";
import { onStopSignal } from "../process-lifecycle.js";

interface ChatOptions extends MemberFlags {
  name?: string;
  port: number;
  send: string[];
  expect?: number;
  timeout: number;
  waitSites: number;
  linger: number;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** Options shared by chat and probe (joining a site as a member). */
export function memberOptions(cmd: Command, siteFlag = "--site"): Command {
  return cmd
    .option(`${siteFlag} <site>`, "site to join (default: SITE)")
    .option("--cluster <name>", "local cluster name (default: CLUSTER, else relay)")
    .option("--members <list>", "the site's members, host[port],... (default: STATIC_MEMBERS / DNS_QUERY)")
    .option("--dns-query <name>", "headless-service name whose A records are the site's members")
    .option("--routers <list>", "routers, host[port],... (default: TUNNEL_INITIAL_HOSTS)")
    .option("--bind <addr>", "address to listen on (default: BIND_ADDR, else 127.0.0.1)")
    .option("--port <port>", "mesh port of this member (0 = ephemeral)", portArg("--port"), 0);
}

export function registerChatCommand(program: Command): void {
  memberOptions(
    program
      .command("chat")
      .description("join a site and chat with every member of every site (RelayDemo)")
      .option("--name <name>", "member name (default: chat-<pid>)"),
  )
    .option("--send <text>", "send this line instead of reading stdin (repeatable)", collect, [])
    .option("--expect <n>", "with --send: answers expected per line", intArg("--expect", 0, 100_000))
    .option(
      "--timeout <ms>",
      "with --send: how long to wait for the answers of one line",
      durationArg("--timeout", 1, 600_000),
      10_000,
    )
    .option(
      "--wait-sites <n>",
      "before sending or reading input, wait until this many sites are visible",
      intArg("--wait-sites", 0, 1000),
      0,
    )
    .option(
      "--linger <ms>",
      "with --send: keep printing this long after the last expected answer",
      durationArg("--linger", 0, 60_000),
      300,
    )
    .addHelpText("after", `\n${CHAT_HELP}`)
    .action(async (o: ChatOptions) => {
      process.env["LOG_LEVEL"] ??= "warn";
      const name = o.name ?? `chat-${process.pid}`;
      const config = memberConfig(o, name);
      const log = createLogger("relay-chat", { site: config.site, node: name });
      const channel = new RelayChannel(channelOptionsFor(config, { name, bindPort: o.port, logger: log }));
      answerBroadcasts(channel);
      const code = o.send.length > 0 ? await runScripted(channel, o) : await runInteractive(channel, o);
      process.exit(code);
    });
}

function text(m: RelayMessage): string {
  return Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength).toString("utf8");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, deadline: number): Promise<boolean> {
  while (!cond()) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  return true;
}

async function runScripted(channel: RelayChannel, o: ChatOptions): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let responses = 0;
  channel.on("message", (m) => {
    const t = text(m);
    if (t === RESPONSE_TEXT && m.dest.kind === "member") responses++;
    out(formatChatLine(printable(t), m.from, channel.site));
  });
  await channel.connect();
  // The other members install the view with us in it a moment after we do; the site master's
  // topology update arriving is a good sign that they have.
  await until(() => channel.isSiteMaster || channel.topology().routers.length > 0, Date.now() + 2000);
  await sleep(200);
  if (o.waitSites > 0) {
    const ok = await until(() => channel.topology().sites.length >= o.waitSites, Date.now() + o.timeout);
    if (!ok)
      process.stderr.write(
        `relay chat: only ${channel.topology().sites.length} of ${o.waitSites} sites visible\n`,
      );
  }
  let failed = 0;
  for (const [i, line] of o.send.entries()) {
    responses = 0;
    channel.sendToAll(Buffer.from(line, "utf8"));
    if (o.expect === undefined) {
      await sleep(o.linger);
      continue;
    }
    const want = o.expect;
    const ok = await until(() => responses >= want, Date.now() + o.timeout);
    await sleep(o.linger);
    if (!ok) {
      failed++;
      process.stderr.write(
        `relay chat: line ${i + 1}: ${responses} of ${want} responses within ${o.timeout} ms\n`,
      );
    }
  }
  await closeQuietly(channel);
  return failed > 0 ? 1 : 0;
}

async function closeQuietly(channel: RelayChannel): Promise<void> {
  await Promise.race([channel.close().catch(() => undefined), sleep(3000)]);
}

async function runInteractive(channel: RelayChannel, o: ChatOptions): Promise<number> {
  const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
  let rl: readline.Interface | null = null;
  const print = (line: string) => {
    if (tty && rl) {
      readline.clearLine(process.stdout, 0);
      readline.cursorTo(process.stdout, 0);
      process.stdout.write(`${line}\n`);
      rl.prompt(true);
    } else process.stdout.write(`${line}\n`);
  };
  channel.on("message", (m) => print(formatChatLine(printable(text(m)), m.from, channel.site)));
  channel.on("site-unreachable", (b) =>
    print(`-- site ${b.site} is unreachable: ${b.messages} message(s) wait and will be sent when it is back`),
  );
  channel.on("site-reachable", (b) => print(`-- site ${b.site} is reachable again`));
  channel.on("site-master", (e) =>
    print(e.active ? "-- this member is now the site master" : "-- no longer site master"),
  );
  let quitting: Promise<number> | null = null;
  /** Opened by the first `kv` line: this member then holds a replica of the maps it names. */
  let kv: KvService | null = null;
  const quit = (): Promise<number> => {
    quitting ??= (async () => {
      rl?.close();
      kv?.close();
      await closeQuietly(channel);
      return 0;
    })();
    return quitting;
  };
  onStopSignal(() => void quit().then((c) => process.exit(c)));
  await channel.connect();
  if (o.waitSites > 0) {
    await until(() => channel.topology().sites.length >= o.waitSites, Date.now() + o.timeout);
  }
  print(
    `-- joined site ${channel.site} as ${channel.name}: view ${describeView(channel.view!)}; type 'help'`,
  );

  // Input is read only now: lines piped in before the join was complete are not lost.
  const input = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  rl = input;
  input.setPrompt("> ");
  return new Promise<number>((resolve) => {
    // Lines run one after the other: a `kv` line waits for its map, and what follows (a quit
    // piped in right after it) waits for that.
    let pending: Promise<void> = Promise.resolve();
    const onLine = async (raw: string): Promise<void> => {
      const line = raw.trim();
      const t = channel.topology();
      // Answers to commands: plain output, the prompt comes back once at the end.
      const print = (text: string) => process.stdout.write(`${text}\n`);
      switch (line) {
        case "":
          break;
        case "help":
          print(CHAT_HELP);
          break;
        case "topo":
          print(formatTopology(t));
          // The maps this member holds a replica of (opened by a `kv` line), as `relay probe` shows them.
          if (kv && kv.names().length > 0)
            print(["maps on this member:", ...kv.probeLines().map((l) => `  ${l}`)].join("\n"));
          break;
        case "sites":
          print(formatSites(t));
          break;
        case "sm":
          print(formatSiteMasters(t));
          break;
        case "routes":
          print(formatRoutes(t));
          break;
        case "view":
          print(`view: ${channel.view ? describeView(channel.view) : "(none)"}`);
          break;
        case "quit":
        case "exit":
          await quit().then(resolve);
          return;
        default:
          if (line === "kv" || line.startsWith("kv ")) {
            kv ??= new KvService(channel, {
              logger: createLogger("kv", { site: channel.site, node: channel.name }),
            });
            print(await runKvLine(kv, line));
            break;
          }
          try {
            channel.sendToAll(Buffer.from(raw, "utf8"));
          } catch (err) {
            print(`-- not sent: ${(err as Error).message}`);
          }
      }
      if (tty) input.prompt();
    };
    input.on("line", (raw) => {
      pending = pending.then(() => onLine(raw));
    });
    input.on("close", () => void pending.then(() => quit()).then(resolve));
    if (tty) input.prompt();
  });
}
