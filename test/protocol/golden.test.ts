// Golden tests: every frame recorded from real JGroups 5.5.6 routers and clients splits out of
// its stream, decodes, and re-encodes to the identical bytes.
import {
  addressKey,
  decodeBody,
  decodeRouteHeader,
  encodeBody,
  encodeFrame,
  type FrameSink,
  FrameSplitter,
  type GossipData,
  GossipType,
  GRACEFUL_CLOSE_FRAME,
  getMbrsFrame,
  getMbrsRspFrame,
  heartbeatFrame,
  messageFrame,
  registerFrame,
  suspectFrame,
  unregisterFrame,
} from "../../runtime/protocol/index.js";
import { type CaptureFrame, frameAt, GRACEFUL_CLOSE_HEX, loadCaptures } from "./captures.js";

const captures = loadCaptures();
const allFrames: CaptureFrame[] = [...captures.values()].flat();
const dataFrames = allFrames.filter((f) => f.hex !== GRACEFUL_CLOSE_HEX);

/** A sink that records what it is given (copies, since frames are valid only during the call). */
function recorder(): FrameSink & { out: string[] } {
  const out: string[] = [];
  return {
    out,
    frame: (f) => out.push(f.toString("hex")),
    gracefulClose: () => out.push(GRACEFUL_CLOSE_HEX),
  };
}

function decode(f: CaptureFrame): GossipData {
  return decodeBody(f.bytes.subarray(4));
}

