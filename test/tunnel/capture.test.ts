// Our client on the wire, against what a JGroups 5.5.6 TUNNEL member sent in the golden capture
// heartbeat.jsonl (member h2, stream 1): same REGISTER bytes, HEARTBEAT right after it, only
// HEARTBEATs while idle, UNREGISTER + GRACEFUL_CLOSE on leave. The router side replays the
// capture's router->client frames (HEARTBEAT answers and h1's multicast "hb test").
import net from "node:net";
import { afterEach, expect, test } from "@jest/globals";
import { decodeBody } from "../../runtime/protocol/codec.js";
import { FrameSplitter } from "../../runtime/protocol/splitter.js";
import { type Address, GossipType } from "../../runtime/protocol/types.js";
import type { TunnelClient, TunnelMessage } from "../../runtime/tunnel/index.js";
import { waitFor } from "../helpers/wait.js";
import { frameAt, GRACEFUL_CLOSE_HEX, loadCaptures } from "../protocol/captures.js";
import { testClient } from "./util.js";

const clients: TunnelClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

test("REGISTER / HEARTBEAT / UNREGISTER / GRACEFUL_CLOSE byte-identical to JGroups TUNNEL (heartbeat.jsonl, h2)", async () => {
  const caps = loadCaptures();
  const frames = caps.get("heartbeat.jsonl")!;
  const register = frameAt(caps, "heartbeat.jsonl", 9);
  const heartbeatHex = frameAt(caps, "heartbeat.jsonl", 12).hex;
  const h1Multicast = frameAt(caps, "heartbeat.jsonl", 36);
  const ours = frames.filter((f) => f.stream === 1 && f.dir === "client->router");
  const unregisterHex = ours[ours.length - 2]!.hex;
  expect(ours[ours.length - 1]!.hex).toBe(GRACEFUL_CLOSE_HEX);
  const reg = decodeBody(Buffer.from(register.hex, "hex").subarray(4));

  // A router stand-in that records raw bytes and answers HEARTBEATs with the captured answer.
  const received: string[] = [];
  let conn: net.Socket | null = null;
  const server = net.createServer((s) => {
    conn = s;
    const splitter = new FrameSplitter();
    s.on("data", (chunk: Buffer) =>
      splitter.push(chunk, {
        frame: (f) => {
          received.push(f.toString("hex"));
          if (f.toString("hex") === heartbeatHex) s.write(Buffer.from(heartbeatHex, "hex"));
        },
        gracefulClose: () => {
          received.push(GRACEFUL_CLOSE_HEX);
          s.end();
        },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const c = testClient([port], clients, {
      group: reg.group!,
      localAddr: reg.addr as Address,
      logicalName: reg.logicalName,
      physicalAddr: reg.physicalAddr,
      heartbeatIntervalMs: 30,
    });
    const got: TunnelMessage[] = [];
    c.on("message", (m) => got.push(m));
    c.start();
    await c.waitForRouters(1);
    conn!.write(Buffer.from(h1Multicast.hex, "hex"));
    await waitFor("h1's multicast", () => got.length === 1);
    const msg = decodeBody(Buffer.from(h1Multicast.hex, "hex").subarray(4));
    expect(got[0]!.dest).toBeNull();
    expect(got[0]!.sender).toEqual(msg.sender);
    expect(Buffer.from(got[0]!.payload).equals(Buffer.from(msg.payload))).toBe(true);
    await waitFor("a few heartbeats", () => received.length >= 4);
    await c.close();
    await waitFor("GRACEFUL_CLOSE", () => received.at(-1) === GRACEFUL_CLOSE_HEX);

    expect(received[0]).toBe(register.hex);
    expect(received[1]).toBe(heartbeatHex);
    expect(received.slice(-2)).toEqual([unregisterHex, GRACEFUL_CLOSE_HEX]);
    expect(received.slice(1, -2).every((h) => h === heartbeatHex)).toBe(true);
    expect(decodeBody(Buffer.from(unregisterHex, "hex").subarray(4)).type).toBe(GossipType.Unregister);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
