// Where the topology comes from: a JSON/YAML file named by the env var RELAY_TOPOLOGY, else by
// the cdktf context key `topology` (cdktf.json "context", or CDKTF_CONTEXT_JSON), else the seed.

import { readFileSync, statSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { defaultTopology, type Topology, TopologyError } from "./model.js";
import { parseTopology } from "./parse.js";

export const TOPOLOGY_ENV = "RELAY_TOPOLOGY";
export const TOPOLOGY_CONTEXT_KEY = "topology";
/** A topology is a few kilobytes; refuse anything that is clearly not one. */
const MAX_TOPOLOGY_BYTES = 1 << 20;

/** Reads and validates a topology file (`.json`, `.yaml`, `.yml`). */
export function readTopologyFile(path: string): Topology {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    throw new TopologyError([`cannot read the file: ${(err as Error).message}`], path);
  }
  if (size > MAX_TOPOLOGY_BYTES) {
    throw new TopologyError([`file is ${size} bytes; a topology is at most ${MAX_TOPOLOGY_BYTES}`], path);
  }
  const text = readFileSync(path, "utf8");
  let doc: unknown;
  try {
    // YAML is a superset of JSON, so one parser serves both; `uniqueKeys` rejects repeated keys.
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw new TopologyError([`not valid JSON/YAML: ${(err as Error).message.split("\n")[0]}`], path);
  }
  return parseTopology(doc, path);
}

/**
 * The topology for this synth: the file named by `RELAY_TOPOLOGY` (env wins), else by the cdktf
 * context key `topology`, else the seed.
 */
export function resolveTopology(env: NodeJS.ProcessEnv, contextValue: unknown): Topology {
  const fromEnv = env[TOPOLOGY_ENV]?.trim();
  if (fromEnv) return readTopologyFile(fromEnv);
  if (typeof contextValue === "string" && contextValue.trim() !== "")
    return readTopologyFile(contextValue.trim());
  return defaultTopology();
}
