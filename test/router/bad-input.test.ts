// Malformed input from one client closes that client only (logged, counted by ProtocolError
// code); two other clients keep exchanging messages throughout.
import { registerFrame } from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import { waitFor } from "../helpers/wait.js";
import { routerHarness, sleep, uuid } from "./util.js";

const h = routerHarness({ maxFrame: 64 * 1024 });

function frame(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length);
  return Buffer.concat([len, body]);
}

const withTrailing = (() => {
  const reg = registerFrame("chat", uuid(66), "x", null);
  return frame(Buffer.concat([reg.subarray(4), Buffer.from([0xde, 0xad])]));
})();

interface BadCase {
  readonly name: string;
  readonly bytes: Buffer;
  /** Close our sending side after the bytes (the truncated case). */
  readonly thenEnd?: boolean;
  readonly code: string;
}

const cases: BadCase[] = [
  {
    name: "garbage (an HTTP request)",
    bytes: Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    code: "frame-too-large",
  },
  { name: "huge length", bytes: Buffer.from("7fffffff00", "hex"), code: "frame-too-large" },
  { name: "negative length other than -5", bytes: Buffer.from("fffffff0", "hex"), code: "bad-length" },
  {
    name: "type byte out of range",
    bytes: frame(Buffer.from("09000101000000010000000000", "hex")),
    code: "bad-type",
  },
  { name: "empty body", bytes: frame(Buffer.alloc(0)), code: "truncated" },
  { name: "REGISTER with trailing bytes", bytes: withTrailing, code: "trailing-bytes" },
  {
    name: "MESSAGE whose group length runs past the frame",
    bytes: frame(Buffer.from("040100ff6869", "hex")),
    code: "truncated",
  },
  {
    name: "truncated body, then the connection ends",
    bytes: Buffer.concat([Buffer.from("00000064", "hex"), Buffer.alloc(10)]),
    thenEnd: true,
    code: "truncated",
  },
];

test.each(cases)(
  "$name: only that client is closed, others keep talking",
  async ({ bytes, thenEnd, code }) => {
    const [a, b, bad] = [await h.client(), await h.client(), await h.client()];
    a.register("chat", uuid(1));
    b.register("chat", uuid(2));
    bad.register("chat", uuid(3));
    await waitFor("3 registrations", () => h.router.registry.size === 3);

    let stop = false;
    let sent = 0;
    const traffic = (async () => {
      while (!stop) {
        a.message("chat", uuid(2), uuid(1), `a${sent}`);
        b.message("chat", uuid(1), uuid(2), `b${sent}`);
        sent++;
        await sleep(2);
      }
    })();
    try {
      await sleep(20);
      if (thenEnd) bad.socket.end(bytes);
      else bad.send(bytes);
      await waitFor("the bad client to be closed", () => bad.closed || bad.ended);
      await waitFor("the bad client's registration to be removed", () => h.router.registry.size === 2);
      await sleep(30);
    } finally {
      stop = true;
      await traffic;
    }
    await a.waitType(GossipType.Message, sent);
    await b.waitType(GossipType.Message, sent);
    expect(a.texts()).toEqual(Array.from({ length: sent }, (_, i) => `b${i}`));
    expect(b.texts()).toEqual(Array.from({ length: sent }, (_, i) => `a${i}`));
    // The others were told the bad client's member is gone.
    expect(a.ofType(GossipType.Suspect).map((d) => d.addr)).toEqual([uuid(3)]);
    expect(h.router.stats().decodeErrors).toEqual({ [code]: 1 });
    await waitFor("the bad connection to be gone", () => h.router.stats().connections === 2);
  },
);

test("frames before the bad one in the same read are still delivered", async () => {
  const [a, bad] = [await h.client(), await h.client()];
  a.register("chat", uuid(1));
  await waitFor("registration", () => h.router.registry.size === 1);
  const { messageFrame } = await import("../../runtime/protocol/frames.js");
  const good = [1, 2, 3].map((i) => messageFrame("chat", uuid(1), uuid(9), Buffer.from(`ok${i}`)));
  bad.send(Buffer.concat([...good, Buffer.from("fffffff0", "hex")]));
  await a.waitType(GossipType.Message, 3);
  expect(a.texts()).toEqual(["ok1", "ok2", "ok3"]);
  await bad.waitClosed();
});
