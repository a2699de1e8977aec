// One streaming scenario of the delivery tests: a sender in each site streams numbered messages to
// everyone while `act` breaks something; then every surviving member must have every message of
// every sender exactly once and in order. Returns the problems and the failover gaps measured.

import { waitFor } from "../helpers/wait.js";
import { fifoProblems, gapAround, type Member, World, type WorldOptions } from "./delivery-harness.js";

export const COUNT = 2000;
export const RATE = 500;

export interface ScenarioResult {
  readonly problems: string[];
  /** Per surviving member and cross-site sender: silence around the fault (ms). */
  readonly gaps: Record<string, number>;
  readonly retransmitted: number;
}

export async function runScenario(
  label: string,
  act: (w: World) => Promise<void>,
  options: Partial<WorldOptions> & { readonly lateJoiners?: readonly string[] } = {},
): Promise<ScenarioResult & { readonly world: World }> {
  const w = await World.start({ sites: { nyc: 3, sfc: 3 }, ...options });
  try {
    // The senders are not site masters (members[0]) so they stay alive in every scenario.
    const senders = [w.members.nyc![2]!, w.members.sfc![2]!];
    for (const s of senders) s.command(`send ${COUNT} ${RATE}`);
    await waitFor("streams started", () => senders.every((s) => s.received.length > 200), {
      timeoutMs: 10_000,
      intervalMs: 25,
    });
    const faultAt = Date.now();
    await act(w);
    await waitFor("senders done", () => senders.every((s) => s.lastEvent("sent")), {
      timeoutMs: 30_000,
      intervalMs: 25,
    });
    const complete = (m: Member) =>
      senders.every((s) => m.received.filter((r) => r.from === `${s.name}:${s.site}`).length >= COUNT);
    const checked = () => w.alive().filter((m) => !options.lateJoiners?.includes(m.name));
    await waitFor("every survivor has every message", () => checked().every(complete), {
      timeoutMs: 15_000,
      intervalMs: 25,
    }).catch(() => {});
    // A little longer: duplicates arriving late must be seen too.
    await new Promise((r) => setTimeout(r, 300));
    for (const s of senders) s.command("stats");
    await waitFor("stats", () => senders.every((s) => s.lastEvent("stats")), {
      timeoutMs: 5000,
      intervalMs: 25,
    });
    const problems: string[] = [];
    const gaps: Record<string, number> = {};
    for (const m of checked()) {
      for (const s of senders) {
        const from = `${s.name}:${s.site}`;
        for (const p of fifoProblems(m.received, from, COUNT)) problems.push(`${m.name} from ${from}: ${p}`);
        if (s.site !== m.site) gaps[`${from} -> ${m.name}`] = gapAround(m.received, from, faultAt);
      }
    }
    const retransmitted = senders.reduce(
      (n, s) =>
        n + ((s.lastEvent("stats")?.stats as { retransmitted?: number } | undefined)?.retransmitted ?? 0),
      0,
    );
    const worst = Math.max(...Object.values(gaps).filter((g) => Number.isFinite(g)));
    process.stderr.write(
      `[delivery] ${label} (fault at ${faultAt % 100_000}): problems ${problems.length}, worst cross-site gap ${worst} ms, retransmitted ${retransmitted}\n`,
    );
    if (problems.length > 0) {
      // Views as each member saw them (a site split under load shows here), then its last logs.
      for (const m of w.all()) {
        const views = m.events
          .filter((e) => e.type === "state")
          .map((e) => `${e.t % 100_000}:${(e.members as string[]).join("+")}${e.siteMaster ? "*" : ""}`);
        process.stderr.write(
          `--- ${m.name} views ${views.join(" ")}\n--- ${m.name} logs\n${m.logs.slice(-3000)}\n`,
        );
      }
    }
    return { problems, gaps, retransmitted, world: w };
  } finally {
    await w.stop();
  }
}
