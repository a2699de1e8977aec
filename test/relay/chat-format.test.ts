// What `relay chat` and `relay probe` print, from fixed values.
import {
  formatChatLine,
  formatProbe,
  formatRoutes,
  formatSiteMasters,
  formatSites,
  formatTopology,
  printable,
} from "../../runtime/cli/chat-format.js";
import { parseSites } from "../../runtime/cli/local-topology.js";
import type { Topology } from "../../runtime/relay/types.js";
import { SAMPLE_PROBE } from "./probe-fixture.js";

const topo: Topology = {
  site: "sfc",
  self: "Temp",
  sites: [
    {
      site: "sfc",
      viewId: "sfc-1|4",
      members: [
        { name: "sfc-1", host: "10.1.0.5", port: 7800 },
        { name: "Temp", host: "10.1.0.9", port: 41234 },
      ],
      siteMasters: ["sfc-1"],
    },
    {
      site: "nyc",
      viewId: "nyc-1|5",
      members: [{ name: "nyc-1", host: "10.0.0.4", port: 7800 }],
      siteMasters: ["nyc-1"],
    },
  ],
  routes: [
    { site: "lon", up: false, routers: [], siteMasters: [] },
    { site: "nyc", up: true, routers: ["r1[12001]", "r2[12001]"], siteMasters: ["nyc-1"] },
  ],
  routers: [{ endpoint: "r1[12001]", state: "registered" }],
};

test("chat lines: local senders by name, remote ones as name:site", () => {
  expect(formatChatLine("hello", { name: "Temp", site: "sfc" }, "sfc")).toBe("<< hello from Temp");
  expect(formatChatLine("response", { name: "nyc-2", site: "nyc" }, "sfc")).toBe(
    "<< response from nyc-2:nyc",
  );
});

test("remote text cannot drive the terminal", () => {
  expect(printable("a\u001b[2Jb\u0007")).toBe("a?[2Jb?");
  expect(printable("x".repeat(10), 4)).toBe("xxxx...");
});

test("topo, sites, sm, routes", () => {
  expect(formatTopology(topo)).toBe(
    [
      "sfc",
      "  sfc-1 10.1.0.5:7800 // site master",
      "  Temp 10.1.0.9:41234 (me)",
      "nyc",
      "  nyc-1 10.0.0.4:7800 // site master",
    ].join("\n"),
  );
  expect(formatSites(topo)).toBe("sites: sfc, nyc");
  expect(formatSiteMasters(topo)).toBe("sfc: sfc-1\nnyc: nyc-1");
  expect(formatRoutes(topo)).toBe(
    [
      "lon: down",
      "nyc: up via r1[12001], r2[12001]; site masters: nyc-1",
      "router r1[12001]: registered",
    ].join("\n"),
  );
});

const probe = SAMPLE_PROBE;

test("probe block", () => {
  expect(formatProbe(1, 200, probe)).toBe(
    "#1 (200 bytes):\nlocal_addr=nyc-1 [uuid]\nphysical_addr=10.0.0.4:7800\nview=[nyc-1|5] (1) [nyc-1]\ncluster=relay\nsite=nyc (site master)\nversion=cross-cloud-relay 0.1.0\n",
  );
});

test("probe block of a member hosting replicated maps: one map= line each", () => {
  const text = formatProbe(2, 300, {
    ...probe,
    maps: ["catalog: 3 entries, 0 tombstones, ready; backup nyc online, 0 pending; 0 conflicts"],
  });
  expect(text.split("\n").slice(-3)).toEqual([
    "version=cross-cloud-relay 0.1.0",
    "map=catalog: 3 entries, 0 tombstones, ready; backup nyc online, 0 pending; 0 conflicts",
    "",
  ]);
});

test("relay local --sites", () => {
  expect(parseSites("nyc=5,sfc=3")).toEqual([
    { site: "nyc", members: 5 },
    { site: "sfc", members: 3 },
  ]);
  expect(() => parseSites("nyc")).toThrow('--sites: "nyc" is not site=count');
  expect(() => parseSites("nyc=1,nyc=2")).toThrow("nyc is listed twice");
  expect(() => parseSites("")).toThrow("no site given");
});
