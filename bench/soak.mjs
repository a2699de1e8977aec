#!/usr/bin/env node
import { numberOption } from "./lib/args.mjs";
// Bounded soak on loopback (issue 6), on dist/ (`npm run build` first):
//   node bench/soak.mjs [--minutes 10] [--rate 100] [--size 1000] [--warmup 30] [--settle 30]
//                       [--churn-min 20] [--churn-max 30] [--sm-every 4] [--seed 1]
//                       [--rss-tolerance 0.25]
// Two routers, nyc x5 + sfc x3 bench members with the delivery guarantee (RelayChannel
// `reliable: true`; bench/lib/member.mjs, one process each). Continuous cross-site traffic in both
// directions: the youngest nyc member (last in the view) streams --rate numbered messages/s of --size bytes to site
// sfc, the youngest sfc member the same to site nyc. After --warmup s (the baseline sample) and for
// --minutes, member churn: every --churn-min..--churn-max s one member that is neither a sender nor
// a site master is stopped (SIGTERM and kill -9 in turn) and a new member of that site is started;
// every --sm-every-th time the victim is a site master instead (kill -9, nyc and sfc in turn).
// Then the streams end, the receivers catch up, and after the routers' connection counts are back
// and --settle s more, the last sample. Samples: VmRSS of every process, relay_router_connections
// of both routers (/metrics). Checks (exit 1 if one fails):
//   - router connections after == baseline (exact);
//   - RSS after <= reference * (1 + --rss-tolerance) for every process alive at both samples
//     (reference = its baseline sample, or for a member that became a site master meanwhile its
//     first sample as one), and for the total of the members (8 at both samples);
//   - every receiver alive at the end got every message exactly once, in order: the original
//     members from message 1, members started during the churn from their first message on.
// Bounded: the whole run stops itself after --minutes + 8 min.
import {
  BenchTopology,
  machine,
  newLogDir,
  nowMs,
  Router,
  requireBuild,
  rssKiB,
  sleep,
  stopAll,
} from "./lib/topology.mjs";

const MINUTES = numberOption("minutes", 10);
const RATE = numberOption("rate", 100);
const SIZE = numberOption("size", 1000);
const WARMUP_S = numberOption("warmup", 30);
const SETTLE_S = numberOption("settle", 30);
const CHURN_MIN_S = numberOption("churn-min", 20);
const CHURN_MAX_S = numberOption("churn-max", 30);
const SM_EVERY = numberOption("sm-every", 4);
const RSS_TOL = numberOption("rss-tolerance", 0.25);
let seed = numberOption("seed", 1) >>> 0;
for (const [k, v] of Object.entries({
  MINUTES,
  RATE,
  SIZE,
  WARMUP_S,
  SETTLE_S,
  CHURN_MIN_S,
  CHURN_MAX_S,
  SM_EVERY,
})) {
  if (!(Number.isFinite(v) && v > 0)) {
    console.error(`soak: ${k} must be a positive number (got ${v})`);
    process.exit(2);
  }
}
/** mulberry32: the churn schedule is the same for the same --seed. */
function random() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

requireBuild();
const HARD_LIMIT_MS = (MINUTES + 8) * 60_000;
setTimeout(() => {
  console.error(`soak: still running after ${MINUTES + 8} min: stopping`);
  void stopAll().then(() => process.exit(1));
}, HARD_LIMIT_MS).unref();
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
process.on("SIGTERM", () => void stopAll().then(() => process.exit(143)));

const started = nowMs();
const clock = () => `${((nowMs() - started) / 1000).toFixed(0).padStart(4)} s`;
const say = (line) => console.log(`[${clock()}] ${line}`);
const m0 = machine();
const logDir = newLogDir("relay-soak-");
say(
  `machine: ${m0.nproc} CPUs, ${m0.cpu}, node ${m0.node}, load average ${m0.loadavg.join(" ")}, commit ${m0.commit}; logs ${logDir}`,
);

