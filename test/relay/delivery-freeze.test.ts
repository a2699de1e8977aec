// Frozen members (SIGSTOP for longer than any timeout: a long GC pause, CPU starvation) while three
// senders stream to every site (docs/DELIVERY.md, "Partitions and frozen members"). nyc 5 + sfc 3,
// two routers; senders nyc-4, nyc-5 and sfc-3 (never stopped). Asserted per member:
// - every member that is never stopped has every message of every sender, once, in order — even
//   while its site is split in two and has two site masters;
// - a frozen member has each cross-site stream in order and without duplicates, and whatever it
//   lacks of it is named by a "gap" event (it was out of the primary view while those messages
//   became stable) — never a silent hole.
// The number of site masters per site over time is printed (two at once is expected here: the
// frozen one wakes up believing it still is one).
import { expect, jest, test } from "@jest/globals";
import { requireBuild } from "./cli.js";
import { type AppEvent, fifoProblems, type Member, until, World } from "./delivery-harness.js";

jest.setTimeout(150_000);
requireBuild();

const COUNT = 1500;
const RATE = 150;
const FREEZE_MS = 6000;

interface Outcome {
  readonly problems: string[];
  readonly gaps: number;
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

/** Cross-site stream at a frozen member: in order, no duplicates, and every hole named by a gap. */
function frozenProblems(m: Member, sender: string): string[] {
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

async function freezeScenario(label: string, frozen: (w: World) => Member[]): Promise<Outcome> {
  const w = await World.start({ sites: { nyc: 5, sfc: 3 } });
  try {
    const senders = [w.members.nyc![3]!, w.members.nyc![4]!, w.members.sfc![2]!];
    for (const s of senders) s.command(`send ${COUNT} ${RATE}`);
    await until("streams started", () => senders.every((s) => s.received.length > 150), 20_000);
    const stopped = frozen(w);
    for (const m of stopped) m.child!.kill("SIGSTOP");
    await new Promise((r) => setTimeout(r, FREEZE_MS));
    for (const m of stopped) m.child!.kill("SIGCONT");
    await until("senders done", () => senders.every((s) => s.lastEvent("sent")), 60_000);
    const names = senders.map((s) => `${s.name}:${s.site}`);
    const never = w.alive().filter((m) => !stopped.includes(m));
    const complete = (m: Member) =>
      names.every((n) => m.received.filter((r) => r.from === n).length >= COUNT);
    // Generous: under load a merge after the freeze and the retransmissions take a while.
    await until("every never-stopped member has everything", () => never.every(complete), 90_000).catch(
      () => {},
    );
    // The frozen ones: everything, or a gap event for what they lack (seen at the next message).
    await until(
      "the frozen members are done",
      () =>
        stopped.every((m) =>
          names.every((n) => n.endsWith(`:${m.site}`) || frozenProblems(m, n).length === 0),
        ),
      30_000,
    ).catch(() => {});
    await new Promise((r) => setTimeout(r, 300)); // late duplicates would show now
    const problems: string[] = [];
    for (const m of never) {
      for (const n of names)
        for (const p of fifoProblems(m.received, n, COUNT)) problems.push(`${m.name} from ${n}: ${p}`);
    }
    let gaps = 0;
    for (const m of stopped) {
      gaps += m.events.filter((e) => e.type === "gap").length;
      for (const n of names) {
        if (n.endsWith(`:${m.site}`)) continue; // a same-site stream is the local cluster's, not the guarantee's
        for (const p of frozenProblems(m, n)) problems.push(`${m.name} (frozen) from ${n}: ${p}`);
      }
    }
    const maxSiteMasters = Object.fromEntries(
      Object.entries(w.members).map(([site, ms]) => [site, maxConcurrentSiteMasters(ms)]),
    );
    process.stderr.write(
      `[freeze] ${label}: problems ${problems.length}, gap events at frozen members ${gaps}, most site masters at once ${JSON.stringify(maxSiteMasters)}\n`,
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
    return { problems, gaps, maxSiteMasters };
  } finally {
    await w.stop();
  }
}

test("SIGSTOP of the nyc coordinator (its site master) for 6 s", async () => {
  const r = await freezeScenario("nyc coordinator frozen", (w) => [w.members.nyc![0]!]);
  expect(r.problems).toEqual([]);
});

test("SIGSTOP of the two oldest nyc members for 6 s", async () => {
  const r = await freezeScenario("two oldest nyc frozen", (w) => w.members.nyc!.slice(0, 2));
  expect(r.problems).toEqual([]);
});

test("SIGSTOP of three of five nyc members: the two left are a minority and must not certify", async () => {
  const r = await freezeScenario("nyc majority frozen", (w) => w.members.nyc!.slice(0, 3));
  expect(r.problems).toEqual([]);
});

test("SIGSTOP of the sfc site master for 6 s", async () => {
  const r = await freezeScenario("sfc site master frozen", (w) => [w.members.sfc![0]!]);
  expect(r.problems).toEqual([]);
});
