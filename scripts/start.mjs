// `npm start`: `relay local` from the built output, rebuilding first only when a source of the
// runtime is newer than the build (npm ci already built it through `prepare`), so a newcomer sees
// the prompt in about two seconds instead of waiting for tsc on every start.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const entry = path.join(root, "dist/runtime/cli/relay.js");

/** Newest modification time (ms) of the files under `dir` with one of the extensions. */
function newest(dir, exts) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !exts.some((x) => e.name.endsWith(x))) continue;
    t = Math.max(t, statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return t;
}

function builtAt() {
  try {
    return statSync(entry).mtimeMs;
  } catch {
    return 0; // never built
  }
}

const sources = Math.max(
  newest(path.join(root, "runtime"), [".ts"]),
  newest(path.join(root, "contract"), [".ts"]),
  ...["package.json", "tsconfig.json", "tsconfig.build.json"].map(
    (f) => statSync(path.join(root, f)).mtimeMs,
  ),
);
if (sources > builtAt()) {
  process.stdout.write("building (sources changed since the last build)...\n");
  const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
// In this process: signals and the terminal go straight to `relay local`.
process.argv = [process.argv[0], entry, "local", ...process.argv.slice(2)];
await import(entry);