const routers = [new Router("router-1", logDir), new Router("router-2", logDir)];
for (const r of routers) await r.start();
const topo = new BenchTopology({
  sites: [
    { site: "nyc", members: 5 },
    { site: "sfc", members: 3 },
  ],
  routers,
  cluster: "soak",
  bridgeGroup: "bridge-soak",
  reliable: true,
  record: false,
  logDir,
});
await topo.start();
const originals = new Set(topo.members.map((m) => m.name));
say(`ready: ${topo.members.map((m) => m.name).join(", ")}`);

// ---- samples ----
const samples = [];
async function sample(label) {
  const members = topo.alive();
  const roles = await Promise.all(
    members.map((m) =>
      m
        .request("status", {}, 5000)
        .then((st) => (st.siteMaster ? "site master" : "member"))
        .catch(() => "?"),
    ),
  );
  const procs = [...routers, ...members].map((p, i) => ({
    name: p.name,
    kind: p instanceof Router ? "router" : "member",
    role: p instanceof Router ? "router" : roles[i - routers.length],
    pid: p.pid,
    rssMiB: rssKiB(p.pid) / 1024,
  }));
  const conns = await Promise.all(routers.map((r) => r.connections().catch(() => Number.NaN)));
  const s = { label, at: clock(), procs, conns, load: machine().loadavg };
  samples.push(s);
  const ms = procs.filter((p) => p.kind === "member");
  say(
    `sample ${label}: router connections ${conns.join(" / ")}; RSS routers ${procs
      .filter((p) => p.kind === "router")
      .map((p) => p.rssMiB.toFixed(1))
      .join(
        " / ",
      )} MiB; members (${ms.length}) total ${sum(ms.map((p) => p.rssMiB)).toFixed(0)} MiB, max ${Math.max(...ms.map((p) => p.rssMiB)).toFixed(1)} MiB; load ${s.load.join(" ")}`,
  );
  return s;
}
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

await sample("idle");

// ---- traffic ----
const total = Math.ceil(RATE * (WARMUP_S + MINUTES * 60));
const streams = [
  { id: 1, sender: await topo.youngest("nyc"), to: "sfc" },
  { id: 2, sender: await topo.youngest("sfc"), to: "nyc" },
];
const senders = new Set(streams.map((s) => s.sender));
for (const s of streams) {
  s.done = s.sender.request(
    "stream",
    { id: s.id, dest: { kind: "site", site: s.to }, count: total, size: SIZE, rate: RATE, stallMs: 60_000 },
    HARD_LIMIT_MS,
  );
  say(`stream ${s.id}: ${s.sender.name} -> site ${s.to}, ${total} x ${SIZE} B at ${RATE}/s`);
}

await sleep(WARMUP_S * 1000);
const baseline = await sample("baseline");

// ---- churn ----
const churnEnd = nowMs() + MINUTES * 60_000;
const churns = [];
let n = 0;
let lastDuring = nowMs();
while (nowMs() < churnEnd) {
  const wait = (CHURN_MIN_S + random() * (CHURN_MAX_S - CHURN_MIN_S)) * 1000;
  if (nowMs() + wait > churnEnd) break;
  await sleep(wait);
  n++;
  const smRound = n % SM_EVERY === 0;
  let victim = null;
  let signal = n % 2 === 0 ? "SIGKILL" : "SIGTERM";
  if (smRound) {
    const site = (n / SM_EVERY) % 2 === 1 ? "nyc" : "sfc";
    const sm = await topo.siteMaster(site);
    if (sm && !senders.has(sm)) {
      victim = sm;
      signal = "SIGKILL";
    }
  }
  if (!victim) {
    const sms = new Set(await Promise.all(["nyc", "sfc"].map((s) => topo.siteMaster(s))));
    const pool = topo.alive().filter((m) => !senders.has(m) && !sms.has(m));
    victim = pool[Math.floor(random() * pool.length)];
  }
  if (!victim) {
    say(`churn ${n}: no member to stop`);
    continue;
  }
  const sm = victim === (await topo.siteMaster(victim.site));
  const t = nowMs();
  await victim.kill(signal);
  const fresh = await topo.addMember(victim.site);
  churns.push({ n, victim: victim.name, site: victim.site, signal, siteMaster: sm, replacement: fresh.name });
  say(
    `churn ${n}: ${signal === "SIGKILL" ? "kill -9" : "SIGTERM"} ${victim.name}${sm ? " (site master)" : ""}, ${fresh.name} joined ${(nowMs() - t).toFixed(0)} ms later`,
  );
  if (nowMs() - lastDuring >= 60_000) {
    lastDuring = nowMs();
    await sample(`during (${churns.length} churns)`);
  }
}
say(`churn over: ${churns.length} churns (${churns.filter((c) => c.siteMaster).length} site masters)`);
await sample("churn end");

