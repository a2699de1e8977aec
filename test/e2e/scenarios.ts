// Scenario selection for the e2e suite: every test is named `[id] ...`, and E2E_SCENARIOS=id,id
// runs only those (the others are reported as skipped). `-t` works as well.
import { e2eUnavailableReason } from "./world.js";

const filter = (process.env["E2E_SCENARIOS"] ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter((s) => s.length > 0);

/** True when scenario `id` should run (no filter = all). */
export function selected(id: string): boolean {
  return filter.length === 0 || filter.includes(id);
}

/** True when at least one of `ids` is selected (a file can skip building its world otherwise). */
export function anySelected(ids: readonly string[]): boolean {
  return ids.some(selected);
}

/** Why this machine cannot run the e2e suite (null = it can); computed once per file. */
export const unavailable: string | null = e2eUnavailableReason();

if (unavailable) {
  // One clear line in the output, besides the skipped tests' names.
  process.stderr.write(`e2e tests skipped: ${unavailable}\n`);
}

/** `test` for a scenario, or `test.skip` when it is filtered out or the machine cannot run it. */
export function scenario(id: string, title: string, fn: () => Promise<void>, timeoutMs: number): void {
  const name = `[${id}] ${title}`;
  if (unavailable) test.skip(`${name} (skipped: ${unavailable})`, fn);
  else if (!selected(id)) test.skip(`${name} (not in E2E_SCENARIOS)`, fn);
  else test(name, fn, timeoutMs);
}
