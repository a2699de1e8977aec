#!/usr/bin/env node
// Router throughput: starts our router (dist build) as a child process on loopback, runs the
// neutral load generator (shared/tools/gr-load.mjs: 4 sender/receiver pairs, unicast MESSAGE
// frames) 3 times per payload size and prints the median msgs/s per size. Writes no files.
//
//   npm run build && node bench/router.mjs [--runs 3] [--pairs 4] [--msgs 200000] [--sizes 100,1000]
//                                          [--profile DIR]   (router CPU profile, for analysis only)
// GR_LOAD=/path/to/gr-load.mjs overrides the load generator's location.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { numberOption, stringOption } from "./lib/args.mjs";
import { CLI, cpuSeconds, median, ROOT, Router } from "./lib/topology.mjs";

const run = promisify(execFile);
const grLoad = process.env.GR_LOAD ?? path.resolve(ROOT, "../shared/tools/gr-load.mjs");

const runs = numberOption("runs", 3);
const pairs = numberOption("pairs", 4);
const msgs = numberOption("msgs", 200000);
const sizes = stringOption("sizes", "100,1000").split(",").map(Number);
const profileDir = stringOption("profile", null);

for (const [what, file] of [
  ["router build (run `npm run build`)", CLI],
  ["load generator (set GR_LOAD)", grLoad],
]) {
  if (!existsSync(file)) {
    console.error(`bench/router: ${what} not found: ${file}`);
    process.exit(2);
  }
}

const router = await new Router("router", null, {
  nodeArgs: profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [],
}).start();
const { child, port } = router;
try {
  for (const size of sizes) {
    const results = [];
    const cpuPerMsg = [];
    for (let i = 0; i < runs; i++) {
      const cpu0 = cpuSeconds(child.pid);
      const { stdout } = await run(
        process.execPath,
        [
          grLoad,
          `127.0.0.1:${port}`,
          "--pairs",
          String(pairs),
          "--msgs",
          String(msgs),
          "--size",
          String(size),
        ],
        { timeout: 180_000 },
      );
      const line = stdout.trim().split("\n").at(-1);
      if (!line.startsWith("{")) throw new Error(`gr-load: ${stdout.trim()}`);
      results.push(JSON.parse(line).msgsPerSec);
      const cpu1 = cpuSeconds(child.pid);
      if (cpu0 !== null && cpu1 !== null) cpuPerMsg.push(((cpu1 - cpu0) * 1e6) / (pairs * msgs));
    }
    console.log(
      JSON.stringify({
        size,
        pairs,
        msgs,
        runs: results,
        median: median(results),
        // Router CPU per forwarded message (whole run incl. connection setup): less sensitive to
        // other load on the machine than msgs/s.
        routerCpuUsPerMsg: cpuPerMsg.length ? Number(median(cpuPerMsg).toFixed(3)) : null,
      }),
    );
  }
} finally {
  await router.kill("SIGTERM"); // SIGTERM: the profile (if any) is written on a clean exit
}