// ---- drain, settle ----
const sent = await Promise.all(
  streams.map((s) => s.done.catch((err) => ({ error: String(err.message ?? err) }))),
);
for (const [i, r] of sent.entries()) {
  say(
    `stream ${streams[i].id}: ${r.error ? `sender stopped: ${r.error}` : `sent ${r.sent}, refused ${r.refused}x`}`,
  );
}
const reportsOf = async () =>
  Promise.all(
    streams.map(async (s) => {
      const receivers = topo.alive(s.to).filter((m) => m !== s.sender);
      const reps = await Promise.all(
        receivers.map((m) => m.request("report", { id: s.id }).catch((e) => ({ error: e.message }))),
      );
      return receivers.map((m, i) => ({ name: m.name, original: originals.has(m.name), ...reps[i] }));
    }),
  );
let reports = await reportsOf();
const caughtUpBy = nowMs() + 60_000;
while (reports.some((rs) => rs.some((r) => r.next !== total + 1)) && nowMs() < caughtUpBy) {
  await sleep(500);
  reports = await reportsOf();
}
say("receivers caught up (or 60 s passed)");
const connsBy = nowMs() + 60_000;
for (;;) {
  const conns = await Promise.all(routers.map((r) => r.connections().catch(() => Number.NaN)));
  if (conns.every((c, i) => c === baseline.conns[i]) || nowMs() > connsBy) break;
  await sleep(500);
}
await sleep(SETTLE_S * 1000);
const after = await sample("after");

// ---- checks ----
const failures = [];
for (const [i, rs] of reports.entries()) {
  for (const r of rs) {
    const from = r.original ? 1 : r.firstSeq;
    const want = from === null ? 0 : total - from + 1;
    const ok = !r.error && r.firstSeq === from && r.count === want && r.duplicates === 0 && r.gaps === 0;
    if (!ok) failures.push(`stream ${streams[i].id} at ${r.name}: ${JSON.stringify(r)}`);
  }
}
for (const [i, c] of after.conns.entries()) {
  if (c !== baseline.conns[i])
    failures.push(`${routers[i].name}: ${c} connections after, ${baseline.conns[i]} at baseline`);
}
// A member that became a site master during the run carries the bridge from then on: its
// reference is its first sample (from the baseline on) in the role it ends in; the baseline itself
// when its role never changed.
const rssRows = [];
const fromBaseline = samples.slice(samples.indexOf(baseline));
for (const p of after.procs) {
  const b = baseline.procs.find((x) => x.pid === p.pid);
  if (!b) continue;
  const series = samples.map((s) => s.procs.find((x) => x.pid === p.pid)).filter(Boolean);
  const refSample =
    b.role === p.role
      ? baseline
      : (fromBaseline.find((s) => s.procs.some((x) => x.pid === p.pid && x.role === p.role)) ?? baseline);
  const ref = refSample.procs.find((x) => x.pid === p.pid);
  const ok = p.rssMiB <= ref.rssMiB * (1 + RSS_TOL);
  rssRows.push({
    name: p.name,
    roles: `${b.role} -> ${p.role}`,
    base: b.rssMiB,
    ref: ref.rssMiB,
    refLabel: refSample.label,
    series: series.map((x) => x.rssMiB),
    after: p.rssMiB,
    ok,
  });
  if (!ok)
    failures.push(
      `${p.name}: RSS ${p.rssMiB.toFixed(1)} MiB after, ${ref.rssMiB.toFixed(1)} MiB at ${refSample.label}`,
    );
}
const membersTotal = (s) => sum(s.procs.filter((p) => p.kind === "member").map((p) => p.rssMiB));
if (membersTotal(after) > membersTotal(baseline) * (1 + RSS_TOL))
  failures.push(
    `members' total RSS ${membersTotal(after).toFixed(0)} MiB after, ${membersTotal(baseline).toFixed(0)} at baseline`,
  );

