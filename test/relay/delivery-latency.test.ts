// The origin's send -> Stable latency counters (runtime/relay/delivery/latency.ts), the send
// buffer feeding them, their Prometheus form (histogramFrom), and the failover gaps of routes
// (runtime/relay/route-gaps.ts).
import { describe, expect, test } from "@jest/globals";
import { Histogram, Registry } from "prom-client";
import { histogramFrom } from "../../runtime/observability/metrics.js";
import { StableLatency } from "../../runtime/relay/delivery/latency.js";
import { SiteReachability } from "../../runtime/relay/delivery/reachability.js";
import { SendBuffer } from "../../runtime/relay/delivery/send-buffer.js";
import { observeInto, RouteGaps } from "../../runtime/relay/route-gaps.js";
import { FLUSH_FRAME_BOUNDS, RouterCounters } from "../../runtime/router/stats.js";

describe("StableLatency", () => {
  test("counts each observation in the first bucket whose bound it does not exceed", () => {
    const l = new StableLatency(4, [0.01, 0.1, 1]);
    const c = l.forSite("sfc")!;
    for (const ms of [0, 10, 11, 100, 999, 1000, 1001, 60_000]) c.record(ms);
    const h = l.histogramSamples("sfc")!;
    expect(h.buckets).toEqual([
      { le: "0.01", value: 2 },
      { le: "0.1", value: 4 },
      { le: "1", value: 6 },
      { le: "+Inf", value: 8 },
    ]);
    expect(h.count).toBe(8);
    expect(h.sumS).toBeCloseTo((0 + 10 + 11 + 100 + 999 + 1000 + 1001 + 60_000) / 1000, 9);
    expect(l.histogramSamples("lon")).toBeNull();
  });

  test("is bounded in sites and refuses unordered bounds", () => {
    const l = new StableLatency(2);
    expect(l.forSite("a")).not.toBeNull();
    expect(l.forSite("b")).not.toBeNull();
    expect(l.forSite("c")).toBeNull();
    expect(l.forSite("a")).toBe(l.forSite("a"));
    expect(l.sites()).toEqual(["a", "b"]);
    expect(() => new StableLatency(2, [1, 0.5])).toThrow(/increasing/);
  });

  test("the send buffer records now - createdAt of every message a Stable report frees", () => {
    const buf = new SendBuffer();
    const l = new StableLatency(4, [0.05, 0.5]);
    buf.add("sfc", 100, 1000);
    buf.add("sfc", 100, 1040);
    buf.add("sfc", 100, 1100);
    expect(buf.stable("sfc", 2, l.forSite("sfc"), 1090)).toBe(2); // 90 ms and 50 ms
    expect(buf.stable("sfc", 2, l.forSite("sfc"), 2000)).toBe(0); // nothing new: nothing counted
    expect(buf.stable("sfc", 3, l.forSite("sfc"), 1800)).toBe(1); // 700 ms
    expect(l.histogramSamples("sfc")!.buckets.map((b) => b.value)).toEqual([1, 2, 3]);
    expect(l.histogramSamples("sfc")!.sumS).toBeCloseTo(0.84, 9);
  });
});

describe("histogramFrom", () => {
  test("writes cumulative _bucket{le}, _sum and _count per label set", async () => {
    const r = new Registry();
    const l = new StableLatency(4, [0.1, 1]);
    l.forSite("sfc")!.record(50);
    l.forSite("sfc")!.record(500);
    histogramFrom(r, {
      name: "t_seconds",
      help: "test",
      read: () =>
        l.sites().map((site) => {
          const h = l.histogramSamples(site)!;
          return { labels: { site }, buckets: h.buckets, sum: h.sumS, count: h.count };
        }),
    });
    const text = await r.metrics();
    expect(text).toContain("# TYPE t_seconds histogram");
    expect(text).toContain('t_seconds_bucket{site="sfc",le="0.1"} 1');
    expect(text).toContain('t_seconds_bucket{site="sfc",le="1"} 2');
    expect(text).toContain('t_seconds_bucket{site="sfc",le="+Inf"} 2');
    expect(text).toContain('t_seconds_sum{site="sfc"} 0.55');
    expect(text).toContain('t_seconds_count{site="sfc"} 2');
  });
});

describe("RouteGaps", () => {
  test("observes down -> up of a route that had been up, per site", () => {
    const seen: [string, number][] = [];
    const g = new RouteGaps((site, s) => seen.push([site, s]));
    g.route("sfc", false, 0); // never up: no failover
    g.route("sfc", true, 500);
    g.route("sfc", false, 1000);
    g.route("sfc", false, 1100); // still down: the gap starts at the first down
    g.route("lon", true, 1200);
    g.route("sfc", true, 1750);
    g.route("sfc", true, 1800); // a change of routers while up: nothing
    expect(seen).toEqual([["sfc", 0.75]]);
  });

  test("a site-master change forgets routes down in progress", () => {
    const seen: [string, number][] = [];
    const g = new RouteGaps((site, s) => seen.push([site, s]));
    g.route("sfc", true, 0);
    g.route("sfc", false, 100);
    expect(g.pending).toBe(1);
    g.reset();
    g.route("sfc", true, 9000);
    expect(seen).toEqual([]);
  });

  test("feeds a prom-client histogram", async () => {
    const r = new Registry();
    const h = new Histogram({
      name: "gap_seconds",
      help: "t",
      labelNames: ["site"],
      buckets: [1],
      registers: [r],
    });
    const g = new RouteGaps(observeInto(h));
    g.route("sfc", true, 0);
    g.route("sfc", false, 0);
    g.route("sfc", true, 2500);
    expect(await r.metrics()).toContain('gap_seconds_sum{site="sfc"} 2.5');
  });
});

describe("router flush batches (RouterCounters.flushed)", () => {
  test("power-of-two buckets, the largest batches in the overflow bucket", () => {
    const c = new RouterCounters();
    for (const n of [1, 2, 3, 4, 5, 1024, 1025, 100_000]) c.flushed(n);
    const at = (bound: number) => c.flushFrames[FLUSH_FRAME_BOUNDS.indexOf(bound)];
    expect([at(1), at(2), at(4), at(8), at(1024)]).toEqual([1, 1, 2, 1, 1]);
    expect(c.flushFrames[FLUSH_FRAME_BOUNDS.length]).toBe(2);
    expect(c.flushFramesSum).toBe(1 + 2 + 3 + 4 + 5 + 1024 + 1025 + 100_000);
  });
});

describe("SiteReachability.isUnreachable (relay_site_unreachable)", () => {
  test("true from the unreachable verdict until reachable again", () => {
    const r = new SiteReachability(1000, 60_000);
    const lane = {
      site: "sfc",
      messages: 1,
      bytes: 10,
      nextSeq: 2,
      stable: 0,
      oldestSentAt: 0,
      oldestCreatedAt: 0,
    };
    const route = (up: boolean) => ({ site: "sfc", up, routers: [], siteMasters: [] });
    expect(r.assess(lane, route(true), 0).kind).toBe("up");
    expect(r.isUnreachable("sfc")).toBe(false);
    expect(r.assess(lane, route(false), 10).kind).toBe("unreachable");
    expect(r.isUnreachable("sfc")).toBe(true);
    expect(r.assess(lane, route(false), 20).kind).toBe("down");
    expect(r.isUnreachable("sfc")).toBe(true);
    expect(r.assess(lane, route(true), 30).kind).toBe("reachable");
    expect(r.isUnreachable("sfc")).toBe(false);
  });
});
