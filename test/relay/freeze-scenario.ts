// The freeze scenarios of docs/DELIVERY.md ("Partitions and frozen members"), shared by
// test/relay/delivery-freeze.test.ts (assertions) and bench/freeze.mjs (figures): nyc 5 + sfc 3,
// two routers, senders nyc-4, nyc-5 and sfc-3 (never stopped) streaming to everyone while some
// members are stopped with SIGSTOP for longer than any timeout. See the test for what is checked.
import { waitFor } from "../helpers/wait.js";
import { type AppEvent, fifoProblems, gapAround, type Member, World } from "./delivery-harness.js";

export const COUNT = 1500;
export const RATE = 150;
export const FREEZE_MS = 6000;

export interface FreezeOutcome {
  readonly problems: string[];
  /** gap events, at any member */
  readonly gaps: number;
  /** cross-site messages missing at never-stopped members that stayed primary (must be 0) */
  readonly lost: number;
  /** the longest silence of a cross-site stream at a never-stopped member around the freeze (ms) */
  readonly worstGapMs: number;
  /** never-stopped members that stayed primary / all never-stopped members */
  readonly steady: number;
  readonly neverStopped: number;
  readonly maxSiteMasters: Record<string, number>;
}

/** Most members of `site` that believed they were site master at the same moment. */
function maxConcurrentSiteMasters(members: readonly Member[]): number {
  const changes: { t: number; name: string; sm: boolean }[] = [];
  for (const m of members) {
    for (const e of m.events)
      if (e.type === "state") changes.push({ t: e.t, name: m.name, sm: e.siteMaster === true });
  }
  changes.sort((a, b) => a.t - b.t);
  const now = new Set<string>();
  let max = 0;
  for (const c of changes) {
    if (c.sm) now.add(c.name);
    else now.delete(c.name);
    max = Math.max(max, now.size);
  }
  return max;
}

/** Whether the member ever reported a non-primary view (frozen, split off, falsely suspected). */
function leftPrimary(m: Member): boolean {
  const states = m.events.filter((e) => e.type === "state");
  const first = states.findIndex((e) => e.primary === true); // before its first view it has none
  return first >= 0 && states.slice(first).some((e) => e.primary === false);
}

/** A cross-site stream: in order, no duplicates, and every hole named by a gap event. */
function gapProblems(m: Member, sender: string): string[] {
  const ns = m.received.filter((r) => r.from === sender).map((r) => r.n);
  const problems: string[] = [];
  for (let i = 1; i < ns.length; i++) if (ns[i]! <= ns[i - 1]!) problems.push(`${ns[i]} after ${ns[i - 1]}`);
  const got = new Set(ns);
  const gaps = m.events.filter((e: AppEvent) => e.type === "gap" && e.from === sender);
  const named = (n: number) => gaps.some((g) => n >= (g.first as number) && n <= (g.last as number));
  const silent: number[] = [];
  for (let n = 1; n <= COUNT; n++) if (!got.has(n) && !named(n)) silent.push(n);
  if (silent.length > 0)
    problems.push(`missing without a gap event: ${silent.length} (${silent.slice(0, 8).join(",")}...)`);
  return problems.slice(0, 8);
}

/**
 * `minority`: never-stopped members that are expected to be out of the primary view for a while
 * (the smaller side of the split); every other never-stopped member must stay primary throughout.
 */
