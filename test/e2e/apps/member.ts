// An e2e test app: one member of a site (a pod), configured exactly like `relay node` (the
// container env through contract/relay-env.ts, then the runtime's own channelOptionsFor), that
// records every numbered test message it receives and, as a sender, streams numbered messages to
// every site (or by unicast to one member with --to name:site, or to one site with --to-site). Run as
// `node --import tsx test/e2e/apps/member.ts --record FILE [--send N --rate R [--to name:site]]`.
//
// stdout: one JSON report per line ({"event": "state" | "sending" | "sent" | "stopped", ...});
// stderr: the runtime's JSON logs. The record file: `<epoch ms> <name>:<site> <n>` per message.
// Sending starts on SIGUSR2; SIGTERM flushes the record file, leaves the site and exits 0;
// with --join-on-signal the member joins its site only on SIGHUP.
import { createWriteStream } from "node:fs";
import { parseArgs } from "node:util";
import { parseRelayEnv } from "../../../contract/relay-env.js";
import { createLogger } from "../../../runtime/observability/log.js";
import { RelayChannel } from "../../../runtime/relay/channel.js";
import { channelOptionsFor } from "../../../runtime/relay/config.js";
import { RelayError } from "../../../runtime/relay/errors.js";

/** Prefix of the test messages: `e2e <sender> <n>`. */
const PREFIX = "e2e ";
/** A sender that cannot hand over one message for this long stops and says so. */
const GIVE_UP_MS = 30_000;
const CLOSE_GRACE_MS = 3_000;

const { values: args } = parseArgs({
  options: {
    record: { type: "string" },
    send: { type: "string", default: "0" },
    rate: { type: "string", default: "500" },
    to: { type: "string" },
    "to-site": { type: "string" },
    "join-on-signal": { type: "boolean", default: false },
  },
});
if (!args.record) {
  process.stderr.write("member: --record FILE is required\n");
  process.exit(2);
}
const sendCount = Number(args.send);
const rate = Number(args.rate);
if (
  !Number.isInteger(sendCount) ||
  sendCount < 0 ||
  sendCount > 1_000_000 ||
  !(rate > 0 && rate <= 100_000)
) {
  process.stderr.write("member: --send must be an integer in 0..1000000 and --rate in (0, 100000]\n");
  process.exit(2);
}

// --to name:site streams by unicast to that one member instead of to everyone.
const to = args.to === undefined ? null : /^([^:\s]{1,253}):([a-z0-9-]{1,63})$/.exec(args.to);
if (args.to !== undefined && !to) {
  process.stderr.write(`member: --to must be name:site (got ${JSON.stringify(args.to.slice(0, 80))})\n`);
  process.exit(2);
}
const target = to ? { name: to[1]!, site: to[2]! } : null;
// --to-site S streams to every member of one site (held while S is not reachable yet).
const toSite = args["to-site"] ?? null;
if (toSite !== null && !/^[a-z0-9-]{1,63}$/.test(toSite)) {
  process.stderr.write("member: --to-site must be a site name\n");
  process.exit(2);
}

const config = parseRelayEnv(process.env);
const log = createLogger("e2e-member", { site: config.site, node: config.nodeName });
const channel = new RelayChannel(channelOptionsFor(config, { logger: log }));
const record = createWriteStream(args.record, { flags: "a" });

const report = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, t: Date.now(), name: config.nodeName, ...fields })}\n`);

channel.on("message", (m) => {
  const p = m.payload;
  if (p.length > 64 || p.length < PREFIX.length) return;
  const text = Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString("utf8");
  if (!text.startsWith(PREFIX)) return;
  const n = text.slice(text.lastIndexOf(" ") + 1);
  record.write(`${Date.now()} ${m.from.name}:${m.from.site} ${n}\n`);
});

// A state line whenever what the test waits for changes.
let lastState = "";
const reportState = () => {
  const t = channel.topology();
  const state = {
    members: channel.view?.members.length ?? 0,
    sites: t.sites.map((s) => s.site).sort(),
    siteMaster: channel.isSiteMaster,
    ready: channel.ready,
  };
  const key = JSON.stringify(state);
  if (key === lastState) return;
  lastState = key;
  report("state", state);
};
// Messages of a remote sender that became stable while we were out of the primary view.
channel.on("gap", (g) =>
  report("gap", { from: `${g.from.name}:${g.from.site}`, first: g.first, last: g.last }),
);
channel.on("view", reportState);
channel.on("topology", reportState);
channel.on("site-master", reportState);
const stateTimer = setInterval(reportState, 200);

let undeliverable = 0;
channel.on("undeliverable", () => {
  undeliverable++;
});

let sending = false;
async function stream(): Promise<void> {
  if (sending || sendCount === 0) return;
  sending = true;
  report("sending", {
    count: sendCount,
    rate,
    to: target ? `${target.name}:${target.site}` : (toSite ?? "all"),
    incarnation: channel.incarnation,
  });
  const start = performance.now();
  let next = 1;
  let rejected = 0;
  let stuckSince = 0;
  while (next <= sendCount) {
    const due = Math.min(sendCount, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    while (next <= due) {
      try {
        const payload = Buffer.from(`${PREFIX}${config.nodeName} ${next}`, "utf8");
        if (target) channel.sendToMember(target, payload);
        else if (toSite) channel.sendToSite(toSite, payload);
        else channel.sendToAll(payload);
        next++;
        stuckSince = 0;
      } catch (err) {
        // Not taken (e.g. back-pressure or not connected): the same number is offered again.
        rejected++;
        stuckSince ||= performance.now();
        if (!(err instanceof RelayError) || err.code === "CLOSED") throw err;
        break;
      }
    }
    if (stuckSince && performance.now() - stuckSince > GIVE_UP_MS) {
      report("sent", { count: next - 1, rejected, gaveUp: true });
      return;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  report("sent", { count: sendCount, rejected, undeliverable });
}

process.on("SIGUSR2", () => {
  stream().catch((err: unknown) => report("send-failed", { error: (err as Error).message }));
});

let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  clearInterval(stateTimer);
  report("stopped", { undeliverable, stats: channel.stats() });
  const force = setTimeout(() => process.exit(1), CLOSE_GRACE_MS * 2);
  force.unref();
  record.end(() => {
    Promise.race([channel.close(), new Promise((r) => setTimeout(r, CLOSE_GRACE_MS))]).finally(() =>
      process.exit(0),
    );
  });
});

// With --join-on-signal the process is loaded and configured but joins only on SIGHUP: a pod that
// has started and becomes an endpoint later, without the start-up time inside the measurement.
if (args["join-on-signal"]) {
  report("booted");
  await new Promise<void>((resolve) => process.once("SIGHUP", () => resolve()));
}
await channel.connect();
reportState();
