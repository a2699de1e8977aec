// The hybrid logical clock and the version order, with an injected clock: no timers.
import { describe, expect, test } from "@jest/globals";
import fc from "fast-check";
import { KvError } from "../../runtime/kv/errors.js";
import { compareHlc, type Hlc, HybridClock, MAX_LOGICAL } from "../../runtime/kv/hlc.js";
import {
  compareUtf8,
  compareVersions,
  parseVersionKey,
  utf8Length,
  type Version,
  versionKey,
} from "../../runtime/kv/version.js";

function clockAt(t: { now: number }, maxDriftMs?: number): HybridClock {
  return new HybridClock({ now: () => t.now, ...(maxDriftMs === undefined ? {} : { maxDriftMs }) });
}

function kvCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof KvError) return err.code;
    throw err;
  }
  return undefined;
}

describe("HybridClock", () => {
  test("tick follows the physical clock and counts within one millisecond", () => {
    const t = { now: 1000 };
    const c = clockAt(t);
    expect(c.tick()).toEqual({ wall: 1000, logical: 0 });
    expect(c.tick()).toEqual({ wall: 1000, logical: 1 });
    t.now = 1005;
    expect(c.tick()).toEqual({ wall: 1005, logical: 0 });
  });

  test("a physical clock that goes back does not move the stamps back", () => {
    const t = { now: 5000 };
    const c = clockAt(t);
    const a = c.tick();
    t.now = 4000;
    const b = c.tick();
    expect(compareHlc(b, a)).toBe(1);
    expect(b).toEqual({ wall: 5000, logical: 1 });
  });

  test("logical overflow advances the wall part by 1 ms", () => {
    const c = clockAt({ now: 7 });
    let last: Hlc = c.tick();
    for (let i = 0; i < MAX_LOGICAL; i++) last = c.tick();
    expect(last).toEqual({ wall: 7, logical: MAX_LOGICAL });
    expect(c.tick()).toEqual({ wall: 8, logical: 0 });
    expect(c.tick()).toEqual({ wall: 8, logical: 1 });
  });

  test("after observing a remote stamp, the next tick is above it", () => {
    const t = { now: 1000 };
    const c = clockAt(t);
    c.tick();
    c.observe({ wall: 1500, logical: 9 });
    expect(c.tick()).toEqual({ wall: 1500, logical: 10 });
    c.observe({ wall: 900, logical: 0 }); // older: no effect
    expect(c.tick()).toEqual({ wall: 1500, logical: 11 });
  });

  test("a remote stamp beyond maxDriftMs is refused and leaves the clock alone", () => {
    const t = { now: 10_000 };
    const c = clockAt(t, 1000);
    c.observe({ wall: 11_000, logical: 0 }); // exactly at the limit: accepted
    expect(kvCode(() => c.observe({ wall: 12_001, logical: 0 }))).toBe("CLOCK_DRIFT");
    expect(c.tick()).toEqual({ wall: 11_000, logical: 1 });
    expect(() => c.observe({ wall: 20_000, logical: 0 })).toThrow(/ahead of the local clock/);
  });

  test("a malformed remote stamp is BAD_FRAME", () => {
    const c = clockAt({ now: 1 });
    for (const h of [
      { wall: -1, logical: 0 },
      { wall: 1.5, logical: 0 },
      { wall: 0, logical: MAX_LOGICAL + 1 },
      { wall: Number.NaN, logical: 0 },
    ])
      expect(kvCode(() => c.observe(h))).toBe("BAD_FRAME");
  });

  test("property: stamps strictly increase whatever the physical clock and remote stamps do", () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant("tick" as const), now: fc.integer({ min: 0, max: 2000 }) }),
      fc.record({
        kind: fc.constant("observe" as const),
        now: fc.integer({ min: 0, max: 2000 }),
        wall: fc.integer({ min: 0, max: 2000 }),
        logical: fc.integer({ min: 0, max: MAX_LOGICAL }),
      }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const t = { now: 0 };
        const c = new HybridClock({ now: () => t.now, maxDriftMs: 10_000 });
        let floor: Hlc = { wall: 0, logical: 0 };
        let prev: Hlc | null = null;
        for (const s of steps) {
          t.now = s.now;
          if (s.kind === "observe") {
            c.observe(s);
            if (compareHlc(s, floor) > 0) floor = s;
          } else {
            const h = c.tick();
            if (prev) expect(compareHlc(h, prev)).toBe(1);
            expect(compareHlc(h, floor)).toBe(1);
            expect(h.logical).toBeLessThanOrEqual(MAX_LOGICAL);
            prev = h;
            floor = h;
          }
        }
      }),
    );
  });
});