export async function freezeScenario(
  label: string,
  frozen: (w: World) => Member[],
  minority: readonly string[] = [],
): Promise<FreezeOutcome> {
  // Failure detection at 2.5 s (the freeze is 6 s): a loaded machine suspects less at random.
  const w = await World.start({ sites: { nyc: 5, sfc: 3 }, app: { suspectTimeoutMs: 2500 } });
  try {
    const senders = [w.members.nyc![3]!, w.members.nyc![4]!, w.members.sfc![2]!];
    for (const s of senders) s.command(`send ${COUNT} ${RATE}`);
    await waitFor("streams started", () => senders.every((s) => s.received.length > 150), {
      timeoutMs: 20_000,
      intervalMs: 25,
    });
    const stopped = frozen(w);
    const frozeAt = Date.now();
    for (const m of stopped) m.child!.kill("SIGSTOP");
    await new Promise((r) => setTimeout(r, FREEZE_MS));
    for (const m of stopped) m.child!.kill("SIGCONT");
    await waitFor("senders done", () => senders.every((s) => s.lastEvent("sent")), {
      timeoutMs: 60_000,
      intervalMs: 25,
    });
    const names = senders.map((s) => `${s.name}:${s.site}`);
    const remote = (m: Member) => names.filter((n) => !n.endsWith(`:${m.site}`));
    const never = w.alive().filter((m) => !stopped.includes(m));
    const complete = (m: Member) =>
      remote(m).every((n) => m.received.filter((r) => r.from === n).length >= COUNT);
    // Generous: under load a merge after the freeze and the retransmissions take a while.
    await waitFor("every never-stopped member has everything", () => never.every(complete), {
      timeoutMs: 90_000,
      intervalMs: 25,
    }).catch(() => {});
    // The frozen ones: everything, or a gap event for what they lack (seen at the next message).
    await waitFor(
      "the frozen members are done",
      () => stopped.every((m) => remote(m).every((n) => gapProblems(m, n).length === 0)),
      { timeoutMs: 30_000, intervalMs: 25 },
    ).catch(() => {});
    await new Promise((r) => setTimeout(r, 300)); // late duplicates would show now
    const problems: string[] = [];
    const steady = never.filter((m) => !leftPrimary(m));
    for (const m of steady) {
      for (const n of remote(m))
        for (const p of fifoProblems(m.received, n, COUNT)) problems.push(`${m.name} from ${n}: ${p}`);
    }
    let gaps = 0;
    for (const m of w.all().filter((x) => !steady.includes(x))) {
      gaps += m.events.filter((e) => e.type === "gap").length;
      const why = stopped.includes(m) ? "frozen" : "out of the primary view under load";
      for (const n of remote(m))
        for (const p of gapProblems(m, n)) problems.push(`${m.name} (${why}) from ${n}: ${p}`);
    }
    // The never-stopped members are the point: the full contract must be checked on some of them
    // in every site. (One that is falsely suspected on a saturated machine leaves the primary view
    // and is then held to the gap rule above, as the contract says.)
    for (const site of Object.keys(w.members)) {
      const here = never.filter((m) => m.site === site && !minority.includes(m.name));
      if (here.length > 0 && !here.some((m) => steady.includes(m))) {
        problems.push(`no never-stopped member of ${site} stayed in the primary view`);
      }
    }
    const maxSiteMasters = Object.fromEntries(
      Object.entries(w.members).map(([site, ms]) => [site, maxConcurrentSiteMasters(ms)]),
    );
    process.stderr.write(
      `[freeze] ${label}: problems ${problems.length}, gap events ${gaps}, never-stopped members that stayed primary ${steady.length}/${never.length}, most site masters at once ${JSON.stringify(maxSiteMasters)}\n`,
    );
    if (problems.length > 0) {
      for (const m of w.all()) {
        const views = m.events
          .filter((e) => e.type === "state")
          .map((e) => `${e.t % 100_000}:${(e.members as string[]).join("+")}${e.siteMaster ? "*" : ""}`);
        const gapsSeen = m.events.filter((e) => e.type === "gap").map((e) => JSON.stringify(e));
        process.stderr.write(
          `--- ${m.name} views ${views.join(" ")}\n--- ${m.name} gaps ${gapsSeen.join(" ")}\n--- ${m.name} logs\n${m.logs.slice(-4000)}\n`,
        );
      }
    }
    let lost = 0;
    let worstGapMs = 0;
    for (const m of steady) {
      for (const n of remote(m)) {
        const got = new Set(m.received.filter((r) => r.from === n).map((r) => r.n));
        for (let i = 1; i <= COUNT; i++) if (!got.has(i)) lost++;
      }
    }
    for (const m of never) {
      for (const n of remote(m)) {
        const g = gapAround(m.received, n, frozeAt, FREEZE_MS + 15_000);
        if (Number.isFinite(g)) worstGapMs = Math.max(worstGapMs, g);
      }
    }
    return {
      problems,
      gaps,
      lost,
      worstGapMs,
      steady: steady.length,
      neverStopped: never.length,
      maxSiteMasters,
    };
  } finally {
    await w.stop();
  }
}
