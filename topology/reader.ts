// Reading an untyped topology document (parsed from JSON/YAML): a Reader collects every problem,
// one line each naming its field, and every getter returns a usable fallback so reading goes on.
// Shared by topology/parse.ts and the clouds' site parsers (clouds/<kind>/site.ts).

import { cidrProblem } from "../constructs/cidr.js";

/** Largest node count of any node group or pool. */
export const MAX_NODES = 100;

export type Obj = Record<string, unknown>;

/** Collects problems while reading an untyped document; every getter returns a usable fallback. */
export class Reader {
  readonly problems: string[] = [];

  problem(path: string, message: string): void {
    this.problems.push(`${path}: ${message}`);
  }

  object(value: unknown, path: string): Obj | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.problem(path, `must be a mapping (object), got ${describe(value)}`);
      return undefined;
    }
    return value as Obj;
  }

  unknownKeys(obj: Obj, allowed: readonly string[], path: string): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key))
        this.problem(join(path, key), `unknown field; allowed: ${allowed.join(", ")}`);
    }
  }

  string(obj: Obj, key: string, path: string, fallback: string, pattern?: RegExp, what?: string): string {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string" || v.trim() === "") {
      this.problem(join(path, key), `must be a non-empty string, got ${describe(v)}`);
      return fallback;
    }
    if (pattern && !pattern.test(v)) {
      this.problem(join(path, key), `"${clip(v)}" is not allowed: ${what}`);
      return fallback;
    }
    return v;
  }

  optionalString(obj: Obj, key: string, path: string): string | undefined {
    if (obj[key] === undefined) return undefined;
    const s = this.string(obj, key, path, "");
    return s === "" ? undefined : s;
  }

  requiredString(obj: Obj, key: string, path: string, pattern?: RegExp, what?: string): string {
    if (obj[key] === undefined) {
      this.problem(join(path, key), `is required${what ? ` (${what})` : ""}`);
      return "";
    }
    return this.string(obj, key, path, "", pattern, what);
  }

  int(obj: Obj, key: string, path: string, fallback: number, min: number, max: number): number {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v)) {
      this.problem(join(path, key), `must be an integer in ${min}..${max}, got ${describe(v)}`);
      return fallback;
    }
    if (v < min || v > max) {
      this.problem(join(path, key), `${v} is outside ${min}..${max}`);
      return fallback;
    }
    return v;
  }

  /**
   * A non-empty list of CIDRs at `path` (each checked by cidrProblem), or undefined when absent
   * or unusable. `extra` lists words allowed besides CIDRs (e.g. "egress").
   */
  cidrList(value: unknown, path: string, extra: readonly string[] = []): string[] | undefined {
    if (value === undefined) return undefined;
    const example = extra.length > 0 ? `${extra.join(", ")} or 203.0.113.7/32` : "203.0.113.7/32";
    if (!Array.isArray(value) || value.length === 0) {
      this.problem(path, `must be a non-empty list of CIDRs such as ${example}, got ${describe(value)}`);
      return undefined;
    }
    let ok = true;
    value.forEach((v, i) => {
      const problem =
        typeof v !== "string"
          ? `must be a CIDR string, got ${describe(v)}`
          : extra.includes(v)
            ? undefined
            : cidrProblem(v);
      if (problem) {
        this.problem(`${path}[${i}]`, problem);
        ok = false;
      }
    });
    return ok ? (value as string[]) : undefined;
  }

  /** One of `allowed` (exact, case-sensitive). */
  oneOf<T extends string>(obj: Obj, key: string, path: string, fallback: T, allowed: readonly T[]): T {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (!(allowed as readonly unknown[]).includes(v)) {
      this.problem(join(path, key), `${describe(v)} is not allowed; allowed: ${allowed.join(", ")}`);
      return fallback;
    }
    return v as T;
  }

  bool(obj: Obj, key: string, path: string, fallback: boolean): boolean {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") {
      this.problem(join(path, key), `must be true or false, got ${describe(v)}`);
      return fallback;
    }
    return v;
  }
}

/** `a.b` (or `b` at the root). */
export function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** A value in a message: quoted and clipped strings, the type of anything else. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return `"${clip(v)}"`;
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${clip(String(v))}`;
}

/** Keeps messages one short line even for hostile input. */
export function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}
