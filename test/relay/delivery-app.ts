// A member for the delivery tests: one RelayChannel in a child process, configured by the JSON in
// DELIVERY_APP (see AppConfig), driven by stdin lines and reporting on stdout:
//   in:  `send <count> <rate> <all|site:NAME> [first]` streams `d <name> <n>` messages,
//        n = first..first+count-1 (first defaults to 1);
//        `burst-stall <count> <site> <ms> <file> [first]` sends count messages (numbered from first,
//        default 1) to a site at once and then stalls the event loop for at least ms and until
//        file exists (see burstThenStall);
//        `stats` prints the channel's stats; `quit` closes the channel and exits 0.
//   out: `R <sender>:<site> <n> <epoch ms>` per test message received, and `J <json>` events
//        (state, sent, drain, site-unreachable, site-reachable, stats).
// Run as `node --import tsx test/relay/delivery-app.ts`. Logs (pino JSON) go to stderr.
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { StaticDiscovery } from "../../runtime/cluster/discovery.js";
import { createLogger } from "../../runtime/observability/log.js";
import { RelayChannel } from "../../runtime/relay/channel.js";
import type { Destination } from "../../runtime/relay/envelope.js";
import { RelayError } from "../../runtime/relay/errors.js";

export interface AppConfig {
  readonly site: string;
  readonly name: string;
  readonly port: number;
  /** Static members of the site: `127.0.0.1[p1],127.0.0.1[p2]`. */
  readonly members: string;
  readonly routers: readonly { host: string; port: number }[];
  readonly reliable?: boolean;
  readonly sendBuffer?: {
    maxBytes?: number;
    maxMessages?: number;
    maxTotalBytes?: number;
    maxSites?: number;
  };
  readonly retransmitTimeoutMs?: number;
  readonly siteGoneMs?: number;
  /** Failure detection of the local cluster (ms). @default 1000 */
  readonly suspectTimeoutMs?: number;
}

const config = JSON.parse(process.env.DELIVERY_APP ?? "null") as AppConfig | null;
if (!config) {
  process.stderr.write("delivery-app: DELIVERY_APP (JSON config) is required\n");
  process.exit(2);
}
const log = createLogger("delivery-app", { site: config.site, node: config.name });
const channel = new RelayChannel({
  site: config.site,
  cluster: "delivery",
  name: config.name,
  discovery: new StaticDiscovery(config.members),
  routers: config.routers,
  bindAddr: "127.0.0.1",
  bindPort: config.port,
  pollIntervalMs: 500,
  clusterTuning: {
    heartbeatIntervalMs: 200,
    suspectTimeoutMs: config.suspectTimeoutMs ?? 1000,
    discoveryIntervalMs: 200,
  },
  ...(config.reliable !== undefined ? { reliable: config.reliable } : {}),
  ...(config.sendBuffer ? { sendBuffer: config.sendBuffer } : {}),
  ...(config.retransmitTimeoutMs ? { retransmitTimeoutMs: config.retransmitTimeoutMs } : {}),
  ...(config.siteGoneMs ? { siteGoneMs: config.siteGoneMs } : {}),
  logger: log,
});

const out: string[] = [];
let flushQueued = false;
function line(s: string): void {
  out.push(s);
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(() => {
    flushQueued = false;
    process.stdout.write(`${out.join("\n")}\n`);
    out.length = 0;
  });
}
const event = (type: string, fields: Record<string, unknown> = {}) =>
  line(`J ${JSON.stringify({ type, t: Date.now(), ...fields })}`);

channel.on("message", (m) => {
  const p = m.payload;
  if (p.length > 200 || p[0] !== 0x64 /* d */) return;
  const text = Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString("utf8");
  const parts = text.split(" ");
  if (parts.length !== 3) return;
  line(`R ${m.from.name}:${m.from.site} ${parts[2]} ${Date.now()}`);
});

