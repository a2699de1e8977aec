// Unit tests of the delivery guarantee's pure parts (docs/DELIVERY.md): the receive window
// (exactly once, in order, bounded hold-back, late-joiner base), the site master's stability
// computation, the origin's send buffer, the lane section of the envelope and the report codecs.
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import { ConfigError } from "../../contract/errors.js";
import { SiteReachability } from "../../runtime/relay/delivery/reachability.js";
import { ReceiveWindows } from "../../runtime/relay/delivery/receive-window.js";
import { decodeAck, decodeStable, encodeAck, encodeStable } from "../../runtime/relay/delivery/reports.js";
import { SendBuffer } from "../../runtime/relay/delivery/send-buffer.js";
import { StabilityTracker } from "../../runtime/relay/delivery/stability.js";
import {
  decodeEnvelope,
  type Envelope,
  EnvelopeError,
  EnvelopeKind,
  encodeEnvelope,
} from "../../runtime/relay/envelope.js";

const INC = "0b9c4a52-3f5e-4d0a-9a57-1d2f3c4b5a69";
const INC2 = "5f0d2c1e-7a8b-4c3d-9e0f-112233445566";
const A = { site: "nyc", name: "nyc-1", incarnation: INC };

/** Feeds seqs (low = 1) and returns what the window delivered, in order. */
function feed(w: ReceiveWindows<number>, seqs: readonly number[], low = 1): number[] {
  const out: number[] = [];
  for (const s of seqs) out.push(...w.accept(A, s, low, s, 10, 0).deliver);
  return out;
}

