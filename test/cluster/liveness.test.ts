// The liveness tracker of a cluster member with a fake clock: no sockets, no timers.
import { describe, expect, test } from "@jest/globals";
import { Liveness, TakeoverWatch } from "../../runtime/cluster/liveness.js";
import { type Member, makeView, memberKey } from "../../runtime/cluster/member.js";

const SUSPECT_MS = 1000;

function m(name: string): Member {
  return {
    name,
    site: "nyc",
    uuid: `00000000-0000-4000-8000-00000000000${name.length}`,
    host: "10.0.0.1",
    port: 7800,
  };
}

function harness() {
  const clock = { now: 10_000 };
  const live = new Liveness(SUSPECT_MS, () => clock.now);
  return { clock, live };
}

describe("Liveness", () => {
  const a = m("a");
  const bb = m("bb");
  const ccc = m("ccc");
  const [ka, kb, kc] = [a, bb, ccc].map(memberKey) as [string, string, string];

  test("a member is overdue only after more than suspectTimeoutMs of silence", () => {
    const { clock, live } = harness();
    live.installed(makeView(1, [a, bb]), null);
    clock.now += SUSPECT_MS;
    expect(live.overdue(kb)).toBeNull();
    clock.now += 1;
    expect(live.overdue(kb)).toBe(SUSPECT_MS + 1);
  });

  test("hearing from a member restarts its clock", () => {
    const { clock, live } = harness();
    live.installed(makeView(1, [a, bb]), null);
    clock.now += 900;
    live.heard(kb);
    clock.now += 900;
    expect(live.overdue(kb)).toBeNull();
    expect(live.overdue(ka)).toBe(1800);
  });

  test("members of no installed view are not tracked", () => {
    const { clock, live } = harness();
    live.installed(makeView(1, [a]), null);
    live.heard(kc);
    clock.now += 5 * SUSPECT_MS;
    expect(live.overdue(kc)).toBeNull();
  });

  test("a new view starts the clock of its new members and keeps the others' clocks", () => {
    const { clock, live } = harness();
    const v1 = makeView(1, [a, bb]);
    live.installed(v1, null);
    clock.now += 800;
    live.installed(makeView(2, [a, bb, ccc]), v1);
    clock.now += 800;
    expect(live.overdue(kb)).toBe(1600);
    expect(live.overdue(kc)).toBeNull();
  });

  test("suspicions of members that left the view are forgotten, with their clocks", () => {
    const { clock, live } = harness();
    const v1 = makeView(1, [a, bb, ccc]);
    live.installed(v1, null);
    live.suspect(kb);
    live.suspect(kc);
    expect([...live.suspects].sort()).toEqual([kb, kc].sort());
    const v2 = makeView(2, [a, ccc]);
    live.installed(v2, v1);
    expect(live.isSuspected(kb)).toBe(false);
    expect(live.isSuspected(kc)).toBe(true);
    live.clear(kc);
    expect(live.suspects.size).toBe(0);
    // bb comes back later: its clock starts anew at that view.
    clock.now += 5 * SUSPECT_MS;
    live.installed(makeView(3, [a, ccc, bb]), v2);
    expect(live.overdue(kb)).toBeNull();
    expect(live.overdue(kc)).toBe(5 * SUSPECT_MS);
  });
});

describe("TakeoverWatch", () => {
  test("the same successor awaited for more than the grace is overdue; a change restarts the wait", () => {
    const clock = { now: 0 };
    const watch = new TakeoverWatch(SUSPECT_MS, () => clock.now);
    expect(watch.overdue(null)).toBeNull();
    expect(watch.overdue("b")).toBeNull(); // the wait for b starts
    clock.now += SUSPECT_MS;
    expect(watch.overdue("b")).toBeNull();
    clock.now += 1;
    expect(watch.overdue("b")).toBe("b");
    expect(watch.overdue("c")).toBeNull(); // b suspected, c is next: a new wait
    clock.now += SUSPECT_MS + 1;
    expect(watch.overdue("c")).toBe("c");
    expect(watch.overdue(null)).toBeNull(); // nobody awaited (we took over, or c did)
    clock.now += 10 * SUSPECT_MS;
    expect(watch.overdue(null)).toBeNull();
  });

  test("a view installed restarts the wait, even for the same successor", () => {
    const clock = { now: 0 };
    const watch = new TakeoverWatch(SUSPECT_MS, () => clock.now);
    watch.overdue("b");
    clock.now += SUSPECT_MS;
    watch.reset();
    expect(watch.overdue("b")).toBeNull();
    clock.now += SUSPECT_MS;
    expect(watch.overdue("b")).toBeNull();
    clock.now += 1;
    expect(watch.overdue("b")).toBe("b");
  });
});
