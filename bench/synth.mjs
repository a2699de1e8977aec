#!/usr/bin/env node
// Synth time of the default topology: `npx cdktf synth` (CLI included) and the app alone
// (`npx tsx app/main.ts`, and `node --import tsx app/main.ts`, which cdktf.json runs), median of N runs each, outputs in temp dirs.
// Usage: node bench/synth.mjs [runs=3]. Prints a Markdown table with the machine; target < 3 s.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const runs = Math.max(1, Math.min(20, Number(process.argv[2] ?? 3) || 3));
const TIMEOUT_MS = 120_000;

function timeOnce(label, command, args, env) {
  const out = mkdtempSync(join(tmpdir(), "relay-bench-synth-"));
  try {
    const started = process.hrtime.bigint();
    const r = spawnSync(command, typeof args === "function" ? args(out) : args, {
      cwd: root,
      env: { ...process.env, CHECKPOINT_DISABLE: "1", CDKTF_OUTDIR: out, ...env },
      encoding: "utf8",
      timeout: TIMEOUT_MS,
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (r.status !== 0)
      throw new Error(`${label} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    const stacks = readdirSync(join(out, "stacks")).length;
    if (stacks === 0) throw new Error(`${label}: no stacks synthesized`);
    return { ms, stacks };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const cases = [
  ["npx cdktf synth", "npx", (out) => ["cdktf", "synth", "--output", out]],
  ["npx tsx app/main.ts", "npx", ["tsx", "app/main.ts"]],
  // What cdktf.json's "app" runs (skips one npx start-up).
  ["node --import tsx app/main.ts", process.execPath, ["--import", "tsx", "app/main.ts"]],
];

const cpu = cpus()[0]?.model ?? "unknown CPU";
const mem = (() => {
  try {
    return readFileSync("/proc/meminfo", "utf8").match(/MemTotal:\s+(\d+)/)?.[1] / 1048576;
  } catch {
    return undefined;
  }
})();
console.log(
  `Machine: ${cpus().length} x ${cpu}${mem ? `, ${mem.toFixed(1)} GiB RAM` : ""}, Node ${process.version}`,
);
console.log(`Median of ${runs} run(s), default topology, outputs in a temp dir; target < 3000 ms.\n`);
console.log("| command | stacks | runs (ms) | median (ms) |");
console.log("|---|---|---|---|");
for (const [label, command, args] of cases) {
  const results = Array.from({ length: runs }, () => timeOnce(label, command, args, {}));
  const times = results.map((r) => r.ms);
  console.log(
    `| \`${label}\` | ${results[0].stacks} | ${times.map((t) => t.toFixed(0)).join(", ")} | ${median(times).toFixed(0)} |`,
  );
}
