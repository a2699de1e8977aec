// `relay probe`: asks every member of a site (or of every site) for its state and prints it like
// the walkthrough's probe.sh. It joins the site as a short-lived member to ask, then leaves.

import type { Command } from "commander";
import { ConfigError } from "../../../contract/errors.js";
import { createLogger } from "../../observability/log.js";
import { RelayChannel } from "../../relay/channel.js";
import { channelOptionsFor } from "../../relay/config.js";
import type { ProbeInfo } from "../../relay/control.js";
import { formatProbe } from "../chat-format.js";
import { type MemberFlags, memberConfig } from "../member-config.js";
import { memberOptions } from "./chat.js";

interface ProbeOptions extends Omit<MemberFlags, "site"> {
  port: number;
  /** Site to probe. */
  site?: string;
  /** Site to join to ask (default: SITE, else --site). */
  joinSite?: string;
  json?: boolean;
  timeout: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function registerProbeCommand(program: Command): void {
  memberOptions(
    program.command("probe").description("print the state of every member of a site, or of all sites"),
    "--join-site",
  )
    .option("--site <site>", "only the members of this site (default: every site)")
    .option("--json", "print JSON (one array)")
    .option("--timeout <ms>", "how long to collect answers", (v) => Number(v), 2000)
    .action(async (o: ProbeOptions) => {
      process.env["LOG_LEVEL"] ??= "warn";
      if (!Number.isInteger(o.timeout) || o.timeout < 1 || o.timeout > 600_000) {
        throw new ConfigError("--timeout must be an integer between 1 and 600000");
      }
      const name = `probe-${process.pid}`;
      const joinSite = o.joinSite ?? process.env["SITE"] ?? o.site;
      const config = memberConfig({ ...o, ...(joinSite ? { site: joinSite } : {}) }, name);
      const log = createLogger("relay-probe", { site: config.site, node: name });
      const channel = new RelayChannel(channelOptionsFor(config, { name, bindPort: o.port, logger: log }));
      const answers = new Map<string, { info: ProbeInfo; bytes: number }>();
      channel.on("probe-response", (info) => {
        if (info.name === name && info.site === config.site) return; // our own answer
        answers.set(`${info.name}:${info.site}`, { info, bytes: Buffer.byteLength(JSON.stringify(info)) });
      });
      await channel.connect();
      // Let the site master's topology arrive so we know how many answers to expect.
      const deadline = Date.now() + o.timeout;
      while (!channel.isSiteMaster && channel.topology().routers.length === 0 && Date.now() < deadline)
        await sleep(10);
      await sleep(100);
      channel.probe(o.site);
      const expected = () =>
        channel
          .topology()
          .sites.filter((s) => o.site === undefined || s.site === o.site)
          .reduce(
            (n, s) => n + s.members.filter((m) => !(s.site === config.site && m.name === name)).length,
            0,
          );
      while (Date.now() < deadline && answers.size < expected()) await sleep(20);
      await Promise.race([channel.close().catch(() => undefined), sleep(3000)]);
      const list = [...answers.values()].sort((a, b) =>
        a.info.site === b.info.site
          ? a.info.name < b.info.name
            ? -1
            : 1
          : a.info.site < b.info.site
            ? -1
            : 1,
      );
      if (o.json)
        process.stdout.write(
          `${JSON.stringify(
            list.map((a) => a.info),
            null,
            2,
          )}\n`,
        );
      else {
        for (const [i, a] of list.entries()) process.stdout.write(`${formatProbe(i + 1, a.bytes, a.info)}\n`);
      }
      process.stderr.write(`${list.length} responses (${expected()} members expected)\n`);
      process.exit(list.length > 0 ? 0 : 1);
    });
}
