// The version string members report (`relay probe`, /status): the package version.
import { readFileSync } from "node:fs";

function readVersion(): string {
  // Same relative path from the sources (runtime/relay) and from the build (dist/runtime/relay).
  for (const rel of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "cross-cloud-relay" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // try the next location
    }
  }
  return "0.0.0";
}

export const RELAY_VERSION = readVersion();
