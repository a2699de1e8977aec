// The package as a user gets it (docs/API.md): `npm pack`, then the tarball installed into empty
// projects. Without the CDKTF peers, the runtime entry imports, its types check, and the first
// example of docs/API.md runs and delivers its message; with the peers, `./constructs` synthesizes
// a stack. Every TypeScript example of docs/API.md is type-checked against the installed .d.ts.
import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, jest, test } from "@jest/globals";

jest.setTimeout(240_000);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");
const PEERS = [
  "cdktf",
  "constructs",
  "@cdktf/provider-aws",
  "@cdktf/provider-google",
  "@cdktf/provider-kubernetes",
  "@cdktf/provider-tls",
];
let work = "";
let tarball = "";

function sh(cmd: string, args: string[], cwd: string, timeoutMs = 180_000): string {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    timeout: timeoutMs,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** An empty ESM project with the tarball installed (its runtime dependencies from the npm cache or registry). */
function project(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], dir);
  return dir;
}

/** The ```ts blocks of docs/API.md. */
function apiExamples(): string[] {
  const doc = readFileSync(path.join(ROOT, "docs/API.md"), "utf8");
  return [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Type-strips `file` to JavaScript beside it with the repository's tsc (ESM, Node resolution). */
function compileToJs(dir: string, file: string, extra: readonly string[] = []): void {
  const args = ["--target", "ES2022", "--module", "NodeNext", "--moduleResolution", "NodeNext", ...extra];
  sh(
    process.execPath,
    [TSC, ...args, "--types", "node", "--typeRoots", path.join(ROOT, "node_modules/@types"), file],
    dir,
  );
}

function typeCheck(dir: string, files: string[]): void {
  writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ["node"],
        typeRoots: [path.join(ROOT, "node_modules/@types")],
      },
      files,
    }),
  );
  const r = spawnSync(process.execPath, [TSC, "-p", "tsconfig.json"], {
    cwd: dir,
    encoding: "utf8",
    timeout: 120_000,
  });
  expect(`${r.stdout}${r.stderr}`).toBe("");
  expect(r.status).toBe(0);
}

beforeAll(() => {
  if (!existsSync(path.join(ROOT, "dist/runtime/index.d.ts")))
    throw new Error("dist/ has no declarations: run `npm run build` first (npm test does)");
  work = mkdtempSync(path.join(os.tmpdir(), "relay-pack-"));
  const out = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
    cwd: ROOT,
    encoding: "utf8",
  });
  tarball = path.join(work, (JSON.parse(out) as { filename: string }[])[0]!.filename);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the tarball holds the compiled entries with their types, and no sources or tests", () => {
  const listing = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n");
  for (const f of [
    "dist/runtime/index.js",
    "dist/runtime/index.d.ts",
    "dist/constructs/index.js",
    "dist/constructs/index.d.ts",
    "dist/runtime/cli/relay.js",
  ]) {
    expect(listing).toContain(`package/${f}`);
  }
  expect(listing.filter((f) => /\.ts$/.test(f) && !f.endsWith(".d.ts"))).toEqual([]);
  expect(listing.filter((f) => f.includes("/test/") || f.endsWith(".map"))).toEqual([]);
});

test("without cdktf: the runtime entry installs, type-checks the API examples and runs the first", () => {
  const dir = project("app");
  // The CDKTF half is not dragged into an application that only embeds the runtime.
  for (const peer of PEERS) expect(existsSync(path.join(dir, "node_modules", peer))).toBe(false);
  const examples = apiExamples().filter((e) => !e.includes("cross-cloud-relay/constructs"));
  expect(examples.length).toBeGreaterThanOrEqual(3);
  const files = examples.map((code, i) => {
    const f = `example-${i}.ts`;
    writeFileSync(path.join(dir, f), code.includes("import") ? code : `${code}\nexport {};\n`);
    return f;
  });
  typeCheck(dir, files);
  // The first example, as JavaScript (type-stripped by tsc), through the installed package.
  const first = examples[0]!;
  expect(first).toContain("// run:");
  writeFileSync(path.join(dir, "run.ts"), first);
  compileToJs(dir, "run.ts");
  const out = sh(process.execPath, ["run.js"], dir, 60_000);
  expect(out.split("\n")).toContain("nyc-1@nyc: hello");
  // The CLI comes with it.
  expect(
    sh(process.execPath, ["node_modules/cross-cloud-relay/dist/runtime/cli/relay.js", "--help"], dir),
  ).toContain("router");
});

test("with the peers: ./constructs type-checks its example and synthesizes a stack", () => {
  const dir = project("iac");
  // The peers as a user would have them installed beside the package (linked from this repository).
  for (const peer of PEERS) {
    const target = path.join(dir, "node_modules", peer);
    mkdirSync(path.dirname(target), { recursive: true });
    symlinkSync(path.join(ROOT, "node_modules", peer), target, "dir");
  }
  const example = apiExamples().find((e) => e.includes("cross-cloud-relay/constructs"));
  expect(example).toBeDefined();
  writeFileSync(path.join(dir, "main.ts"), example!.replace("new App()", `new App({ outdir: "out" })`));
  typeCheck(dir, ["main.ts"]);
  compileToJs(dir, "main.ts", ["--skipLibCheck"]);
  sh(process.execPath, ["main.js"], dir, 120_000);
  const stackDir = path.join(dir, "out/stacks/relay");
  expect(readdirSync(stackDir)).toContain("cdk.tf.json");
  const synth = JSON.parse(readFileSync(path.join(stackDir, "cdk.tf.json"), "utf8")) as {
    resource: Record<string, unknown>;
  };
  expect(Object.keys(synth.resource)).toEqual(
    expect.arrayContaining(["kubernetes_deployment_v1", "kubernetes_service_v1"]),
  );
});
