#!/usr/bin/env node
// Delivery under frozen and partitioned members (docs/DELIVERY.md, "Partitions and frozen
// members"), as figures: the scenarios of test/relay/delivery-freeze.test.ts (nyc 5 + sfc 3, two
// routers, senders nyc-4, nyc-5, sfc-3 streaming 1,500 messages each to everyone at 150/s, members
// stopped with SIGSTOP for 6 s), --runs times each. Per run: cross-site messages lost at
// never-stopped members that stayed primary (must be 0), gap events, the longest silence of a
// cross-site stream at a never-stopped member around the freeze (recovery), never-stopped members
// that stayed primary, and the most site masters of each site at the same time.
//   npm run build && node --import tsx bench/freeze.mjs [--runs 3]
import { numberOption } from "./lib/args.mjs";
import { machine, requireBuild } from "./lib/topology.mjs";

requireBuild();
const { freezeScenario } = await import("../test/relay/freeze-scenario.ts");
const RUNS = numberOption("runs", 3);

const scenarios = [
  ["nyc coordinator (site master)", (w) => [w.members.nyc[0]], []],
  ["two oldest nyc members", (w) => w.members.nyc.slice(0, 2), []],
  ["three of five nyc members", (w) => w.members.nyc.slice(0, 3), ["nyc-4", "nyc-5"]],
  ["sfc site master", (w) => [w.members.sfc[0]], []],
];

console.log(`freeze scenarios, ${RUNS} runs each; ${JSON.stringify(machine())}`);
console.log(
  "| frozen for 6 s | run | lost | problems | gap events | worst gap (ms) | stayed primary | most site masters at once |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
let failures = 0;
for (const [label, frozen, minority] of scenarios) {
  for (let run = 1; run <= RUNS; run++) {
    const r = await freezeScenario(label, frozen, minority);
    if (r.lost > 0 || r.problems.length > 0) failures++;
    const sms = Object.entries(r.maxSiteMasters)
      .map(([site, n]) => `${site} ${n}`)
      .join(", ");
    console.log(
      `| ${label} | ${run} | ${r.lost} | ${r.problems.length} | ${r.gaps} | ${r.worstGapMs} | ${r.steady}/${r.neverStopped} | ${sms} |`,
    );
  }
}
console.log(failures === 0 ? "every run: no loss" : `${failures} run(s) with loss or problems`);
process.exit(failures === 0 ? 0 : 1);
