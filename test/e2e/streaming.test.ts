// Scenario 3 of issue 6 in network namespaces (docs/E2E.md): nyc x5 and sfc x3 members (the e2e
// member app, configured from the construct's env like `relay node`), one sender in each site
// streaming 2,000 numbered messages at 500/s to every site, and one fault in the middle:
//   [nyc-master]     kill -9 of the nyc site master
//   [sfc-master]     kill -9 of the sfc site master
//   [both-masters]   kill -9 of both site masters at once
//   [unicast-nyc-master] the same as nyc-master with unicast streams to one member of the other site
//   [router-kill]    kill -9 of router-1
//   [route-loss]     nyc loses its route to router-1 (blackhole route in nyc's gateway)
//   [router-restart] router-1 stops (SIGTERM) and starts again on the same address
//   [scale]          nyc scales up (nyc-6: new pod + DNS record) and down (nyc-4 leaves)
//   [site-split]     nyc splits in two for 6 s (nyc-1, nyc-2 | nyc-3..5: blackhole routes between
//                    the pods' namespaces), then heals; the minority side may miss cross-site
//                    messages, but only as ranges named by "gap" events
// Every surviving member must receive every message of each sender exactly once and in order.
// The largest gap in each member's receive timeline (the failover time) is printed.
// One scenario alone: E2E_SCENARIOS=nyc-master npm test -- test/e2e/streaming (or jest -t).
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { waitFor } from "../helpers/wait.js";
import { checkStream, contractViolations, parseRecord, type StreamCheck } from "./delivery.js";
import { anySelected, scenario, unavailable } from "./scenarios.js";
import { type Pod, type PodProcess, ROUTER_ADDRS, type SiteName, World } from "./world.js";

const IDS = [
  "nyc-master",
  "sfc-master",
  "both-masters",
  "unicast-nyc-master",
  "router-kill",
  "route-loss",
  "router-restart",
  "scale",
  "site-split",
];
const REPLICAS = { nyc: 5, sfc: 3 } as const;
const MEMBERS: Record<SiteName, string[]> = {
  nyc: ["nyc-1", "nyc-2", "nyc-3", "nyc-4", "nyc-5"],
  sfc: ["sfc-1", "sfc-2", "sfc-3"],
};
/** The youngest member of each site sends, so it is never the site master that gets killed. */
const SENDERS = ["nyc-5", "sfc-3"];
/** In unicast scenarios, each sender streams to one member of the other site (never killed). */
const UNICAST_TARGET: Readonly<Record<string, string>> = { "nyc-5": "sfc-2:sfc", "sfc-3": "nyc-2:nyc" };
type Mode = "all" | "unicast";
/** An integer setting from the environment, checked (a typo must not turn into NaN waits). */
function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= min && n <= max)) throw new Error(`${name}=${raw}: expected an integer in ${min}..${max}`);
  return n;
}
const COUNT = envInt("E2E_COUNT", 2000, 1, 100_000);
const RATE = envInt("E2E_RATE", 500, 1, 10_000);
/** The fault comes this long after sending started (about 600 messages in at 500/s). */
const FAULT_AFTER_MS = 1200;
const FORM_TIMEOUT_MS = 40_000;
/** After the senders are done, how long the receivers may take to catch up. */
const DRAIN_TIMEOUT_MS = envInt("E2E_DRAIN_MS", 15_000, 0, 600_000);
const SCENARIO_TIMEOUT_MS = 90_000 + DRAIN_TIMEOUT_MS;

let world: World | null = null;

beforeAll(async () => {
  if (unavailable || !anySelected(IDS)) return;
  world = new World(REPLICAS);
  await world.build();
  for (const site of ["nyc", "sfc"] as const) for (const n of MEMBERS[site]) world.addPod(site, n);
}, 60_000);

