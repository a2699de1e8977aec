#!/usr/bin/env node
// Router throughput: starts our router (dist build) as a child process on loopback, runs the
// neutral load generator (shared/tools/gr-load.mjs: 4 sender/receiver pairs, unicast MESSAGE
// frames) 3 times per payload size and prints the median msgs/s per size. Writes no files.
//
//   npm run build && node bench/router.mjs [--runs 3] [--pairs 4] [--msgs 200000] [--sizes 100,1000]
//                                          [--profile DIR]   (router CPU profile, for analysis only)
// GR_LOAD=/path/to/gr-load.mjs overrides the load generator's location.
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(root, "dist/runtime/cli/relay.js");
const grLoad = process.env.GR_LOAD ?? path.resolve(root, "../shared/tools/gr-load.mjs");

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const runs = Number(opt("--runs", "3"));
const pairs = opt("--pairs", "4");
const msgs = opt("--msgs", "200000");
const sizes = opt("--sizes", "100,1000").split(",").map(Number);
const profileDir = opt("--profile", null);

for (const [what, file] of [
  ["router build (run `npm run build`)", cli],
  ["load generator (set GR_LOAD)", grLoad],
]) {
  if (!existsSync(file)) {
    console.error(`bench/router: ${what} not found: ${file}`);
    process.exit(2);
  }
}

function startRouter() {
  const nodeArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(
    process.execPath,
    [...nodeArgs, cli, "router", "--port", "0", "--http-port", "0", "--bind", "127.0.0.1"],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("router did not start within 15 s")), 15_000);
    let buf = "";
    child.stderr.setEncoding("utf8").on("data", (d) => {
      buf += d;
      for (const line of buf.split("\n")) {
        try {
          const rec = JSON.parse(line);
          if (rec.msg === "router listening") {
            clearTimeout(timer);
            child.stderr.removeAllListeners("data");
            child.stderr.resume();
            resolve({ child, port: rec.port });
            return;
          }
        } catch {}
      }
    });
    child.once("exit", (code) => reject(new Error(`router exited early (${code})`)));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU seconds (user + system) used so far by a process, from /proc (Linux); null elsewhere. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return null;
  }
}

const { child, port } = await startRouter();
try {
  for (const size of sizes) {
    const results = [];
    const cpuPerMsg = [];
    for (let i = 0; i < runs; i++) {
      const cpu0 = cpuSeconds(child.pid);
      const { stdout } = await run(
        process.execPath,
        [grLoad, `127.0.0.1:${port}`, "--pairs", pairs, "--msgs", msgs, "--size", String(size)],
        { timeout: 180_000 },
      );
      const line = stdout.trim().split("\n").at(-1);
      if (!line.startsWith("{")) throw new Error(`gr-load: ${stdout.trim()}`);
      results.push(JSON.parse(line).msgsPerSec);
      const cpu1 = cpuSeconds(child.pid);
      if (cpu0 !== null && cpu1 !== null)
        cpuPerMsg.push(((cpu1 - cpu0) * 1e6) / (Number(pairs) * Number(msgs)));
    }
    console.log(
      JSON.stringify({
        size,
        pairs: Number(pairs),
        msgs: Number(msgs),
        runs: results,
        median: median(results),
        // Router CPU per forwarded message (whole run incl. connection setup): less sensitive to
        // other load on the machine than msgs/s.
        routerCpuUsPerMsg: cpuPerMsg.length ? Number(median(cpuPerMsg).toFixed(3)) : null,
      }),
    );
  }
} finally {
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
}
