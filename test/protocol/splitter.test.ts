// FrameSplitter edges: bad lengths, limits, GRACEFUL_CLOSE anywhere, frames across many chunks.
import { ConfigError } from "../../contract/errors.js";
import { type FrameSink, FrameSplitter, ProtocolError } from "../../runtime/protocol/index.js";

function prefix(len: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(len, 0);
  return b;
}

function frameOf(body: Buffer): Buffer {
  return Buffer.concat([prefix(body.length), body]);
}

function recorder(): FrameSink & { out: string[] } {
  const out: string[] = [];
  return { out, frame: (f) => out.push(f.toString("hex")), gracefulClose: () => out.push("close") };
}

function codeOf(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return "no error";
}

test("negative lengths other than -5 are bad-length, before anything reaches the sink", () => {
  for (const len of [-1, -4, -6, -0x80000000]) {
    const rec = recorder();
    expect(codeOf(() => new FrameSplitter().push(Buffer.concat([prefix(len), Buffer.alloc(8)]), rec))).toBe(
      "bad-length",
    );
    expect(rec.out).toEqual([]);
  }
});

test("a length above maxFrame is frame-too-large, also when its prefix arrives byte by byte", () => {
  const s = new FrameSplitter(100);
  const rec = recorder();
  const p = prefix(101);
  s.push(p.subarray(0, 1), rec);
  s.push(p.subarray(1, 3), rec);
  expect(s.buffered).toBe(3);
  expect(codeOf(() => s.push(p.subarray(3), rec))).toBe("frame-too-large");
  expect(s.buffered).toBe(0);
  expect(rec.out).toEqual([]);
  // Exactly maxFrame is fine.
  const ok = new FrameSplitter(100);
  ok.push(frameOf(Buffer.alloc(100, 7)), rec);
  expect(rec.out).toHaveLength(1);
  expect(codeOf(() => new FrameSplitter().push(prefix(10 * 1024 * 1024 + 1), rec))).toBe("frame-too-large");
});

test("the maxFrame and minFrame options are validated (ConfigError BAD_OPTION)", () => {
  for (const bad of [-1, 1.5, 2 ** 31]) {
    expect(() => new FrameSplitter(bad)).toThrow(ConfigError);
    expect(() => new FrameSplitter({ maxFrame: bad })).toThrow(
      expect.objectContaining({ code: "BAD_OPTION" }),
    );
  }
  expect(() => new FrameSplitter({ maxFrame: 10, minFrame: 11 })).toThrow(ConfigError);
});

test("GRACEFUL_CLOSE between frames, at the start and split across chunks", () => {
  const a = frameOf(Buffer.from("aa", "hex"));
  const b = frameOf(Buffer.from("bbbb", "hex"));
  const stream = Buffer.concat([prefix(-5), a, prefix(-5), b, prefix(-5)]);
  const expected = ["close", a.toString("hex"), "close", b.toString("hex"), "close"];
  for (let cut1 = 0; cut1 <= stream.length; cut1++) {
    for (let cut2 = cut1; cut2 <= stream.length; cut2++) {
      const rec = recorder();
      const s = new FrameSplitter();
      s.push(stream.subarray(0, cut1), rec);
      s.push(stream.subarray(cut1, cut2), rec);
      s.push(stream.subarray(cut2), rec);
      expect(rec.out).toEqual(expected);
      expect(s.buffered).toBe(0);
    }
  }
});

test("a zero-length body is a frame (decodeBody then rejects it)", () => {
  const rec = recorder();
  const s = new FrameSplitter();
  s.push(Buffer.concat([prefix(0), prefix(0)]), rec);
  s.push(prefix(0).subarray(0, 2), rec);
  s.push(prefix(0).subarray(2), rec);
  expect(rec.out).toEqual(["00000000", "00000000", "00000000"]);
});

test("buffered counts the bytes held for the incomplete frame", () => {
  const s = new FrameSplitter();
  const rec = recorder();
  const f = frameOf(Buffer.alloc(10, 1));
  s.push(Buffer.concat([f, f.subarray(0, 6)]), rec);
  expect(s.buffered).toBe(6);
  s.push(f.subarray(6, 13), rec);
  expect(s.buffered).toBe(13);
  s.push(Buffer.concat([f.subarray(13), f.subarray(0, 2)]), rec);
  expect(s.buffered).toBe(2);
  expect(rec.out).toHaveLength(2);
});

test("a 3 MiB frame in 1000-byte chunks arrives intact, among small frames", () => {
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const small = frameOf(Buffer.from("0102", "hex"));
  const stream = Buffer.concat([small, frameOf(big), small]);
  const got: Buffer[] = [];
  const s = new FrameSplitter();
  for (let off = 0; off < stream.length; off += 1000) {
    s.push(stream.subarray(off, off + 1000), {
      frame: (f) => got.push(Buffer.from(f)),
      gracefulClose: () => {},
    });
  }
  expect(got).toHaveLength(3);
  expect(got[1]!.equals(frameOf(big))).toBe(true);
  expect(got[2]!.equals(small)).toBe(true);
  expect(s.buffered).toBe(0);
});

test("a frame that straddles chunks is delivered in a buffer the splitter reuses (valid only during the call)", () => {
  const f = frameOf(Buffer.alloc(50, 9));
  const seen: Buffer[] = [];
  const s = new FrameSplitter();
  const sink = { frame: (x: Buffer) => seen.push(x), gracefulClose: () => {} };
  s.push(f.subarray(0, 20), sink);
  s.push(f.subarray(20), sink);
  expect(seen).toHaveLength(1);
  expect(seen[0]!.equals(f)).toBe(true);
});