describe("receive window", () => {
  test("delivers in order, holds back, drops duplicates", () => {
    const w = new ReceiveWindows<number>();
    expect(feed(w, [1, 3, 2, 2, 1, 5, 4, 3])).toEqual([1, 2, 3, 4, 5]);
    expect(w.stats()).toMatchObject({ held: 0, duplicates: 3 });
    expect(w.takeReport()).toEqual([{ ...A, seq: 5 }]);
    expect(w.takeReport()).toEqual([]);
  });

  test("any arrival order with any duplicates gives 1..n exactly once, in order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }).chain((n) =>
          fc.tuple(
            fc.constant(n),
            fc.shuffledSubarray(
              Array.from({ length: n }, (_, i) => i + 1),
              { minLength: n, maxLength: n },
            ),
            fc.array(fc.integer({ min: 1, max: n }), { maxLength: 30 }),
          ),
        ),
        ([n, order, dups]) => {
          const w = new ReceiveWindows<number>();
          const all = [...order];
          for (const d of dups) all.splice(d % (all.length + 1), 0, d);
          expect(feed(w, all)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        },
      ),
    );
  });

  test("hold-back is bounded; what was not kept comes again and fills the gap", () => {
    const w = new ReceiveWindows<number>({ maxHeldPerOrigin: 3 });
    expect(feed(w, [2, 3, 4, 5, 6])).toEqual([]);
    expect(w.stats()).toMatchObject({ held: 3, overflows: 2 });
    expect(feed(w, [1])).toEqual([1, 2, 3, 4]);
    expect(feed(w, [5, 6])).toEqual([5, 6]);
  });

  test("bytes held are bounded too", () => {
    const w = new ReceiveWindows<number>({ maxHeldBytesPerOrigin: 25 });
    for (const s of [2, 3, 4]) w.accept(A, s, 1, s, 10, 0);
    expect(w.stats()).toMatchObject({ held: 2, heldBytes: 20, overflows: 1 });
  });

  test("a member without state starts at the origin's low; low above next moves it up", () => {
    const w = new ReceiveWindows<number>();
    expect(w.accept(A, 12, 10, 12, 1, 0).deliver).toEqual([]);
    expect(w.accept(A, 10, 10, 10, 1, 0).deliver).toEqual([10]);
    expect(w.accept(A, 11, 10, 11, 1, 0).deliver).toEqual([11, 12]);
    // Behind the origin's low: 13..19 became stable without us, and we are told so.
    const jump = w.accept(A, 21, 20, 21, 1, 0);
    expect(jump.deliver).toEqual([]);
    expect(jump.missed).toEqual({ origin: A, from: 13, to: 19 });
    expect(w.accept(A, 20, 20, 20, 1, 0)).toEqual({ outcome: "delivered", deliver: [20, 21] });
    expect(w.stats().missed).toBe(7);
  });

  test("a lane mark moves an existing window and names the gap; it creates no window", () => {
    const w = new ReceiveWindows<number>();
    expect(w.advance(A, 50, 0)).toEqual({ outcome: "duplicate", deliver: [] }); // unknown: no state
    expect(w.stats().origins).toBe(0);
    feed(w, [1, 2, 3, 7]);
    const r = w.advance(A, 6, 0); // the sender keeps nothing below 6: 4 and 5 were missed
    expect(r.missed).toEqual({ origin: A, from: 4, to: 5 });
    expect(w.accept(A, 6, 6, 6, 1, 0).deliver).toEqual([6, 7]);
    expect(w.advance(A, 3, 0).missed).toBeUndefined(); // behind us: nothing
  });

  test("a first envelope never reports a gap (nothing was ours before it)", () => {
    const w = new ReceiveWindows<number>();
    expect(w.accept(A, 500, 400, 500, 1, 0).missed).toBeUndefined();
    expect(w.stats().missed).toBe(0);
  });

  test("bytes held back are bounded over all origins, and freed with their window", () => {
    const w = new ReceiveWindows<number>({ maxHeldBytesTotal: 30 });
    const b = { ...A, name: "nyc-2", incarnation: INC2 };
    for (const s of [2, 3]) w.accept(A, s, 1, s, 10, 0);
    for (const s of [2, 3]) w.accept(b, s, 1, s, 10, 0);
    expect(w.stats()).toMatchObject({ held: 3, heldBytes: 30, overflows: 1 });
    w.retain((ref) => ref.name !== "nyc-1");
    expect(w.stats()).toMatchObject({ origins: 1, held: 1, heldBytes: 10 });
    w.accept(b, 1, 1, 1, 10, 0); // fills the gap: 1..2 delivered, nothing held
    expect(w.stats()).toMatchObject({ held: 0, heldBytes: 0 });
  });

  test("a new incarnation of a sender replaces the old one's state", () => {
    const w = new ReceiveWindows<number>();
    feed(w, [1, 2, 4]);
    const b = { ...A, incarnation: INC2 };
    expect(w.accept(b, 1, 1, 1, 1, 0).deliver).toEqual([1]);
    expect(w.nextOf(INC)).toBeUndefined();
    expect(w.stats()).toMatchObject({ origins: 1, held: 0 });
  });

  test("the number of origins is bounded (longest idle forgotten)", () => {
    const w = new ReceiveWindows<number>({ maxOrigins: 2 });
    const o = (i: number) => ({ site: "sfc", name: `s${i}`, incarnation: `${INC.slice(0, -2)}${10 + i}` });
    for (let i = 0; i < 5; i++) w.accept(o(i), 1, 1, 1, 1, i);
    expect(w.stats().origins).toBe(2);
    expect(w.nextOf(o(4).incarnation)).toBe(2);
  });
});

