// afterPoll (runtime/after-poll.ts): a judgement queued for the check phase must not run in the same
// check phase as a stall that began after the poll, or it would judge before the loop read what
// arrived during the stall. The socket here is written by another process while this one stalls.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, test } from "@jest/globals";
import { afterPoll } from "../../runtime/after-poll.js";

/** Stalls the loop until `file` exists (the peer's answer is in our socket then), plus 20 ms. */
const stallUntil = (file: string) => {
  const limit = Date.now() + 20_000;
  while (!existsSync(file) && Date.now() < limit) {
    // the stall
  }
  const until = Date.now() + 20;
  while (Date.now() < until) {
    // and a little more
  }
};

/**
 * One round: "go" to the peer, then a stall that begins after the next poll and lasts until the
 * peer's answer is in our socket, with a judgement queued behind it. Returns whether the answer
 * had arrived before the stall began (then the round proves nothing) and what the judgement saw.
 */
async function stallRound(): Promise<{ early: boolean; seen: boolean }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const dir = mkdtempSync(path.join(tmpdir(), "after-poll-"));
  const written = path.join(dir, "written");
  // Another process connects and, 200 ms after "go" (while we stall), answers and then creates
  // `written`.
  const peerScript = [
    `const s = require("net").connect(${port}, "127.0.0.1");`,
    `s.on("data", () => setTimeout(() => s.write("pong", () => require("fs").writeFileSync(${JSON.stringify(written)}, "")), 200));`,
  ].join("\n");
  const peer = spawn(process.execPath, ["-e", peerScript], { stdio: "ignore" });
  try {
    const socket = await accepted;
    let received = false;
    socket.on("data", () => {
      received = true;
    });
    let early = false;
    const seen = await new Promise<boolean>((resolve) =>
      setImmediate(() => {
        socket.write("go");
        // Queued first, so it runs first in the next check phase: a stall after that turn's poll,
        // until the answer has arrived.
        setImmediate(() => {
          early = received;
          stallUntil(written);
        });
        afterPoll(() => resolve(received));
      }),
    );
    socket.destroy();
    return { early, seen };
  } finally {
    peer.kill();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a stall right before a queued judgement: it waits for one more poll and sees what arrived", async () => {
  // A round whose answer came before the stall (this process preempted for 200 ms between two turns
  // of its loop: a saturated machine) proves nothing either way: another round is run.
  const rounds: { early: boolean; seen: boolean }[] = [];
  while (rounds.length < 5 && !rounds.some((r) => !r.early)) rounds.push(await stallRound());
  const proof = rounds.find((r) => !r.early);
  expect(proof).toBeDefined(); // the premise: the answer came during the stall, in some round
  expect(proof!.seen).toBe(true);
}, 60_000);

test("without a stall it runs in the check phase of the turn it was queued in", async () => {
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    afterPoll(() => order.push("judged"));
    setImmediate(() => {
      order.push("next immediate");
      resolve();
    });
  });
  expect(order).toEqual(["judged", "next immediate"]);
});
