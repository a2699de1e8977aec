// The shared option parsers of runtime/cli/args.ts: accepted forms, bounds, and a clear
// commander error for everything else (never NaN, never a silently clamped value).
import { InvalidArgumentError } from "commander";
import fc from "fast-check";
import { durationArg, intArg, MAX_TIMER_MS, portArg } from "../../runtime/cli/args.js";

describe("intArg", () => {
  const parse = intArg("--n", 1, 1000);

  test.each([
    ["1", 1],
    ["1000", 1000],
    [" 42 ", 42],
    ["007", 7],
  ])("%j -> %d", (text, n) => expect(parse(text)).toBe(n));

  test.each(["0", "1001", "-1", "1.5", "1e3", "0x10", "", " ", "abc", "12abc", "99999999999999999999"])(
    "%j is refused with the option name and the bounds",
    (text) => {
      expect(() => parse(text)).toThrow(InvalidArgumentError);
      expect(() => parse(text)).toThrow("--n must be an integer between 1 and 1000.");
    },
  );

  test("any string: an integer within the bounds or an InvalidArgumentError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (text) => {
        try {
          const n = parse(text);
          return Number.isSafeInteger(n) && n >= 1 && n <= 1000;
        } catch (err) {
          return err instanceof InvalidArgumentError;
        }
      }),
    );
  });
});

describe("portArg", () => {
  test("0 (ephemeral) allowed by default, 1..65535 otherwise", () => {
    expect(portArg("--port")("0")).toBe(0);
    expect(portArg("--port")("65535")).toBe(65535);
    expect(() => portArg("--port")("65536")).toThrow("--port must be an integer between 0 and 65535.");
    expect(() => portArg("--port", { allowEphemeral: false })("0")).toThrow(
      "--port must be an integer between 1 and 65535.",
    );
  });
});

describe("durationArg", () => {
  const parse = durationArg("--timeout", 1, 600_000);

  test.each([
    ["1500", 1500],
    ["1500ms", 1500],
    ["2s", 2000],
    ["600s", 600_000],
    [" 10 ", 10],
  ])("%j -> %d ms", (text, ms) => expect(parse(text)).toBe(ms));

  test.each(["0", "0s", "601s", "1.5s", "2m", "s", "ms", "-1", "10 s", "1e3", "9999999999999999s"])(
    "%j is refused",
    (text) => {
      expect(() => parse(text)).toThrow(
        "--timeout must be a duration between 1 and 600000 ms (e.g. 1500, 1500ms or 2s).",
      );
    },
  );

  test("the largest bound is the largest timer Node keeps as it is", () => {
    expect(durationArg("--expiry", 0, MAX_TIMER_MS)(String(MAX_TIMER_MS))).toBe(MAX_TIMER_MS);
    expect(() => durationArg("--expiry", 0, MAX_TIMER_MS)(String(MAX_TIMER_MS + 1))).toThrow("--expiry");
  });
});