describe("stability at a site master", () => {
  const mark = (seq: number) => [{ ...A, seq }];

  test("stable = the minimum over every member of the current view", () => {
    const s = new StabilityTracker(1000);
    s.setMembers(["m1", "m2", "m3"]);
    s.report("m1", mark(10), 0);
    s.report("m2", mark(7), 0);
    expect(s.take(0)).toEqual([]); // m3 has not reported
    s.report("m3", mark(9), 0);
    expect(s.take(0)).toEqual([{ ...A, seq: 7 }]);
    s.report("m2", mark(12), 1);
    expect(s.take(1)).toEqual([{ ...A, seq: 9 }]);
    // Nothing new, nothing sent; the same position is repeated once repeatMs passed.
    s.report("m2", mark(12), 2);
    expect(s.take(2)).toEqual([]);
    s.report("m2", mark(12), 1001);
    expect(s.take(1001)).toEqual([{ ...A, seq: 9 }]);
  });

  test("a member that leaves no longer holds stability back; reports of strangers are ignored", () => {
    const s = new StabilityTracker(1000);
    s.setMembers(["m1", "m2"]);
    s.report("m1", mark(10), 0);
    s.report("m2", mark(3), 0);
    s.report("stranger", mark(1), 0);
    expect(s.take(0)).toEqual([{ ...A, seq: 3 }]);
    s.setMembers(["m1"]);
    expect(s.take(1)).toEqual([{ ...A, seq: 10 }]);
    expect(s.stableOf(INC)).toBe(10);
  });

  test("a joiner whose first envelope is held back keeps the sender's later messages unstable", () => {
    // The argument behind the late-joiner rule (docs/DELIVERY.md): a member that joined after
    // 1..10 became stable and whose first envelope (15, low 11) must wait for 11..14 reports
    // nothing or 10, so nothing past 10 becomes stable and the sender keeps (and re-sends) 11..14.
    const s = new StabilityTracker(1000);
    s.setMembers(["m1", "m2"]);
    s.report("m1", mark(10), 0);
    s.report("m2", mark(10), 0);
    expect(s.take(0)).toEqual([{ ...A, seq: 10 }]);
    s.setMembers(["m1", "m2", "joiner"]);
    const joiner = new ReceiveWindows<number>();
    expect(joiner.accept(A, 15, 11, 15, 10, 1).outcome).toBe("held");
    s.report("m1", mark(20), 1);
    s.report("m2", mark(20), 1);
    s.report("joiner", joiner.takeReport(), 1);
    expect(s.stableOf(INC)).toBeUndefined();
    s.report("joiner", joiner.takeReport(true), 2);
    expect(s.stableOf(INC)).toBe(10);
    expect(s.take(2)).toEqual([]);
    // The re-sent 11..14 fill the gap: the joiner has 11..15, in order, and stability moves on.
    expect(feed(joiner, [11, 12, 13, 14], 11)).toEqual([11, 12, 13, 14, 15]);
    s.report("joiner", joiner.takeReport(), 3);
    expect(s.take(3)).toEqual([{ ...A, seq: 15 }]);
  });

  test("idle origins are forgotten", () => {
    const s = new StabilityTracker();
    s.setMembers(["m1"]);
    s.report("m1", mark(1), 0);
    s.forgetIdle(10);
    expect(s.origins).toBe(0);
    expect(s.stableOf(INC)).toBeUndefined();
  });
});

describe("stability from the current view only", () => {
  test("a report counts only from the view the site master has installed", () => {
    const t = new StabilityTracker();
    t.setMembers(["a", "b"], "a|2");
    t.report("a", [{ ...A, seq: 9 }], 0, "a|2");
    t.report("b", [{ ...A, seq: 7 }], 0, "x|5"); // b follows another coordinator
    expect(t.complete).toBe(false);
    expect(t.stableOf(INC)).toBeUndefined();
    t.report("b", [], 0, "a|2"); // an empty full report from our view: its old positions count
    expect(t.complete).toBe(true);
    expect(t.stableOf(INC)).toBe(7);
    t.setMembers(["a", "b"], "a|3"); // a new view: nobody has reported from it yet
    expect(t.stableOf(INC)).toBeUndefined();
  });
});

