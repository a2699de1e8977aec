// Routing decisions (pure functions) and the bridge membership merged over routers.
import { type BridgeMember, BridgeMembership } from "../../runtime/relay/bridge-view.js";
import {
  crossesSites,
  isAddressedTo,
  localDeliveryFor,
  pickFor,
  remoteSitesFor,
  siteMastersOf,
  stableHash,
} from "../../runtime/relay/routing.js";

describe("routing", () => {
  test("site masters are the oldest members, at least one", () => {
    expect(siteMastersOf(["a", "b", "c"], 1)).toEqual(["a"]);
    expect(siteMastersOf(["a", "b", "c"], 2)).toEqual(["a", "b"]);
    expect(siteMastersOf(["a"], 3)).toEqual(["a"]);
    expect(siteMastersOf(["a", "b"], 0)).toEqual(["a"]);
  });

  test("one sender always maps to the same site master; senders spread over several", () => {
    const sms = ["nyc-1", "nyc-2", "nyc-3"];
    expect(pickFor(sms, "Temp")).toBe(pickFor([...sms], "Temp"));
    expect(pickFor([], "Temp")).toBeUndefined();
    expect(pickFor(["only"], "x")).toBe("only");
    const picked = new Set(Array.from({ length: 50 }, (_, i) => pickFor(sms, `sender-${i}`)));
    expect(picked.size).toBe(3);
    expect(stableHash("abc")).toBe(stableHash("abc"));
    expect(stableHash("abc")).not.toBe(stableHash("abd"));
  });

  test("who a destination is for", () => {
    expect(isAddressedTo({ kind: "all" }, "nyc", "nyc-1")).toBe(true);
    expect(isAddressedTo({ kind: "site", site: "nyc" }, "nyc", "nyc-1")).toBe(true);
    expect(isAddressedTo({ kind: "site", site: "sfc" }, "nyc", "nyc-1")).toBe(false);
    expect(isAddressedTo({ kind: "member", site: "nyc", name: "nyc-1" }, "nyc", "nyc-1")).toBe(true);
    expect(isAddressedTo({ kind: "member", site: "nyc", name: "nyc-2" }, "nyc", "nyc-1")).toBe(false);
    expect(isAddressedTo({ kind: "member", site: "sfc", name: "nyc-1" }, "nyc", "nyc-1")).toBe(false);
  });

  test("which destinations need the bridge, and to which sites", () => {
    expect(crossesSites({ kind: "all" }, "nyc")).toBe(true);
    expect(crossesSites({ kind: "site", site: "nyc" }, "nyc")).toBe(false);
    expect(crossesSites({ kind: "member", site: "sfc", name: "x" }, "nyc")).toBe(true);
    expect(remoteSitesFor({ kind: "all" }, "nyc", ["sfc", "nyc", "lon"])).toEqual(["lon", "sfc"]);
    expect(remoteSitesFor({ kind: "site", site: "sfc" }, "nyc", [])).toEqual(["sfc"]);
    expect(remoteSitesFor({ kind: "member", site: "nyc", name: "a" }, "nyc", ["sfc"])).toEqual([]);
  });

  test("what a site master does with an envelope from the bridge", () => {
    expect(localDeliveryFor({ kind: "all" }, "sfc", "sfc-1")).toEqual({ kind: "multicast" });
    expect(localDeliveryFor({ kind: "site", site: "sfc" }, "sfc", "sfc-1")).toEqual({ kind: "multicast" });
    expect(localDeliveryFor({ kind: "site", site: "nyc" }, "sfc", "sfc-1")).toEqual({ kind: "none" });
    expect(localDeliveryFor({ kind: "member", site: "sfc", name: "sfc-1" }, "sfc", "sfc-1")).toEqual({
      kind: "self",
    });
    expect(localDeliveryFor({ kind: "member", site: "sfc", name: "Temp" }, "sfc", "sfc-1")).toEqual({
      kind: "unicast",
      name: "Temp",
    });
  });
});

const R1 = "127.0.0.1[12001]";
const R2 = "127.0.0.1[12002]";
const m = (name: string, site: string, key = `${name}@${site}`): BridgeMember<string> => ({
  key,
  addr: key,
  site,
  name,
});