afterAll(async () => {
  await world?.destroy();
  if (world) expect(world.run.isGone()).toBe(true);
}, 30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface State {
  members: number;
  sites: string[];
  siteMaster: boolean;
  ready: boolean;
}

function lastEvent(p: PodProcess, event: string): Record<string, unknown> | undefined {
  return p
    .json()
    .filter((r) => r["event"] === event)
    .at(-1);
}
const stateOf = (p: PodProcess) => lastEvent(p, "state") as State | undefined;

/** Running members of one scenario and what it needs to inject faults. */
interface Run {
  readonly world: World;
  readonly dir: string;
  readonly routers: PodProcess[];
  readonly members: Map<string, PodProcess>;
  /** Members killed by the fault (they are not checked). */
  readonly dead: Set<string>;
  /** Members that joined during the stream: they must get an in-order suffix ending at COUNT. */
  readonly joined: Set<string>;
  /** Members that left gracefully during the stream: they must get an in-order prefix from 1. */
  readonly left: Set<string>;
  /** Starts the member app in pod `name` (a sender when it is one of SENDERS). */
  start(name: string, extraArgs?: readonly string[]): PodProcess;
  siteMasterOf(site: SiteName): string;
}

/** What a fault did, for the printed summary. */
type Fault = (run: Run) => Promise<string>;

async function startScenario(id: string, mode: Mode): Promise<Run> {
  const w = world!;
  // Nothing of an earlier scenario may still hold a port.
  await w.killAll();
  const dir = path.join(w.logDir, id);
  mkdirSync(dir, { recursive: true });
  const routers = await Promise.all([w.startRouter(0), w.startRouter(1)]);
  const members = new Map<string, PodProcess>();
  /** `waitFor`, and on timeout the members' last states in the error (and everything stopped). */
  const waitOrExplain = async (what: string, cond: () => boolean, timeoutMs: number) => {
    try {
      await waitFor(what, cond, { timeoutMs, intervalMs: 100 });
    } catch (err) {
      const states = [...members].map(
        ([n, p]) => `${n}: ${p.running ? JSON.stringify(stateOf(p)) : "exited"}`,
      );
      await w.killAll();
      w.keepLogs();
      throw new Error(`${(err as Error).message}\nlast states:\n  ${states.join("\n  ")}\nlogs: ${w.logDir}`);
    }
  };
  const start = (name: string, extraArgs: readonly string[] = []) => {
    const args = ["--record", path.join(dir, `${name}.rec`), ...extraArgs];
    if (SENDERS.includes(name)) args.push("--send", String(COUNT), "--rate", String(RATE));
    if (SENDERS.includes(name) && mode === "unicast") args.push("--to", UNICAST_TARGET[name]!);
    const p = w.startMember(w.pods.get(name) as Pod, args);
    members.set(name, p);
    return p;
  };
  // The first pod of each site comes up first and becomes its site master; then the others.
  start("nyc-1");
  start("sfc-1");
  await waitOrExplain(
    "nyc-1 and sfc-1 to be site masters",
    () => ["nyc-1", "sfc-1"].every((n) => stateOf(members.get(n)!)?.siteMaster === true),
    FORM_TIMEOUT_MS,
  );
  for (const n of [...MEMBERS.nyc, ...MEMBERS.sfc]) if (!members.has(n)) start(n);
  await waitOrExplain(
    "every member to see its full site and both sites",
    () =>
      [...members].every(([n, p]) => {
        const s = stateOf(p);
        const site = n.slice(0, 3) as SiteName;
        return s?.members === MEMBERS[site].length && s.sites.join() === "nyc,sfc" && s.ready;
      }),
    FORM_TIMEOUT_MS,
  );
  const dead = new Set<string>();
  return {
    world: w,
    dir,
    routers,
    members,
    dead,
    joined: new Set(),
    left: new Set(),
    start,
    siteMasterOf(site) {
      const sm = MEMBERS[site].filter((n) => !dead.has(n) && stateOf(members.get(n)!)?.siteMaster);
      if (sm.length !== 1) throw new Error(`site ${site}: site masters ${JSON.stringify(sm)}`);
      return sm[0]!;
    },
  };
}

/** Lines per sender in a member's record file so far. */
function progress(run: Run, name: string): Map<string, number> {
  const out = new Map<string, number>();
  let text = "";
  try {
    text = readFileSync(path.join(run.dir, `${name}.rec`), "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const from = line.split(" ")[1];
    if (from) out.set(from, (out.get(from) ?? 0) + 1);
  }
  return out;
}

const senderKeys = SENDERS.map((s) => `${s}:${s.slice(0, 3)}`);

/**
 * `minority`: members that are expected to be out of their site's primary view for a while (a
 * split): a cross-site stream may lack messages there, but only ranges named by "gap" events; a
 * same-site stream is the local cluster's, not the guarantee's (only order and duplicates checked).
 */
async function streamWithFault(
  id: string,
  fault: Fault,
  mode: Mode = "all",
  prepare?: (run: Run) => Promise<void>,
  minority: readonly string[] = [],
): Promise<void> {
  const run = await startScenario(id, mode);
  /** Whether `member` is meant to receive the stream of `sender` (`name:site`). */
  const meant = (member: string, sender: string) =>
    mode === "all" || UNICAST_TARGET[sender.split(":")[0]!] === `${member}:${member.slice(0, 3)}`;
  const survivors = () => [...run.members.keys()].filter((n) => !run.dead.has(n) && !run.left.has(n));
  /** Members present from before the start signal to the end: the full contract applies. */
  const stayers = () => survivors().filter((n) => !run.joined.has(n));
  let what = "";
  let faultAt = 0;
  try {
    await prepare?.(run);
    const senders = SENDERS.map((s) => run.members.get(s)!);
    const t0 = Date.now();
    for (const s of senders) s.signal("SIGUSR2");
    await sleep(FAULT_AFTER_MS);
    faultAt = Date.now();
    what = await fault(run);
    // Senders finish (bounded by their own give-up timer), then receivers get time to catch up.
    await waitFor(
      "the senders to finish",
      () => senders.every((s) => lastEvent(s, "sent") || lastEvent(s, "send-failed") || !s.running),
      { timeoutMs: (COUNT / RATE) * 1000 + 40_000, intervalMs: 100 },
    );
    // Then the receivers have DRAIN_TIMEOUT_MS to catch up (retransmissions included).
    await waitFor(
      "every member to record every message",
      () =>
        stayers().every((n) =>
          senderKeys.every((k) => !meant(n, k) || (progress(run, n).get(k) ?? 0) >= COUNT),
        ),
      { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 100 },
    ).catch(() => undefined); // what is missing is reported below
    for (const s of senders) {
      const sent = lastEvent(s, "sent") ?? lastEvent(s, "send-failed");
      const took =
        typeof sent?.["t"] === "number" ? `${(sent["t"] as number) - t0} ms after the start signal` : "";
      process.stdout.write(`[${id}] ${s.name}: ${JSON.stringify(sent)} ${took}\n`);
    }
  } finally {
    // SIGTERM flushes the record files; then everything of this scenario goes.
    await Promise.all(survivors().map((n) => run.members.get(n)!.stop()));
    await run.world.killAll();
  }

  // Every surviving member against every sender.
  const checks = new Map<string, Map<string, StreamCheck>>();
  const violationsPartial: string[] = [];
  const gaps: string[] = [];
  let failover = 0;
  const stalled: string[] = [];
  const partial: string[] = [];
  for (const n of [...survivors(), ...run.left]) {
    const rec = parseRecord(readFileSync(path.join(run.dir, `${n}.rec`), "utf8"));
    const per = new Map<string, StreamCheck>();
    for (const k of senderKeys) {
      const arrivals = rec.get(k) ?? [];
      if ((run.joined.has(n) || run.left.has(n)) && meant(n, k)) {
        // A member that was there for part of the stream: one contiguous, in-order run of numbers
        // (a suffix ending at COUNT for a joiner, a prefix from 1 for a leaver), each once.
        const ns = arrivals.map((a) => a.n);
        const first = run.joined.has(n) ? (ns[0] ?? COUNT + 1) : 1;
        const want = Array.from({ length: Math.max(0, ns.length) }, (_, i) => first + i);
        const ok =
          ns.length > 0 &&
          JSON.stringify(ns) === JSON.stringify(want) &&
          (run.left.has(n) || ns.at(-1) === COUNT);
        partial.push(
          `${n} <- ${k}: ${ns.length} received, ${ns[0] ?? "-"}..${ns.at(-1) ?? "-"}${ok ? "" : " NOT one in-order run"}`,
        );
        if (!ok)
          violationsPartial.push(
            `${n} <- ${k}: expected one in-order run ${run.joined.has(n) ? `ending at ${COUNT}` : "from 1"}, got ${ns.length} numbers ${ns[0] ?? "-"}..${ns.at(-1) ?? "-"}`,
          );
        continue;
      }
      if (minority.includes(n) && meant(n, k)) {
        const c = checkStream(arrivals, COUNT);
        const got = new Set(arrivals.map((a) => a.n));
        const gapsOf = run.members
          .get(n)!
          .json()
          .filter((e) => e["event"] === "gap" && e["from"] === k);
        const named = (x: number) =>
          gapsOf.some((g) => x >= (g["first"] as number) && x <= (g["last"] as number));
        let silent = 0;
        if (k.slice(-3) !== n.slice(0, 3))
          for (let x = 1; x <= COUNT; x++) if (!got.has(x) && !named(x)) silent++;
        partial.push(
          `${n} <- ${k} (minority): ${c.received} received, ${c.missing} missing, ${gapsOf.length} gap events`,
        );
        if (c.duplicates > 0 || c.reordered > 0 || silent > 0)
          violationsPartial.push(
            `${n} <- ${k} (minority): ${c.duplicates} duplicates, ${c.reordered} reordered, ${silent} missing without a gap event`,
          );
        continue;
      }
      if (!meant(n, k)) {
        // A unicast stream for someone else must not show up here at all.
        if (arrivals.length > 0)
          violationsPartial.push(`${n} <- ${k}: ${arrivals.length} messages meant for another member`);
        continue;
      }
      const c = checkStream(arrivals, COUNT);
      per.set(k, c);
      const afterFault = arrivals.filter((a) => a.at >= faultAt - 50);
      const gap = checkStream(afterFault, COUNT).maxGapMs;
      const lastN = arrivals.at(-1)?.n ?? 0;
      // A stream that stopped before its end never recovered: its gap is not a failover time.
      if (lastN !== COUNT) stalled.push(`${n}<-${k.split(":")[0]} after ${lastN}`);
      else if (k.slice(-3) !== n.slice(0, 3)) failover = Math.max(failover, gap);
      gaps.push(`${n}<-${k.split(":")[0]} ${gap}ms`);
    }
    checks.set(n, per);
  }
  const violations = [...contractViolations(checks, COUNT), ...violationsPartial];
  process.stdout.write(
    `[${id}] streams: ${mode === "all" ? "to every site" : SENDERS.map((x) => `${x} -> ${UNICAST_TARGET[x]}`).join(", ")}\n` +
      `[${id}] fault: ${what}\n` +
      `[${id}] survivors: ${survivors().join(", ")}\n` +
      (partial.length ? `[${id}] joined/left during the stream: ${partial.join("; ")}\n` : "") +
      `[${id}] cross-site failover (largest receive gap after the fault, recovered streams): ${failover} ms\n` +
      (stalled.length ? `[${id}] streams that stopped and never recovered: ${stalled.join(", ")}\n` : "") +
      `[${id}] gaps after the fault: ${gaps.join(", ")}\n` +
      `[${id}] ${violations.length === 0 ? "every survivor got every message exactly once, in order" : `violations:\n  ${violations.join("\n  ")}`}\n` +
      `[${id}] logs: ${run.dir} and ${run.world.logDir} (kept when a scenario fails, or with E2E_KEEP_LOGS=1)\n`,
  );
  if (violations.length > 0) run.world.keepLogs();
  expect(violations).toEqual([]);
}

const killSiteMaster =
  (site: SiteName): Fault =>
  async (run) => {
    const sm = run.siteMasterOf(site);
    run.dead.add(sm);
    await run.members.get(sm)!.kill9();
    return `kill -9 of ${site} site master ${sm}`;
  };

scenario(
  "nyc-master",
  "streaming through kill -9 of the nyc site master",
  () => streamWithFault("nyc-master", killSiteMaster("nyc")),
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "sfc-master",
  "streaming through kill -9 of the sfc site master",
  () => streamWithFault("sfc-master", killSiteMaster("sfc")),
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "both-masters",
  "streaming through kill -9 of both site masters at once",
  () =>
    streamWithFault("both-masters", async (run) => {
      const sms = [run.siteMasterOf("nyc"), run.siteMasterOf("sfc")];
      for (const sm of sms) run.dead.add(sm);
      await Promise.all(sms.map((sm) => run.members.get(sm)!.kill9()));
      return `kill -9 of both site masters (${sms.join(", ")})`;
    }),
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "unicast-nyc-master",
  "unicast streams (nyc-5 -> sfc-2, sfc-3 -> nyc-2) through kill -9 of the nyc site master",
  () => streamWithFault("unicast-nyc-master", killSiteMaster("nyc"), "unicast"),
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "router-kill",
  "streaming through kill -9 of router-1",
  () =>
    streamWithFault("router-kill", async (run) => {
      await run.routers[0]!.kill9();
      return `kill -9 of router-1 (${ROUTER_ADDRS[0]})`;
    }),
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "route-loss",
  "streaming while nyc loses its route to router-1",
  async () => {
    const gw = world!.site("nyc").gateway;
    const route = ["route", "add", "blackhole", `${ROUTER_ADDRS[0]}/32`];
    try {
      await streamWithFault("route-loss", async () => {
        gw.ip(route);
        return `blackhole route to router-1 (${ROUTER_ADDRS[0]}) in nyc's gateway`;
      });
    } finally {
      try {
        gw.ip(["route", "del", "blackhole", `${ROUTER_ADDRS[0]}/32`]);
      } catch {
        // not added (the scenario failed before its fault)
      }
    }
  },
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "router-restart",
  "streaming through a restart of router-1 (SIGTERM, then started again on the same address)",
  () =>
    streamWithFault("router-restart", async (run) => {
      const t = Date.now();
      await run.routers[0]!.stop();
      run.routers[0] = await run.world.startRouter(0);
      return `router-1 stopped and listening again after ${Date.now() - t} ms`;
    }),
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "scale",
  "streaming while nyc scales up (nyc-6 joins) and down (nyc-4 leaves)",
  async () => {
    const w = world!;
    try {
      let joiner: PodProcess | null = null;
      const prepare = async (run: Run) => {
        // The new pod exists and its process is loaded before the stream (start-up under load
        // can take seconds), but it is not an endpoint and has not joined yet.
        w.addPod("nyc", "nyc-6", false);
        run.joined.add("nyc-6");
        joiner = run.start("nyc-6", ["--join-on-signal"]);
        await joiner.waitFor((l) => l.includes('"event":"booted"'), "booted", 30_000);
      };
      await streamWithFault(
        "scale",
        async (run) => {
          // Up: the pod becomes an endpoint (DNS record) and joins (it finds the members through DNS).
          w.setInService("nyc-6", true);
          joiner!.signal("SIGHUP");
          await joiner!.waitFor((l) => l.includes('"members":6'), "a view of 6", 15_000);
          // Down: the endpoint goes out of DNS first, then SIGTERM (graceful leave), as kubelet does.
          w.setInService("nyc-4", false);
          run.left.add("nyc-4");
          await run.members.get("nyc-4")!.stop();
          return "nyc-6 joined (view of 6), then nyc-4 left (out of DNS, SIGTERM)";
        },
        "all",
        prepare,
      );
    } finally {
      if (w.pods.has("nyc-6")) w.removePod("nyc-6");
      w.setInService("nyc-4", true);
    }
  },
  SCENARIO_TIMEOUT_MS,
);

scenario(
  "site-split",
  "streaming while nyc is split in two for 6 s (nyc-1, nyc-2 | nyc-3, nyc-4, nyc-5), then heals",
  async () => {
    const w = world!;
    const a = ["nyc-1", "nyc-2"];
    const b = ["nyc-3", "nyc-4", "nyc-5"];
    const routes: [Pod, string][] = [];
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const x of from) for (const y of to) routes.push([w.pods.get(x)!, `${w.pods.get(y)!.ip}/32`]);
    }
    const heal = () => {
      for (const [pod, dst] of routes.splice(0)) {
        try {
          pod.ns.ip(["route", "del", "blackhole", dst]);
        } catch {
          // not added (the scenario failed before its fault)
        }
      }
    };
    try {
      await streamWithFault(
        "site-split",
        async () => {
          for (const [pod, dst] of routes) pod.ns.ip(["route", "add", "blackhole", dst]);
          await sleep(6000);
          heal();
          return "nyc split in two for 6 s (blackhole routes between nyc-1, nyc-2 and nyc-3..5), then healed";
        },
        "all",
        undefined,
        a,
      );
    } finally {
      heal();
    }
  },
  SCENARIO_TIMEOUT_MS,
);
