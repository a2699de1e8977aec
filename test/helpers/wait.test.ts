// The shared bounded poll: what it resolves with, how often it checks, what a timeout says.
import { waitFor, waitForValue } from "./wait.js";

test("waitFor resolves once a sync or an async condition holds", async () => {
  let n = 0;
  await waitFor("three checks", () => ++n === 3, { intervalMs: 1 });
  expect(n).toBe(3);
  let m = 0;
  await waitFor("two async checks", async () => ++m === 2, { intervalMs: 1 });
  expect(m).toBe(2);
});

test("waitForValue resolves with the first value that is not undefined (false and 0 count)", async () => {
  let n = 0;
  expect(await waitForValue("a value", () => (++n < 3 ? undefined : n), { intervalMs: 1 })).toBe(3);
  expect(await waitForValue("false", () => false)).toBe(false);
  expect(await waitForValue("zero", async () => 0)).toBe(0);
});

test("a timeout names the wait and its bound, then what onTimeout adds", async () => {
  await expect(waitFor("nothing", () => false, { timeoutMs: 30 })).rejects.toThrow(
    /^timed out after 30 ms waiting for nothing$/,
  );
  await expect(
    waitForValue("a screen", () => undefined, { timeoutMs: 30, onTimeout: () => "screen:\n$ _" }),
  ).rejects.toThrow(/^timed out after 30 ms waiting for a screen\nscreen:\n\$ _$/);
});

test("a condition that throws fails the wait at once", async () => {
  await expect(
    waitFor("a broken check", () => {
      throw new Error("boom");
    }),
  ).rejects.toThrow("boom");
});