test("captures cover every GossipType and GRACEFUL_CLOSE", () => {
  expect(captures.size).toBe(5);
  const types = new Set(dataFrames.map((f) => f.bytes[4]));
  expect([...types].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  expect(allFrames.some((f) => f.hex === GRACEFUL_CLOSE_HEX)).toBe(true);
});

describe.each([...captures.keys()])("%s", (file) => {
  const frames = captures.get(file)!;

  test.each(frames.map((f) => [`#${String(f.index).padStart(3, "0")}`, f] as const))(
    "%s splits, decodes and re-encodes identically",
    (_name, f) => {
      const rec = recorder();
      const splitter = new FrameSplitter();
      splitter.push(f.bytes, rec);
      expect(rec.out).toEqual([f.hex]);
      expect(splitter.buffered).toBe(0);
      if (f.hex === GRACEFUL_CLOSE_HEX) return;

      const body = f.bytes.subarray(4);
      expect(f.bytes.readInt32BE(0)).toBe(body.length);
      const d = decodeBody(body);
      expect(encodeFrame(d).toString("hex")).toBe(f.hex);
      expect(encodeBody(d).toString("hex")).toBe(f.hex.slice(8));
      // Decoding again gives an equal value (no hidden state, no aliasing of the input).
      expect(decodeBody(Buffer.from(body))).toEqual(d);

      const h = decodeRouteHeader(body);
      expect(h).toEqual({ type: d.type, group: d.group, addr: d.addr });
    },
  );

  const stream = Buffer.concat(frames.map((f) => f.bytes));
  const expected = frames.map((f) => f.hex);

  test("the whole stream in one chunk yields every frame", () => {
    const rec = recorder();
    new FrameSplitter().push(stream, rec);
    expect(rec.out).toEqual(expected);
  });

  test("the whole stream one byte at a time yields every frame", () => {
    const rec = recorder();
    const s = new FrameSplitter();
    for (let i = 0; i < stream.length; i++) s.push(stream.subarray(i, i + 1), rec);
    expect(rec.out).toEqual(expected);
    expect(s.buffered).toBe(0);
  });

  test("the stream cut in two at every byte boundary yields every frame", () => {
    const want = expected.join(",");
    const failures: number[] = [];
    for (let cut = 0; cut <= stream.length; cut++) {
      const rec = recorder();
      const s = new FrameSplitter();
      s.push(stream.subarray(0, cut), rec);
      s.push(stream.subarray(cut), rec);
      if (rec.out.join(",") !== want || s.buffered !== 0) failures.push(cut);
    }
    expect(failures).toEqual([]);
  });

  test("frames wholly inside a chunk are passed as subarrays of it (zero copy)", () => {
    const seen: Buffer[] = [];
    new FrameSplitter().push(stream, { frame: (f) => seen.push(f), gracefulClose: () => {} });
    expect(seen.length).toBeGreaterThan(0);
    for (const f of seen) expect(f.buffer).toBe(stream.buffer);
  });
});

describe("spot checks of decoded values", () => {
  test("REGISTER of h1 (heartbeat #000)", () => {
    const d = decode(frameAt(captures, "heartbeat.jsonl", 0));
    expect(d).toEqual({
      type: GossipType.Register,
      group: "chat",
      addr: { kind: "uuid", uuid: "189a9dcf-b9ad-4039-99bc-aefa9c65641e" },
      sender: null,
      logicalName: "h1",
      pingData: [],
      physicalAddr: { kind: "ip", host: "127.0.0.1", port: 37661 },
      payload: new Uint8Array(0),
    });
  });

  test("HEARTBEAT is the 16 documented bytes both ways", () => {
    const hb = captures.get("heartbeat.jsonl")!.filter((f) => f.bytes[4] === GossipType.Heartbeat);
    expect(new Set(hb.map((f) => f.dir))).toEqual(new Set(["client->router", "router->client"]));
    for (const f of hb) expect(f.hex).toBe("0000000c050001010000000100000000");
    expect(heartbeatFrame().toString("hex")).toBe("0000000c050001010000000100000000");
  });

  test("SiteUUID _nyc2 of site nyc (relay2-bridge #000)", () => {
    const d = decode(frameAt(captures, "relay2-bridge.jsonl", 0));
    expect(d.type).toBe(GossipType.Register);
    expect(d.group).toBe("global");
    expect(d.addr).toEqual({
      kind: "site-uuid",
      uuid: "b7a24ceb-044b-40e9-9312-8f51696ad4be",
      flags: 0,
      extensions: [],
      site: "nyc",
      name: "_nyc2",
    });
    expect(d.logicalName).toBe("_nyc2");
    expect(addressKey(d.addr!)).toBe("s:b7a24ceb-044b-40e9-9312-8f51696ad4be:nyc");
  });

  test("the non-ASCII logical name bøb (tunnel-chat #003)", () => {
    const f = frameAt(captures, "tunnel-chat.jsonl", 3);
    const d = decode(f);
    expect(d.logicalName).toBe("bøb");
    expect(f.hex).toContain("01000462c3b862");
  });

  test("SUSPECT of m3 after kill -9 (suspect-kill9)", () => {
    const frames = captures.get("suspect-kill9.jsonl")!;
    const m3Register = frames.find((f) => f.stream === 2 && f.bytes[4] === GossipType.Register)!;
    const m3 = decode(m3Register);
    expect(m3.logicalName).toBe("m3");
    const suspects = frames.filter((f) => f.bytes[4] === GossipType.Suspect);
    expect(suspects.map((f) => f.index)).toEqual([55, 56]);
    for (const f of suspects) {
      expect(f.dir).toBe("router->client");
      const d = decode(f);
      expect(d.group).toBe("chat");
      expect(addressKey(d.addr!)).toBe(addressKey(m3.addr!));
      expect(suspectFrame("chat", m3.addr!).toString("hex")).toBe(f.hex);
    }
    // The router wrote GRACEFUL_CLOSE to the dead connection just before.
    expect(frameAt(captures, "suspect-kill9.jsonl", 54)).toMatchObject({
      stream: 2,
      hex: GRACEFUL_CLOSE_HEX,
    });
  });

  test("GET_MBRS_RSP for <<all-groups>>: groups (get-mbrs #001, #002)", () => {
    const rsp = decode(frameAt(captures, "get-mbrs.jsonl", 1));
    expect(rsp.type).toBe(GossipType.GetMbrsRsp);
    expect(rsp.group).toBe("<<all-groups>>:chat");
    expect(rsp.addr).toBeNull();
    expect(rsp.pingData).toEqual([
      {
        member: { kind: "uuid", uuid: "51aaaa7b-f013-4695-8ea7-e01f106df52e" },
        flags: 1,
        logicalName: "alice",
        physicalAddr: { kind: "ip", host: "127.0.0.1", port: 39001 },
        mbrs: null,
      },
    ]);
    const last = decode(frameAt(captures, "get-mbrs.jsonl", 2));
    expect(last.type).toBe(GossipType.GetMbrsRspLast);
    expect(last.group).toBe("<<all-groups>>:global");
    expect(
      last.pingData.map((p) => [p.logicalName, p.member?.kind, (p.member as { site: string }).site]),
    ).toEqual([
      ["_nyc2", "site-uuid", "nyc"],
      ["_sfc1", "site-uuid", "sfc"],
    ]);
    expect(getMbrsRspFrame(rsp.group, rsp.pingData, false).toString("hex")).toBe(
      frameAt(captures, "get-mbrs.jsonl", 1).hex,
    );
    expect(getMbrsRspFrame(last.group, last.pingData, true).toString("hex")).toBe(
      frameAt(captures, "get-mbrs.jsonl", 2).hex,
    );
  });

  test("GET_MBRS with a null group and with a name (get-mbrs #000, #004)", () => {
    expect(getMbrsFrame(null).toString("hex")).toBe(frameAt(captures, "get-mbrs.jsonl", 0).hex);
    expect(getMbrsFrame("global").toString("hex")).toBe(frameAt(captures, "get-mbrs.jsonl", 4).hex);
  });

  test("GRACEFUL_CLOSE (get-mbrs #003) reaches sink.gracefulClose, not sink.frame", () => {
    const f = frameAt(captures, "get-mbrs.jsonl", 3);
    expect(f.bytes).toEqual(GRACEFUL_CLOSE_FRAME);
    let closes = 0;
    const frames: Buffer[] = [];
    new FrameSplitter().push(f.bytes, { frame: (x) => frames.push(x), gracefulClose: () => closes++ });
    expect(closes).toBe(1);
    expect(frames).toEqual([]);
  });

  test("builders reproduce REGISTER, UNREGISTER and MESSAGE frames byte for byte", () => {
    let registers = 0;
    let unregisters = 0;
    let messages = 0;
    for (const f of dataFrames) {
      const d = decode(f);
      if (d.type === GossipType.Register) {
        expect(registerFrame(d.group!, d.addr!, d.logicalName, d.physicalAddr).toString("hex")).toBe(f.hex);
        registers++;
      } else if (d.type === GossipType.Unregister) {
        expect(unregisterFrame(d.group!, d.addr!).toString("hex")).toBe(f.hex);
        unregisters++;
      } else if (d.type === GossipType.Message) {
        expect(messageFrame(d.group!, d.addr, d.sender, d.payload).toString("hex")).toBe(f.hex);
        messages++;
      }
    }
    expect(registers).toBeGreaterThan(5);
    expect(unregisters).toBeGreaterThan(1);
    expect(messages).toBeGreaterThan(100);
  });

  test("a MESSAGE route header gives the destination without touching the payload", () => {
    const f = dataFrames.find((x) => x.bytes[4] === GossipType.Message && x.bytes[x.bytes.length - 1] !== 0)!;
    const body = Buffer.from(f.bytes.subarray(4));
    const before = decodeRouteHeader(body);
    // Corrupting the tail of the body does not change (or break) the route header.
    body.fill(0xff, body.length - 8);
    expect(decodeRouteHeader(body)).toEqual(before);
  });
});