// ---- report ----
const f1 = (x) => x.toFixed(1);
console.log(
  `\n### Soak: ${MINUTES} min of churn, ${RATE} msgs/s x ${SIZE} B each way (nyc -> sfc, sfc -> nyc)\n`,
);
console.log(
  `Churn: ${churns.length} members replaced (${churns.filter((c) => c.siteMaster).length} site masters kill -9; others SIGTERM / kill -9 in turn).\n`,
);
console.log(
  "| sample | at | router connections | routers RSS (MiB) | members | members' RSS total / max (MiB) | load average |",
);
console.log("|---|---|---|---|---|---|---|");
for (const s of samples) {
  const ms = s.procs.filter((p) => p.kind === "member");
  console.log(
    `| ${s.label} | ${s.at.trim()} | ${s.conns.join(" / ")} | ${s.procs
      .filter((p) => p.kind === "router")
      .map((p) => f1(p.rssMiB))
      .join(
        " / ",
      )} | ${ms.length} | ${membersTotal(s).toFixed(0)} / ${f1(Math.max(...ms.map((p) => p.rssMiB)))} | ${s.load.join(" ")} |`,
  );
}
console.log(
  "\n| process (alive at baseline and after) | role at baseline -> after | RSS baseline (MiB) | every sample (MiB) | after | after / baseline | reference | after / reference |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rssRows) {
  console.log(
    `| ${r.name} | ${r.roles} | ${f1(r.base)} | ${r.series.map(f1).join(", ")} | ${f1(r.after)} | ${(r.after / r.base).toFixed(2)} | ${f1(r.ref)} (${r.refLabel}) | ${(r.after / r.ref).toFixed(2)}${r.ok ? "" : " (over tolerance)"} |`,
  );
}
console.log("\n| stream | receivers at the end | messages | exactly once, in order |");
console.log("|---|---|---|---|");
for (const [i, rs] of reports.entries()) {
  const s = streams[i];
  const bad = rs.filter((r) => failures.some((f) => f.startsWith(`stream ${s.id} at ${r.name}:`)));
  console.log(
    `| ${s.sender.name} -> ${s.to} | ${rs.map((r) => `${r.name}${r.original ? "" : ` (from #${r.firstSeq})`}: ${r.count}`).join(", ")} | ${total} | ${bad.length === 0 ? "yes" : `NO: ${bad.map((r) => r.name).join(", ")}`} |`,
  );
}
console.log(
  `\nmax end-to-end latency seen: ${reports
    .flat()
    .map((r) => `${r.name} ${f1(r.latency?.max ?? Number.NaN)} ms`)
    .join(", ")}`,
);
console.log(
  failures.length
    ? `\nFAILED (${failures.length}):\n${failures.map((f) => `- ${f}`).join("\n")}`
    : "\nall checks passed",
);
say(`done; load average ${machine().loadavg.join(" ")}`);
await topo.stop();
await stopAll();
process.exit(failures.length ? 1 : 0);
