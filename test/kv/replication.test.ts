// ReplicatedMap over real RelayChannels in one process (two routers, two sites on loopback): writes
// in both sites converge at every member, a joiner gets the map before it is ready, remote
// acknowledgements, watch, bad input, a map a site does not have.
import { afterEach, expect, test } from "@jest/globals";
import { KvKind } from "../../runtime/kv/codec.js";
import { KvError } from "../../runtime/kv/errors.js";
import type { ReplicatedMap } from "../../runtime/kv/replicated-map.js";
import { KV_SERVICE } from "../../runtime/kv/service.js";
import { compareVersions } from "../../runtime/kv/version.js";
import type { ProbeInfo } from "../../runtime/relay/control.js";
import { waitFor } from "../helpers/wait.js";
import { Sites } from "./sites.js";

let sites: Sites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/** Same keys, values and versions. */
function sameContent(maps: readonly ReplicatedMap<unknown>[]): boolean {
  const [first, ...rest] = maps;
  const want = JSON.stringify([...first!.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  return rest.every((m) => JSON.stringify([...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) === want);
}

test("writes in both sites, some of the same keys, converge at every member of both sites", async () => {
  sites = await Sites.start();
  const ms = await sites.startSites({ nyc: 2, sfc: 2 });
  const maps = ms.map((m) => m.kv.open<{ n: number; by: string }>("orders"));
  await Promise.all(maps.map((m) => m.ready));
  const [nyc1, nyc2, sfc1, sfc2] = maps as [
    (typeof maps)[0],
    (typeof maps)[0],
    (typeof maps)[0],
    (typeof maps)[0],
  ];
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    writes.push(nyc1.put(`n/${i}`, { n: i, by: "nyc-1" }));
    writes.push(sfc2.put(`s/${i}`, { n: i, by: "sfc-2" }));
    if (i % 10 === 0) {
      // The same key in both sites: one version wins everywhere.
      writes.push(nyc2.put(`both/${i}`, { n: i, by: "nyc-2" }));
      writes.push(sfc1.put(`both/${i}`, { n: i, by: "sfc-1" }));
    }
  }
  writes.push(nyc1.delete("n/7"));
  await Promise.all(writes);
  await waitFor(
    "every member holds the same 629 entries",
    () => maps.every((m) => m.size === 629) && sameContent(maps),
    {
      timeoutMs: 30_000,
      onTimeout: () => maps.map((m) => `${m.status().member}@${m.status().site}: ${m.size}`).join(", "),
    },
  );
  expect(nyc2.get("n/299")).toEqual({ n: 299, by: "nyc-1" });
  expect(sfc1.get("s/0")).toEqual({ n: 0, by: "sfc-2" });
  expect(sfc2.get("n/7")).toBeUndefined();
  for (let i = 0; i < 300; i += 10) {
    const winner = nyc1.get(`both/${i}`);
    expect(maps.map((m) => m.get(`both/${i}`))).toEqual([winner, winner, winner, winner]);
  }
  // Everything written was acknowledged by the other site: nothing pending anywhere.
  await waitFor(
    "no backlog left",
    () => maps.every((m) => m.status().backups.every((b) => b.pendingKeys === 0)),
    {
      timeoutMs: 20_000,
    },
  );
  expect(maps.every((m) => m.status().backups.every((b) => b.online))).toBe(true);
});

test("a member that joins later holds the whole map when it reports ready (state transfer)", async () => {
  sites = await Sites.start();
  const ms = await sites.startSites({ nyc: 2, sfc: 1 });
  const maps = ms.map((m) => m.kv.open<number>("users"));
  await Promise.all(maps.map((m) => m.ready));
  await Promise.all(Array.from({ length: 2000 }, (_, i) => maps[i % 3]!.put(`u/${i}`, i)));
  await waitFor("2000 entries everywhere", () => maps.every((m) => m.size === 2000), { timeoutMs: 30_000 });
  const late = await sites.join("nyc", "nyc-3");
  const map = late.kv.open<number>("users");
  expect(map.isReady).toBe(false);
  await map.ready;
  expect(map.size).toBe(2000); // at once, with no write since
  expect(map.get("u/1234")).toBe(1234);
  expect(map.status().syncs.completed).toBeGreaterThanOrEqual(1);
  expect(map.status().syncs.entriesReceived).toBe(2000);
  // The answering side counts too: its site's coordinator answered the sync and served the map.
  const nyc1 = maps[0]!.status().syncs;
  expect(nyc1.answered).toBeGreaterThanOrEqual(1);
  expect(nyc1.entriesServed).toBeGreaterThanOrEqual(2000);
});

test('ack "remote": resolves once the backup site applied the write', async () => {
  sites = await Sites.start();
  const [nyc, sfc1, sfc2] = await sites.startSites({ nyc: 1, sfc: 2 });
  const a = nyc!.kv.open<string>("sessions");
  const b1 = sfc1!.kv.open<string>("sessions");
  const b2 = sfc2!.kv.open<string>("sessions");
  await Promise.all([a.ready, b1.ready, b2.ready]);
  for (let i = 0; i < 20; i++) {
    await a.put(`s${i}`, `v${i}`, { ack: "remote" });
    // Acknowledged by sfc's coordinator once it applied it.
    expect(b1.get(`s${i}`)).toBe(`v${i}`);
  }
  await waitFor("the other sfc member too", () => b2.get("s19") === "v19", { timeoutMs: 10_000 });
  expect(a.status().backups).toEqual([
    expect.objectContaining({ site: "sfc", online: true, pendingKeys: 0, lagMs: null }),
  ]);
});

test('ack "remote" towards a site that does not have the map ends in a clear TIMEOUT; the write stays here', async () => {
  sites = await Sites.start();
  const [nyc, sfc] = await sites.startSites({ nyc: 1, sfc: 1 });
  const a = nyc!.kv.open<string>("only-in-nyc", { remoteAckTimeoutMs: 1500 });
  await a.ready;
  const err = await a.put("k", "v", { ack: "remote" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(KvError);
  expect((err as KvError).code).toBe("TIMEOUT");
  expect((err as KvError).message).toMatch(/not acknowledged by sfc/);
  expect(a.get("k")).toBe("v");
  expect(a.status().backups[0]).toEqual(expect.objectContaining({ site: "sfc", pendingKeys: 1 }));
  // sfc answered the unknown map cleanly (an ERROR message, counted), and stays healthy.
  expect(sfc!.kv.stats().unknownMap).toBeGreaterThanOrEqual(1);
  expect(sfc!.kv.stats().badMessages).toBe(0);
});

test("bad input: oversized keys and values and bad map names are refused with errors that say what to fix", async () => {
  sites = await Sites.start();
  const [nyc] = await sites.startSites({ nyc: 1 });
  const m = nyc!.kv.open<string>("limits", { limits: { maxKeyBytes: 16, maxValueBytes: 100 } });
  await m.ready;
  const key = await m.put("k".repeat(17), "v").catch((e: unknown) => e);
  expect(key).toBeInstanceOf(KvError);
  expect((key as KvError).code).toBe("KEY_TOO_LARGE");
  expect((key as KvError).message).toMatch(/17 bytes.*16/);
  const value = await m.put("k", "v".repeat(200)).catch((e: unknown) => e);
  expect((value as KvError).code).toBe("VALUE_TOO_LARGE");
  expect(() => nyc!.kv.open("x".repeat(65))).toThrow(/1\.\.64 bytes/);
  expect(m.size).toBe(0);
});

test("watch: changes of a prefix in order, and resumed from a version without missing any", async () => {
  sites = await Sites.start();
  const [a, b] = await sites.startSites({ nyc: 2 });
  const wa = a!.kv.open<number>("w");
  const wb = b!.kv.open<number>("w");
  await Promise.all([wa.ready, wb.ready]);
  const seen: string[] = [];
  const it = wb.watch("p/");
  const reading = (async () => {
    for await (const c of it) {
      seen.push(`${c.key}=${c.value ?? "deleted"}`);
      if (seen.length === 6) break;
    }
  })();
  await wa.put("p/1", 1);
  await wa.put("q/1", 1); // another prefix
  await wa.put("p/2", 2);
  await wa.put("p/1", 11);
  await wa.delete("p/2");
  await wa.put("p/3", 3);
  await wa.put("p/4", 4);
  await reading;
  expect(seen).toEqual(["p/1=1", "p/2=2", "p/1=11", "p/2=deleted", "p/3=3", "p/4=4"]);
  // Resume after p/1=11: the latest state of every key changed since, oldest first.
  const since = wb.version("p/1")!;
  const resumed: string[] = [];
  for await (const c of wb.watch("p/", { since })) {
    resumed.push(`${c.key}=${c.value ?? "deleted"}`);
    expect(compareVersions(c.version, since)).toBeGreaterThan(0);
    if (resumed.length === 3) break;
  }
  expect(resumed).toEqual(["p/2=deleted", "p/3=3", "p/4=4"]);
});

test("the bridge down while both sites write the same keys: after it is back both sites converge, and the conflicts are counted once per key", async () => {
  sites = await Sites.start();
  const ms = await sites.startSites({ nyc: 2, sfc: 2 });
  const maps = ms.map((m) => m.kv.open<string>("inventory", { antiEntropyIntervalMs: 600_000 }));
  await Promise.all(maps.map((m) => m.ready));
  const [nyc1, nyc2, sfc1, sfc2] = maps as [
    ReplicatedMap<string>,
    ReplicatedMap<string>,
    ReplicatedMap<string>,
    ReplicatedMap<string>,
  ];
  // The coordinators and the other members write: the count does not depend on who wrote or on
  // the order in which the other site's writes and acknowledgements arrive (each entry names the
  // version it replaced). Half of the "member/" keys were first written in sfc before the outage:
  // their concurrent writes replace a version both sites had seen, and still conflict.
  for (let i = 0; i < 25; i++) await sfc2.put(`member/${i}`, "before");
  await waitFor("the first writes everywhere", () => maps.every((m) => m.size === 25), { timeoutMs: 20_000 });
  const ports = await sites.stopRouters();
  await waitFor(
    "each site sees only itself",
    () => ms.every((m) => m.channel.topology().sites.length === 1),
    {
      timeoutMs: 20_000,
    },
  );
  for (let i = 0; i < 50; i++) {
    await nyc1.put(`both/${i}`, `nyc-${i}`);
    await sfc1.put(`both/${i}`, `sfc-${i}`);
    await nyc2.put(`member/${i}`, `nyc-${i}`);
    await sfc2.put(`member/${i}`, `sfc-${i}`);
    await nyc1.put(`nyc-only/${i}`, "n");
    await sfc1.put(`sfc-only/${i}`, "s");
  }
  await sites.restartRouters(ports);
  await waitFor(
    "one digest at every member of both sites",
    () => maps.every((m) => m.size === 200 && m.status().digest === nyc1.status().digest),
    {
      timeoutMs: 60_000,
      onTimeout: () =>
        maps
          .map((m) => `${m.status().member}@${m.status().site}: ${m.size} ${m.status().digest.slice(0, 8)}`)
          .join(", "),
    },
  );
  for (let i = 0; i < 50; i++)
    for (const k of [`both/${i}`, `member/${i}`]) {
      const v = nyc1.get(k);
      expect(maps.map((m) => m.get(k))).toEqual([v, v, v, v]);
    }
  const conflicts = (site: string) =>
    maps.filter((m) => m.status().site === site).reduce((n, m) => n + m.status().conflicts, 0);
  // Counted once per key, by the writer whose write lost (sfc's, stamped later, win the most).
  expect(conflicts("nyc") + conflicts("sfc")).toBe(100);
  // Later writes, each made after seeing the other site's, are no conflict.
  await nyc2.put("member/0", "after");
  await waitFor("the later write everywhere", () => maps.every((m) => m.get("member/0") === "after"));
  await sfc2.put("member/0", "after-2");
  await waitFor("the last write everywhere", () => maps.every((m) => m.get("member/0") === "after-2"));
  expect(conflicts("nyc") + conflicts("sfc")).toBe(100);
}, 120_000);

test("a backup site that stays unreachable is taken offline: the other site's writes go on past the backlog budget, and anti-entropy catches it up when it is back", async () => {
  sites = await Sites.start();
  // A small send buffer: during the outage the channel soon takes nothing more for sfc (as a long
  // outage at a high write rate does with the default 32,768 messages); then no batch is in flight
  // and no resend can fail (before the fix: BACKLOG_FULL, refused writes, for as long as it lasts).
  const extra = { sendBuffer: { maxMessages: 8 } };
  const ms = [
    await sites.join("nyc", "nyc-1", extra),
    await sites.join("nyc", "nyc-2", extra),
    await sites.join("sfc", "sfc-1", extra),
  ];
  await sites.settled(ms, 2);
  const options = {
    backlog: { maxKeys: 50 },
    // Writers over the budget are paced until the site is offline (1 s after the first waiting change).
    paceTimeoutMs: 5000,
    resendAfterMs: 300,
    // More resends than the channel takes: what takes sfc offline is that nothing can be sent.
    offlineAfterResends: 1000,
    offlineAfterMs: 1000,
    antiEntropyIntervalMs: 1000,
  };
  const maps = ms.map((m) => m.kv.open<number>("ledger", options));
  await Promise.all(maps.map((m) => m.ready));
  const [nyc1, nyc2, sfc1] = maps as [ReplicatedMap<number>, ReplicatedMap<number>, ReplicatedMap<number>];
  const ports = await sites.stopRouters();
  await waitFor(
    "each site sees only itself",
    () => ms.every((m) => m.channel.topology().sites.length === 1),
    { timeoutMs: 20_000 },
  );
  // Four times the backlog's budget, from both nyc members (each keeps its own backlog).
  for (let i = 0; i < 100; i++) {
    await nyc1.put(`a/${i}`, i);
    await nyc2.put(`b/${i}`, i);
  }
  await waitFor("every write at both nyc members", () => nyc1.size === 200 && nyc2.size === 200);
  for (const m of [nyc1, nyc2])
    expect(m.status().backups.find((b) => b.site === "sfc")).toMatchObject({ online: false, pendingKeys: 0 });
  await sites.restartRouters(ports);
  await waitFor("sfc holds every write, by anti-entropy", () => sfc1.size === 200, { timeoutMs: 30_000 });
  await waitFor(
    "sfc online again at both nyc members",
    () => [nyc1, nyc2].every((m) => m.status().backups.find((b) => b.site === "sfc")?.online === true),
    { timeoutMs: 30_000 },
  );
}, 90_000);

/** Tombstone tests: sfc goes offline at nyc's writer soon after an outage starts. */
const AWAY_OPTIONS = {
  tombstoneGraceMs: 300,
  antiEntropyIntervalMs: 1000,
  resendAfterMs: 300,
  offlineAfterResends: 2,
  offlineAfterMs: 1000,
};

/**
 * nyc x2 and sfc x1 with 20 items written by nyc-2 (and "from/sfc" by sfc-1 with `sfcWrites`);
 * then both routers stop, one write that sfc cannot acknowledge takes it offline at nyc-2 (the
 * channel keeps that one and delivers it later), and nyc-2 (not nyc's coordinator) deletes
 * item/0..9: only anti-entropy can carry those deletes. Returns what the tests go on with, and the
 * keys that must be left once sfc is back.
 */
async function deleteWhileSfcAway(sfcWrites: boolean) {
  sites = await Sites.start();
  const ms = await sites.startSites({ nyc: 2, sfc: 1 });
  const maps = ms.map((m) => m.kv.open<string>("catalog", AWAY_OPTIONS));
  await Promise.all(maps.map((m) => m.ready));
  const [nyc1, nyc2, sfc1] = maps as [ReplicatedMap<string>, ReplicatedMap<string>, ReplicatedMap<string>];
  for (let i = 0; i < 20; i++) await nyc2.put(`item/${i}`, "v1");
  if (sfcWrites) await sfc1.put("from/sfc", "s");
  const extra = sfcWrites ? ["from/sfc"] : [];
  await waitFor("every key everywhere", () => maps.every((m) => m.size === 20 + extra.length));
  const ports = await sites.stopRouters();
  await waitFor(
    "each site sees only itself",
    () => ms.every((m) => m.channel.topology().sites.length === 1),
    { timeoutMs: 20_000 },
  );
  await nyc2.put("trigger", "x");
  await waitFor(
    "sfc offline at the writer",
    () => nyc2.status().backups.find((b) => b.site === "sfc")?.online === false,
    { timeoutMs: 20_000 },
  );
  for (let i = 0; i < 10; i++) await nyc2.delete(`item/${i}`);
  const left = [...extra, "trigger", ...Array.from({ length: 10 }, (_, i) => `item/${i + 10}`)].sort();
  await waitFor("the deletes at both nyc members", () => [nyc1, nyc2].every((m) => m.size === left.length));
  return { s: sites, ms, maps, nyc1, nyc2, sfc1, ports, left };
}

test("a key deleted while the other site is away stays deleted when it comes back after more than the tombstone grace, and the tombstones are collected after that", async () => {
  const { s, maps, nyc1, nyc2, ports, left } = await deleteWhileSfcAway(false);
  // Far longer than the grace, several ticks: the tombstones are the only record of the deletes.
  await new Promise((r) => setTimeout(r, 2500));
  expect([nyc1, nyc2].map((m) => m.status().tombstones)).toEqual([10, 10]);
  await s.restartRouters(ports);
  await waitFor(
    "one digest at every member of both sites",
    () => maps.every((m) => m.status().digest === nyc1.status().digest),
    { timeoutMs: 30_000 },
  );
  // sfc's old values did not come back: the deletes reached sfc.
  for (const m of maps) expect([...m.keys()].sort()).toEqual(left);
  // Once sfc has been back for two anti-entropy periods, nobody holds the tombstones any more.
  await waitFor("the tombstones collected everywhere", () => maps.every((m) => m.status().tombstones === 0), {
    timeoutMs: 30_000,
    onTimeout: () => maps.map((m) => `${m.status().member}: ${m.status().tombstones}`).join(", "),
  });
  expect(maps.map((m) => m.size)).toEqual([11, 11, 11]);
}, 90_000);

test("a member that starts while the other site is away holds the tombstones for it: the keys deleted meanwhile stay deleted when that site comes back", async () => {
  // sfc-1's write is what tells a member that never saw sfc that sfc holds the map.
  const { s, ms, sfc1, ports, left } = await deleteWhileSfcAway(true);
  // A new nyc member (a pod rescheduled during the outage) joins and takes the map from its site;
  // then the two that saw sfc go: it alone holds nyc's state.
  const late = await s.join("nyc", "nyc-3");
  const nyc3 = late.kv.open<string>("catalog", AWAY_OPTIONS);
  await nyc3.ready;
  expect(nyc3.size).toBe(left.length);
  expect(nyc3.status().backups).toEqual([]); // it has never seen sfc
  for (const m of ms.slice(0, 2)) {
    m.kv.close();
    await m.channel.close();
  }
  // Far longer than the grace, several ticks: without the hold nyc-3 collected the tombstones.
  await new Promise((r) => setTimeout(r, 2500));
  expect(nyc3.status().tombstones).toBe(10);
  await s.restartRouters(ports);
  await waitFor("one digest at nyc-3 and sfc-1", () => nyc3.status().digest === sfc1.status().digest, {
    timeoutMs: 30_000,
  });
  // sfc's old values did not come back.
  for (const m of [nyc3, sfc1]) expect([...m.keys()].sort()).toEqual(left);
}, 90_000);

test("a backup site away longer than tombstoneMaxHoldMs: its absence is timed while it lasts, and its return is counted (it should have been re-seeded)", async () => {
  sites = await Sites.start();
  const ms = await sites.startSites({ nyc: 1, sfc: 1 });
  const options = { tombstoneMaxHoldMs: 1500, antiEntropyIntervalMs: 1000 };
  const [nyc, sfc] = ms.map((m) => m.kv.open<string>("catalog", options)) as [
    ReplicatedMap<string>,
    ReplicatedMap<string>,
  ];
  await Promise.all([nyc.ready, sfc.ready]);
  await nyc.put("k", "v");
  await waitFor("k at sfc", () => sfc.get("k") === "v");
  const away = (m: ReplicatedMap<string>) => m.status().backups[0]?.awayMs ?? null;
  expect([away(nyc), away(sfc)]).toEqual([null, null]);
  const ports = await sites.stopRouters();
  await waitFor(
    "each site away for longer than the hold, at the other",
    () => [nyc, sfc].every((m) => (away(m) ?? 0) > 1500),
    { timeoutMs: 30_000 },
  );
  expect(nyc.status().longAbsences).toBe(0); // counted when it comes back
  await sites.restartRouters(ports);
  await waitFor(
    "both back, and the long absence counted on each side",
    () => [nyc, sfc].every((m) => away(m) === null && m.status().longAbsences === 1),
    { timeoutMs: 30_000 },
  );
}, 90_000);

test("a member with nothing in flight takes a backup site that vanished offline too (its status does not show it online)", async () => {
  sites = await Sites.start();
  const ms = await sites.startSites({ nyc: 2, sfc: 1 });
  const options = { offlineAfterMs: 1500, antiEntropyIntervalMs: 1000, resendAfterMs: 300 };
  const [writer, idle, sfc] = ms.map((m) => m.kv.open<string>("catalog", options)) as [
    ReplicatedMap<string>,
    ReplicatedMap<string>,
    ReplicatedMap<string>,
  ];
  await Promise.all([writer.ready, idle.ready, sfc.ready]);
  await writer.put("k", "v", { ack: "remote" });
  const online = (m: ReplicatedMap<string>) => m.status().backups.find((b) => b.site === "sfc")?.online;
  expect([online(writer), online(idle)]).toEqual([true, true]);
  const ports = await sites.stopRouters();
  // The idle member never wrote: only the absence of any route can tell it.
  await waitFor("sfc offline at the member that never wrote", () => online(idle) === false, {
    timeoutMs: 30_000,
  });
  await sites.restartRouters(ports);
  await waitFor(
    "sfc online again at both nyc members",
    () => online(idle) === true && online(writer) === true,
    {
      timeoutMs: 30_000,
    },
  );
  await idle.put("after", "x", { ack: "remote" });
  expect(sfc.get("after")).toBe("x");
}, 90_000);

test("relay probe: a member hosting maps answers with a line per map (entries, readiness, backups, syncs)", async () => {
  sites = await Sites.start();
  const [nyc, sfc] = await sites.startSites({ nyc: 1, sfc: 1 });
  const a = nyc!.kv.open<string>("catalog");
  const b = sfc!.kv.open<string>("catalog");
  await Promise.all([a.ready, b.ready]);
  for (let i = 0; i < 3; i++) await a.put(`k${i}`, "v", { ack: "remote" });
  const answers: ProbeInfo[] = [];
  nyc!.channel.on("probe-response", (p) => answers.push(p));
  nyc!.channel.probe("sfc");
  await waitFor("sfc-1's probe answer", () => answers.some((p) => p.name === "sfc-1"), { timeoutMs: 20_000 });
  const line = answers.find((p) => p.name === "sfc-1")!.maps;
  expect(line).toHaveLength(1);
  expect(line![0]).toMatch(
    /^catalog: 3 entries, 0 tombstones, ready; backup nyc online, 0 pending; 0 conflicts; syncs /,
  );
  // A member whose service closed answers without map lines.
  sfc!.kv.close();
  answers.length = 0;
  nyc!.channel.probe("sfc");
  await waitFor("sfc-1's second answer", () => answers.some((p) => p.name === "sfc-1"), {
    timeoutMs: 20_000,
  });
  expect(answers.find((p) => p.name === "sfc-1")!.maps).toBeUndefined();
}, 60_000);

test("a member whose process stalls during a sync reads the answer waiting in its socket before it times the step out", async () => {
  // A GC pause, a starved CPU or SIGSTOP: timers run before the event loop polls the sockets, so
  // a tick that judged at once asked again for a step whose answer had arrived (and fell back to
  // whole leaves for the rest of the session).
  sites = await Sites.start();
  const [nyc1] = await sites.startSites({ nyc: 1 });
  const a = nyc1!.kv.open<number>("catalog");
  await a.ready;
  for (let i = 0; i < 100; i++) await a.put(`k${i}`, i);
  // The coordinator's digest answer goes out (its connection flushes in this turn's check
  // phase), then the process stalls for 4 step timeouts of the joiner.
  const ch = nyc1!.channel;
  const send = ch.sendService.bind(ch);
  let stalled = false;
  ch.sendService = (dest, payload) => {
    const seq = send(dest, payload);
    if (!stalled && payload[0] === KV_SERVICE && payload[1] === KvKind.DigestRes) {
      stalled = true;
      setImmediate(() => {
        const until = Date.now() + 800;
        while (Date.now() < until) {
          // the stall
        }
      });
    }
    return seq;
  };
  const late = await sites.join("nyc", "nyc-2");
  // Its tick every 100 ms (resendAfterMs / 3): overdue when the stall ends.
  const b = late.kv.open<number>("catalog", { syncStepTimeoutMs: 200, resendAfterMs: 300 });
  await b.ready;
  expect(stalled).toBe(true);
  expect(b.size).toBe(100);
  expect(b.status().syncs.retries).toBe(0);
}, 60_000);
