// Synthesizes a topology into a temporary directory exactly as `cdktf synth` does (App.synth) and
// reads back the manifest and every stack's JSON; plus structural checks of that JSON.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "cdktf";
import { buildRelayStacks, type RelayStacks } from "../../stacks/relay-app.js";
import type { Topology } from "../../topology/index.js";

// biome-ignore lint/suspicious/noExplicitAny: synthesized Terraform JSON is untyped
export type TfJson = Record<string, any>;

export interface Synthesized {
  readonly stacks: Record<string, TfJson>;
  readonly dependencies: Record<string, string[]>;
  readonly built: RelayStacks;
}

export function synthTopology(topology: Topology): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), "relay-synth-"));
  try {
    const app = new App({ outdir, skipValidation: false });
    const built = buildRelayStacks(app, topology);
    app.synth();
    const manifest = JSON.parse(readFileSync(join(outdir, "manifest.json"), "utf8"));
    const stacks: Record<string, TfJson> = {};
    const dependencies: Record<string, string[]> = {};
    for (const [name, entry] of Object.entries<TfJson>(manifest.stacks)) {
      stacks[name] = JSON.parse(readFileSync(join(outdir, entry["synthesizedStackPath"]), "utf8"));
      dependencies[name] = entry["dependencies"];
    }
    return { stacks, dependencies, built };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Every resource of `type` in a stack, as [logical id, body] pairs. */
export function resourcesOf(stack: TfJson, type: string): [string, TfJson][] {
  return Object.entries(stack["resource"]?.[type] ?? {});
}

/** The one resource of `type` whose `metadata.name` (or `name`) is `name`. */
export function findNamed(stack: TfJson, type: string, name: string): TfJson {
  const hits = resourcesOf(stack, type).filter(([, r]) => (r["metadata"]?.["name"] ?? r["name"]) === name);
  if (hits.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${hits.length}`);
  return hits[0]![1];
}

/** Every `${...}` expression in a JSON value (nested braces balanced). */
export function expressionsIn(value: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      for (let i = v.indexOf("${"); i !== -1; i = v.indexOf("${", i + 2)) {
        let depth = 0;
        for (let j = i + 1; j < v.length; j++) {
          if (v[j] === "{") depth++;
          else if (v[j] === "}" && --depth === 0) {
            out.push(v.slice(i + 2, j));
            break;
          }
        }
      }
    } else if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (v && typeof v === "object") {
      Object.values(v).forEach(visit);
    }
  };
  visit(value);
  return out;
}

const BUILTIN_ROOTS = new Set(["terraform", "path", "count", "each", "self", "var"]);

/** References (`type.name`, `data.type.name`, `local.name`) used in an expression. */
export function referencesIn(expression: string): string[] {
  const refs: string[] = [];
  const re = /(?<![\w.\]"-])((?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z_][\w-]*)/g;
  for (const m of expression.matchAll(re)) {
    const ref = m[1]!;
    if (BUILTIN_ROOTS.has(ref.split(".")[0]!)) continue;
    refs.push(ref);
  }
  return refs;
}

/**
 * Structural problems of one stack: references to things the stack does not declare, remote-state
 * outputs the producer does not have, resources whose provider is not configured here.
 */
export function structuralProblems(name: string, all: Record<string, TfJson>): string[] {
  const stack = all[name]!;
  const problems: string[] = [];
  const declared = new Set<string>();
  for (const [type, byName] of Object.entries<TfJson>(stack["resource"] ?? {})) {
    for (const id of Object.keys(byName)) declared.add(`${type}.${id}`);
  }
  for (const [type, byName] of Object.entries<TfJson>(stack["data"] ?? {})) {
    for (const id of Object.keys(byName)) declared.add(`data.${type}.${id}`);
  }
  for (const id of Object.keys(stack["locals"] ?? {})) declared.add(`local.${id}`);

  const checked = {
    resource: stack["resource"],
    data: stack["data"],
    locals: stack["locals"],
    output: stack["output"],
    provider: stack["provider"],
  };
  for (const expr of expressionsIn(checked)) {
    for (const ref of referencesIn(expr)) {
      if (!declared.has(ref)) problems.push(`${name}: \${${expr}} refers to ${ref}, which is not declared`);
    }
    for (const m of expr.matchAll(/data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)/g)) {
      const producer = remoteStateProducer(stack, m[1]!);
      if (!producer || !all[producer]) {
        problems.push(`${name}: remote state ${m[1]} does not point at a stack of this app`);
      } else if (!all[producer]!["output"]?.[m[2]!]) {
        problems.push(`${name}: ${producer} has no output ${m[2]}`);
      }
    }
  }

  const providers = new Set(Object.keys(stack["provider"] ?? {}));
  const required = new Set(Object.keys(stack["terraform"]?.["required_providers"] ?? {}));
  for (const kind of ["resource", "data"] as const) {
    for (const type of Object.keys(stack[kind] ?? {})) {
      if (type === "terraform_remote_state") continue;
      const provider = type.split("_")[0]!;
      if (!providers.has(provider))
        problems.push(`${name}: ${kind} ${type} but no ${provider} provider is configured`);
      if (!required.has(provider))
        problems.push(`${name}: ${kind} ${type} but ${provider} is not in required_providers`);
    }
  }
  return problems;
}

/** The stack whose state a `terraform_remote_state` data source reads (by backend key/path). */
export function remoteStateProducer(stack: TfJson, dataSource: string): string | undefined {
  const rs = stack["data"]?.["terraform_remote_state"]?.[dataSource];
  if (!rs) return undefined;
  const config = rs["config"] ?? {};
  const m =
    /terraform\.([\w-]+)\.tfstate$/.exec(config["path"] ?? "") ??
    /\/([\w-]+)\.tfstate$/.exec(config["key"] ?? "") ??
    /\/([\w-]+)$/.exec(config["prefix"] ?? "");
  return m?.[1];
}

/** Resolves `${local.x}` references of a stack recursively into one expression string. */
export function inlineLocals(stack: TfJson, value: string, depth = 0): string {
  if (depth > 10) throw new Error("locals nest too deep");
  return value.replace(
    /\$\{local\.([\w-]+)\}|local\.([\w-]+)/g,
    (_, a: string | undefined, b: string | undefined) => {
      const local = stack["locals"]?.[(a ?? b)!];
      if (typeof local !== "string") throw new Error(`undeclared local ${a ?? b}`);
      const inner = inlineLocals(stack, local, depth + 1);
      // A local used whole inside an interpolation is itself `${...}`: strip it when nested.
      return a !== undefined ? inner : inner.replace(/^\$\{(.*)\}$/, "$1");
    },
  );
}

/** The env list of the single container of a Deployment, as name -> entry. */
export function containerEnv(deployment: TfJson): Map<string, TfJson> {
  const container = deployment["spec"]["template"]["spec"]["container"][0];
  return new Map((container["env"] as TfJson[]).map((e) => [e["name"], e]));
}