describe("send buffer", () => {
  test("numbers each site's lane from 1, keeps until stable, bounded per site", () => {
    const b = new SendBuffer({ maxMessages: 2, maxBytes: 1000 });
    expect(b.canTake(5000, ["sfc"])).toBe(true); // an empty lane takes any one message
    b.add("sfc", 100, 0);
    b.add("sfc", 100, 0);
    expect(b.add("lon", 100, 0).laneSeq).toBe(1);
    expect(b.full).toBe(true);
    expect(b.fullFor("sfc")).toBe(true);
    expect(b.fullFor("lon")).toBe(false);
    expect(b.canTake(1, ["sfc"])).toBe(false);
    expect(b.canTake(1, ["lon"])).toBe(true); // sfc's full lane does not refuse lon
    expect(b.canTake(1, ["lon", "sfc"])).toBe(false); // a message to both waits for both
    expect(b.refusingSites(1, ["lon", "sfc"])).toEqual(["sfc"]);
    expect(b.lowOf("sfc")).toBe(1);
    expect(b.stable("sfc", 1)).toBe(1);
    expect(b.lowOf("sfc")).toBe(2);
    expect(b.stable("sfc", 1)).toBe(0);
    expect(b.pending("sfc").map((o) => o.laneSeq)).toEqual([2]);
    expect(b.canTake(100, ["sfc"])).toBe(true);
    expect(b.canTake(901, ["sfc"])).toBe(false);
    expect(b.stable("sfc", 99)).toBe(1);
    expect(b.lowOf("sfc")).toBe(3); // = next seq when nothing waits
    expect(b.add("sfc", 1, 0).laneSeq).toBe(3);
    expect({ messages: b.messages, bytes: b.bytes }).toEqual({ messages: 2, bytes: 101 });
  });

  test("the total bound and the number of sites are bounded too", () => {
    const b = new SendBuffer({ maxMessages: 100, maxBytes: 1000, maxTotalBytes: 250, maxSites: 2 });
    b.add("sfc", 100, 0);
    b.add("lon", 100, 0);
    expect(b.canTake(10, ["tok"])).toBe(false); // no third lane
    expect(b.canTake(60, ["sfc"])).toBe(false); // 260 > total 250
    expect(b.canTake(50, ["sfc"])).toBe(true);
  });

  test("a dropped site gives its backlog back and keeps its numbering for when it returns", () => {
    const b = new SendBuffer({ maxMessages: 2, maxBytes: 1000 });
    b.add("sfc", 100, 0);
    b.add("sfc", 100, 0);
    b.add("lon", 100, 0);
    expect(b.stable("sfc", 1)).toBe(1);
    expect(b.dropSite("sfc")).toEqual({ site: "sfc", messages: 1, bytes: 100, from: 2, to: 2 });
    expect({ messages: b.messages, bytes: b.bytes, sites: b.sites() }).toEqual({
      messages: 1,
      bytes: 100,
      sites: ["lon"],
    });
    expect(b.full).toBe(false);
    // sfc returns: its lane goes on at 3 and its low is 3, so a receiver that stopped at 1 is
    // told that 2 is missing instead of taking 3 for a duplicate of its old 1.
    expect(b.add("sfc", 1, 0).laneSeq).toBe(3);
    expect(b.lowOf("sfc")).toBe(3);
    expect(b.dropSite("tok")).toEqual({ site: "tok", messages: 0, bytes: 0, from: 0, to: 0 });
  });

  test("refuses non-positive limits", () => {
    expect(() => new SendBuffer({ maxBytes: 0 })).toThrow(ConfigError);
    expect(() => new SendBuffer({ maxSites: 0 })).toThrow(ConfigError);
  });
});