describe("bridge membership", () => {
  test("a site master seen through both routers; one router suspects it: the route stays up", () => {
    const b = new BridgeMembership<string>("sfc");
    b.setRouters([R1, R2]);
    let changes = b.snapshot([m("nyc-1", "nyc"), m("sfc-1", "sfc")], 0);
    expect(changes).toEqual([{ site: "nyc", up: true, routers: [R1, R2], siteMasters: ["nyc-1"] }]);
    expect(b.sites()).toEqual(["nyc"]); // our own site is not a route

    changes = b.suspect("nyc-1@nyc", R1, 10);
    expect(changes).toEqual([{ site: "nyc", up: true, routers: [R2], siteMasters: ["nyc-1"] }]);
    expect(b.targetFor("nyc", "Temp")?.name).toBe("nyc-1");

    // The merged snapshot still lists it (through R2): no flap, R1 stays suspected for a while.
    expect(b.snapshot([m("nyc-1", "nyc")], 20)).toEqual([]);
    // Heard through R1 again: reachable through both.
    expect(b.heard(R1, m("nyc-1", "nyc"))).toEqual([
      { site: "nyc", up: true, routers: [R1, R2], siteMasters: ["nyc-1"] },
    ]);
  });

  test("kill -9 of a site master: both routers suspect it, the successor's announcement wins", () => {
    const b = new BridgeMembership<string>("sfc");
    b.setRouters([R1, R2]);
    b.snapshot([m("nyc-1", "nyc")], 0);
    b.announce("nyc", ["nyc-1"]);
    b.suspect("nyc-1@nyc", R1, 5);
    const both = b.suspect("nyc-1@nyc", R2, 6);
    // Not a target any more, but the route only goes down once a snapshot no longer lists it.
    expect(b.targetFor("nyc", "Temp")).toBeUndefined();
    expect(both).toEqual([{ site: "nyc", up: true, routers: [], siteMasters: [] }]);
    // nyc-2 took over and announced itself before our next snapshot.
    b.announce("nyc", ["nyc-2"]);
    expect(b.heard(R2, m("nyc-2", "nyc"))).toEqual([
      { site: "nyc", up: true, routers: [R1, R2], siteMasters: ["nyc-2"] },
    ]);
    expect(b.targetFor("nyc", "Temp")?.name).toBe("nyc-2");
    // The next snapshot drops nyc-1 for good; nothing visible changes.
    expect(b.snapshot([m("nyc-2", "nyc")], 7)).toEqual([]);
    expect(b.membersOf("nyc").map((x) => x.name)).toEqual(["nyc-2"]);
  });

  test("a site whose last site master leaves goes down; losing our last router takes every route down", () => {
    const b = new BridgeMembership<string>("sfc");
    b.setRouters([R1]);
    b.snapshot([m("nyc-1", "nyc"), m("lon-1", "lon")], 0);
    expect(b.remove("lon-1@lon")).toEqual([{ site: "lon", up: false, routers: [], siteMasters: [] }]);
    expect(b.routes().map((r) => [r.site, r.up])).toEqual([
      ["lon", false],
      ["nyc", true],
    ]);
    expect(b.setRouters([])).toEqual([{ site: "nyc", up: false, routers: [], siteMasters: [] }]);
    expect(b.targetFor("nyc", "x")).toBeUndefined();
    expect(b.setRouters([R1])).toEqual([{ site: "nyc", up: true, routers: [R1], siteMasters: ["nyc-1"] }]);
  });

  test("several site masters per site: announced ones preferred, senders spread, order stable", () => {
    const b = new BridgeMembership<string>("sfc");
    b.setRouters([R1]);
    b.snapshot([m("nyc-3", "nyc"), m("nyc-1", "nyc"), m("nyc-2", "nyc")], 0);
    b.announce("nyc", ["nyc-1", "nyc-2"]);
    expect(b.membersOf("nyc").map((x) => x.name)).toEqual(["nyc-1", "nyc-2", "nyc-3"]);
    const targets = new Set(Array.from({ length: 40 }, (_, i) => b.targetFor("nyc", `s${i}`)?.name));
    expect([...targets].sort()).toEqual(["nyc-1", "nyc-2"]);
    expect(b.targetFor("nyc", "s1")?.name).toBe(b.targetFor("nyc", "s1")?.name);
  });

  test("an old suspicion no longer outweighs a snapshot that lists the member", () => {
    const b = new BridgeMembership<string>("sfc", 1000);
    b.setRouters([R1, R2]);
    b.snapshot([m("nyc-1", "nyc")], 0);
    b.suspect("nyc-1@nyc", R1, 0);
    expect(b.routes()[0]!.routers).toEqual([R2]);
    b.snapshot([m("nyc-1", "nyc")], 500);
    expect(b.routes()[0]!.routers).toEqual([R2]);
    b.snapshot([m("nyc-1", "nyc")], 1500);
    expect(b.routes()[0]!.routers).toEqual([R1, R2]);
  });

  test("clear() forgets everything and reports routes down", () => {
    const b = new BridgeMembership<string>("sfc");
    b.setRouters([R1]);
    b.snapshot([m("nyc-1", "nyc")], 0);
    expect(b.clear()).toEqual([{ site: "nyc", up: false, routers: [], siteMasters: [] }]);
    expect(b.sites()).toEqual([]);
  });
});
