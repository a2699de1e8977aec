// Loads the golden GossipRouter captures (test/fixtures/captures, recorded from JGroups 5.5.6).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const capturesDir = path.resolve(repoRoot, "test/fixtures/captures");

export interface CaptureFrame {
  readonly file: string;
  /** Line index within the file (the `#NNN` of jg-decode.py). */
  readonly index: number;
  readonly stream: number;
  readonly dir: "client->router" | "router->client";
  readonly hex: string;
  readonly bytes: Buffer;
}

export const GRACEFUL_CLOSE_HEX = "fffffffb";

/** Every capture file, by name, with its frames in capture order. */
export function loadCaptures(): Map<string, CaptureFrame[]> {
  if (!existsSync(capturesDir)) {
    throw new Error(`golden captures not found: expected the *.jsonl files at ${capturesDir}`);
  }
  const files = readdirSync(capturesDir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort();
  if (files.length === 0) throw new Error(`no *.jsonl capture files in ${capturesDir}`);
  const out = new Map<string, CaptureFrame[]>();
  for (const file of files) {
    const lines = readFileSync(path.join(capturesDir, file), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "");
    out.set(
      file,
      lines.map((line, index) => {
        const o = JSON.parse(line) as { stream: number; dir: CaptureFrame["dir"]; hex: string };
        return { file, index, stream: o.stream, dir: o.dir, hex: o.hex, bytes: Buffer.from(o.hex, "hex") };
      }),
    );
  }
  return out;
}

export function frameAt(captures: Map<string, CaptureFrame[]>, file: string, index: number): CaptureFrame {
  const f = captures.get(file)?.[index];
  if (!f) throw new Error(`capture ${file} has no frame #${index}`);
  return f;
}