describe("lane section and delivery reports on the wire", () => {
  const data: Envelope = {
    kind: EnvelopeKind.Data,
    hops: 4,
    origin: A,
    seq: 77,
    dest: { kind: "member", site: "sfc", name: "sfc-2" },
    payload: Buffer.from("hi"),
    lane: { site: "sfc", seq: 2 ** 40 + 5, low: 3 },
  };

  test("round trip, and an envelope without a lane is unchanged", () => {
    const back = decodeEnvelope(encodeEnvelope(data));
    expect(back.lane).toEqual(data.lane);
    expect(back.seq).toBe(77);
    const { lane: _lane, ...plain } = data;
    const bytes = encodeEnvelope(plain);
    expect(bytes[4]).toBe(0);
    expect(decodeEnvelope(bytes).lane).toBeUndefined();
  });

  test("truncated lanes, unknown flags and bad lane numbers are refused with a code", () => {
    const bytes = encodeEnvelope(data);
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => decodeEnvelope(bytes.subarray(0, cut))).toThrow(EnvelopeError);
    }
    const flags = Buffer.from(bytes);
    flags[4] = 0x03;
    expect(() => decodeEnvelope(flags)).toThrow(/bad-flags/);
    expect(() => encodeEnvelope({ ...data, lane: { site: "sfc", seq: -1, low: 0 } })).toThrow(/bad-seq/);
    expect(() => encodeEnvelope({ ...data, lane: { site: "", seq: 1, low: 1 } })).toThrow(/bad-string/);
  });

  test("ack and stable payloads round trip; anything else is bad-control", () => {
    const marks = [{ ...A, seq: 5 }];
    expect(decodeAck(encodeAck("nyc-1/x|3", marks))).toEqual({ view: "nyc-1/x|3", marks });
    expect(decodeStable(encodeStable({ incarnation: INC, seq: 9 }))).toEqual({ incarnation: INC, seq: 9 });
    for (const bad of ["", "{}", "[1]", '{"marks":[[1,2,3,4]]}', '{"marks":[["a","b","NOTUUID",1]]}']) {
      expect(() => decodeAck(Buffer.from(bad))).toThrow(/bad-control/);
    }
    for (const bad of ["null", '{"inc":"x","seq":1}', `{"inc":"${INC}","seq":-1}`]) {
      expect(() => decodeStable(Buffer.from(bad))).toThrow(/bad-control/);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const decode of [decodeAck, decodeStable]) {
          try {
            decode(b);
          } catch (err) {
            expect(err).toBeInstanceOf(EnvelopeError);
          }
        }
      }),
    );
  });
});

describe("site reachability of a lane", () => {
  const lane = (messages: number, createdAt: number | null) => ({
    site: "lon",
    messages,
    bytes: messages * 10,
    nextSeq: messages + 1,
    stable: 0,
    oldestSentAt: createdAt,
    oldestCreatedAt: createdAt,
  });
  const route = (up: boolean) => ({ site: "lon", up, routers: [], siteMasters: [] });

  test("unreachable once, gone after goneMs, reachable again when the route is back", () => {
    const r = new SiteReachability(3000, 10_000);
    expect(r.assess(lane(5, 0), route(true), 100).kind).toBe("up");
    expect(r.assess(lane(5, 0), route(false), 1000).kind).toBe("unreachable");
    expect(r.assess(lane(5, 0), route(false), 5000).kind).toBe("down");
    expect(r.assess(lane(5, 0), route(false), 11_000)).toEqual({ kind: "gone", downMs: 10_000 });
    r.forget("lon");
    expect(r.anyUnreachable).toBe(false);
    expect(r.assess(lane(5, 0), route(false), 12_000).kind).toBe("unreachable");
    expect(r.assess(lane(5, 0), route(true), 13_000).kind).toBe("reachable");
  });

  test("a site never seen on the bridge is down once its oldest message is neverSeenMs old", () => {
    const r = new SiteReachability(3000, 10_000);
    expect(r.assess(lane(1, 0), undefined, 2000).kind).toBe("up");
    expect(r.assess(lane(1, 0), undefined, 3001).kind).toBe("unreachable");
    expect(r.assess(lane(0, null), undefined, 4000).kind).toBe("reachable"); // nothing waits any more
  });
});