const nameArb = fc.oneof(
  fc.constantFrom("nyc", "sfc", "a", "a/b", "x@y", "é", "\u{1d11e}", "\uffff", "\ue000"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }),
);
const versionArb: fc.Arbitrary<Version> = fc.record({
  hlc: fc.record({
    wall: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.maxSafeNat()),
    logical: fc.integer({ min: 0, max: MAX_LOGICAL }),
  }),
  site: nameArb,
  member: nameArb,
});

describe("versions", () => {
  test("compareUtf8 is the byte order of the UTF-8 encodings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        expect(Math.sign(compareUtf8(a, b))).toBe(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(utf8Length(a)).toBe(Buffer.byteLength(a));
      }),
    );
    // U+FFFF sorts below U+1D11E in UTF-8, though not in UTF-16 code units.
    expect(compareUtf8("\uffff", "\u{1d11e}")).toBe(-1);
    expect("\uffff" < "\u{1d11e}").toBe(false);
  });

  test("compareVersions is a total order: hlc, then site, then member", () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        expect(compareVersions(a, a)).toBe(0);
        expect(Math.sign(compareVersions(a, b))).toBe(-Math.sign(compareVersions(b, a)));
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0)
          expect(compareVersions(a, c)).toBeLessThanOrEqual(0);
        if (compareVersions(a, b) === 0) expect(versionKey(a)).toBe(versionKey(b));
      }),
    );
    const v = (wall: number, logical: number, site: string, member: string): Version => ({
      hlc: { wall, logical },
      site,
      member,
    });
    expect(compareVersions(v(2, 0, "a", "a"), v(1, 9, "z", "z"))).toBe(1);
    expect(compareVersions(v(1, 1, "a", "a"), v(1, 0, "z", "z"))).toBe(1);
    expect(compareVersions(v(1, 0, "sfc", "a"), v(1, 0, "nyc", "z"))).toBe(1);
    expect(compareVersions(v(1, 0, "nyc", "nyc-2"), v(1, 0, "nyc", "nyc-1"))).toBe(1);
  });

  test("versionKey round-trips through parseVersionKey", () => {
    fc.assert(
      fc.property(versionArb, (v) => {
        const k = versionKey(v);
        expect(parseVersionKey(k)).toEqual(v);
      }),
    );
    expect(versionKey({ hlc: { wall: 1764662400000, logical: 3 }, site: "nyc", member: "nyc-1" })).toBe(
      "1764662400000.3@nyc/nyc-1",
    );
  });

  test("parseVersionKey refuses junk with BAD_FRAME only", () => {
    for (const s of [
      "",
      "1.0@nyc",
      "01.0@nyc/a",
      "1.00@nyc/a",
      "1.65536@nyc/a",
      "99999999999999999.0@nyc/a",
      "1.0@nyc/a/b",
      "1.0@/a",
      "1.0@nyc/%zz",
      "1.0@nyc/%2",
      "1.0@ny%63/a", // not canonical (c need not be escaped)
      "1.0@nyc/%ED%A0%80", // an encoded lone surrogate
      `1.0@${"a".repeat(256)}/b`,
    ])
      expect(kvCode(() => parseVersionKey(s))).toBe("BAD_FRAME");
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        let v: Version | undefined;
        try {
          v = parseVersionKey(s);
        } catch (err) {
          expect(err).toBeInstanceOf(KvError);
          expect((err as KvError).code).toBe("BAD_FRAME");
        }
        if (v) expect(versionKey(v)).toBe(s);
      }),
    );
  });
});