let lastState = "";
const reportState = () => {
  const state = {
    members: channel.view?.members.map((m) => m.name) ?? [],
    sites: channel
      .topology()
      .routes.filter((r) => r.up)
      .map((r) => r.site),
    // Sites whose site master announced its view: the targets of a message to everyone. A route
    // can be up before that announcement arrives, and a stream to everyone started in between
    // rightly skips the site (docs/DELIVERY.md), so tests start streams once these are known.
    known: channel
      .topology()
      .sites.map((x) => x.site)
      .filter((x) => x !== channel.site),
    siteMaster: channel.isSiteMaster,
    primary: channel.stats().primaryView,
  };
  const key = JSON.stringify(state);
  if (key !== lastState) {
    lastState = key;
    event("state", state);
  }
};
channel.on("view", reportState);
channel.on("topology", reportState);
const stateTimer = setInterval(reportState, 100);
channel.on("drain", () => event("drain"));
channel.on("site-unreachable", (b) => event("site-unreachable", { ...b }));
channel.on("site-reachable", (b) => event("site-reachable", { ...b }));
channel.on("site-gone", (g) => event("site-gone", { ...g }));
channel.on("gap", (g) =>
  event("gap", { from: `${g.from.name}:${g.from.site}`, first: g.first, last: g.last }),
);

let maxBuffered = 0;
async function stream(count: number, rate: number, dest: Destination, first = 1): Promise<void> {
  const start = performance.now();
  const last = first + count - 1;
  let refused = 0;
  let next = first;
  event("sending", { count, rate, first });
  while (next <= last) {
    const due = Math.min(last, first + Math.floor(((performance.now() - start) * rate) / 1000));
    while (next <= due) {
      try {
        channel.send(dest, Buffer.from(`d ${config!.name} ${next}`, "utf8"));
        next++;
      } catch (err) {
        if (!(err instanceof RelayError) || err.code !== "BUFFER_FULL") throw err;
        refused++;
        await new Promise<void>((resolve) => channel.once("drain", resolve));
      }
      maxBuffered = Math.max(maxBuffered, channel.stats().bufferedMessages);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  event("sent", { count, first, refused, maxBuffered });
}

/**
 * Sends `count` messages to `site` at once, then stalls this process's event loop once they have
 * left (a GC pause, a starved CPU) for at least `ms` and until `file` exists (the test creates it
 * once the acknowledgements must have arrived: they wait in the socket). Reports `stalled` with
 * what was unacknowledged when the stall began.
 */
function burstThenStall(count: number, site: string, ms: number, file?: string, first = 1): void {
  for (let n = first; n < first + count; n++)
    channel.send({ kind: "site", site }, Buffer.from(`d ${config!.name} ${n}`, "utf8"));
  // Bundled frames leave in this turn's check phase; the stall starts in the next turn.
  setImmediate(() =>
    setImmediate(() => {
      const s = channel.stats();
      const until = Date.now() + ms;
      const limit = Date.now() + 60_000;
      while (Date.now() < until || (file !== undefined && !existsSync(file) && Date.now() < limit)) {
        // the stall
      }
      event("stalled", { unacknowledged: s.bufferedMessages, retransmittedBefore: s.retransmitted });
    }),
  );
}

const input = createInterface({ input: process.stdin });
input.on("close", () => process.exit(0)); // the test died: so do we
input.on("line", (l) => {
  const [cmd, ...args] = l.trim().split(/\s+/);
  if (cmd === "send") {
    const dest: Destination =
      args[2]?.startsWith("site:") === true ? { kind: "site", site: args[2].slice(5) } : { kind: "all" };
    stream(Number(args[0]), Number(args[1]), dest, args[3] === undefined ? 1 : Number(args[3])).catch(
      (err: unknown) => event("send-failed", { error: (err as Error).message }),
    );
  } else if (cmd === "burst-stall") {
    burstThenStall(
      Number(args[0]),
      args[1]!,
      Number(args[2]),
      args[3],
      args[4] === undefined ? 1 : Number(args[4]),
    );
  } else if (cmd === "stats") {
    event("stats", { stats: channel.stats(), maxBuffered, backlog: channel.backlog() });
  } else if (cmd === "quit") {
    clearInterval(stateTimer);
    channel.close().finally(() => {
      process.stdout.write(`${out.join("\n")}\n`, () => process.exit(0));
    });
  }
});

await channel.connect();
reportState();
