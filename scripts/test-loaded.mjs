#!/usr/bin/env node
// `npm run test:loaded [-- --runs N] [-- jest args]`: the test suite while the CPU is saturated.
// Starts one busy process per core (a tight loop each; `--busy N` to choose), runs the jest suite
// `--runs` times in a row (default 3) and stops the busy processes whatever happens. Exits non-zero
// on the first failing run. This is how the suite is shown not to depend on the machine's speed.
import { fork, spawnSync } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);
const take = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const [, value] = argv.splice(i, 2);
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} needs a whole number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
};
const runs = take("runs", 3);
const busy = take("busy", os.availableParallelism());

if (process.env.BUSY_CHILD === "1") {
  // The busy child: spin until the parent goes away (IPC disconnect) or kills it.
  process.on("disconnect", () => process.exit(0));
  for (;;) {
    const end = Date.now() + 50;
    while (Date.now() < end) {}
    await new Promise((r) => setImmediate(r));
  }
}

const self = fileURLToPath(import.meta.url);
const burners = Array.from({ length: busy }, () =>
  fork(self, [], { env: { ...process.env, BUSY_CHILD: "1" } }),
);
const stop = () => {
  for (const b of burners) if (b.exitCode === null) b.kill("SIGKILL");
};
process.on("exit", stop);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

console.log(`test:loaded: ${busy} busy processes, ${runs} runs of the suite`);
let status = 0;
for (let run = 1; run <= runs && status === 0; run++) {
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    ["--experimental-vm-modules", "node_modules/jest/bin/jest.js", ...argv],
    { stdio: "inherit" },
  );
  status = r.status ?? 1;
  console.log(
    `test:loaded: run ${run}/${runs} ${status === 0 ? "passed" : "FAILED"} in ${Math.round((Date.now() - t0) / 1000)} s (load average ${os.loadavg()[0].toFixed(1)})`,
  );
}
stop();
process.exit(status);
