#!/usr/bin/env node
// The top frames of V8 CPU profiles (`node --cpu-prof`), for bench/README.md:
//   node bench/profile-top.mjs <dir or .cpuprofile files> [--top 15] [--min-samples 500]
// Per profile (one process): its busiest functions by self time, as a share of the process's
// non-idle samples, with what the process is (sender, site master, member) guessed from the
// functions it ran. With several profiles, a last table sums them all.
// Record the member processes of a bench run with
//   BENCH_MEMBER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" node bench/crosssite.mjs ...
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { numberOption } from "./lib/args.mjs";

const TOP = numberOption("top", 15);
const MIN_SAMPLES = numberOption("min-samples", 500);
const inputs = process.argv
  .slice(2)
  .filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"));
if (inputs.length === 0) {
  console.error(
    "usage: node bench/profile-top.mjs <dir or .cpuprofile files> [--top 15] [--min-samples 500]",
  );
  process.exit(2);
}
const files = inputs.flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => f.endsWith(".cpuprofile"))
        .map((f) => path.join(p, f))
    : [p],
);

const IDLE = new Set(["(idle)", "(program)", "(garbage collector)"]);

/** Self samples per "function file:line" of one profile, and its busy (non-idle) total. */
function selfSamples(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const self = new Map();
  let busy = 0;
  let gc = 0;
  for (const [id, n] of counts) {
    const f = byId.get(id).callFrame;
    const name = f.functionName || "(anonymous)";
    if (name === "(garbage collector)") gc += n;
    if (IDLE.has(name) && name !== "(garbage collector)") continue;
    busy += n;
    const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : "native";
    const key = `${name} (${where})`;
    self.set(key, (self.get(key) ?? 0) + n);
  }
  return { self, busy, gc };
}

/** What a process was, from the functions it ran. */
function roleOf(self) {
  const has = (s) => [...self.keys()].some((k) => k.includes(s));
  if (has("stream (member.mjs")) return "sender";
  if (has("#onMessage (bridge-agent")) return "site master";
  return "member";
}

const total = new Map();
let totalBusy = 0;
const rows = [];
for (const file of files) {
  const { self, busy, gc } = selfSamples(JSON.parse(readFileSync(file, "utf8")));
  if (busy < MIN_SAMPLES) continue;
  rows.push({ file, self, busy, gc, role: roleOf(self) });
  for (const [k, n] of self) total.set(k, (total.get(k) ?? 0) + n);
  totalBusy += busy;
}
rows.sort((a, b) => b.busy - a.busy);

const table = (self, busy) =>
  [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([k, n]) => `| ${((100 * n) / busy).toFixed(1)} % | \`${k}\` |`)
    .join("\n");

for (const r of rows) {
  console.log(
    `\n#### ${path.basename(r.file)}: ${r.role}, ${r.busy} busy samples (GC ${((100 * r.gc) / r.busy).toFixed(1)} %)\n`,
  );
  console.log("| self | function |\n|---|---|");
  console.log(table(r.self, r.busy));
}
if (rows.length > 1) {
  console.log(`\n#### all ${rows.length} profiles: ${totalBusy} busy samples\n`);
  console.log("| self | function |\n|---|---|");
  console.log(table(total, totalBusy));
}
