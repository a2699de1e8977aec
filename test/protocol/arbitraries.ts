// fast-check generators for protocol values, byte mutations, and a naive reference splitter.
import fc from "fast-check";
import { type Address, type GossipData, GossipType, type PingData } from "../../runtime/protocol/index.js";
import { formatIp } from "../../runtime/protocol/ip.js";

function uuidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const arbUuid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(uuidText);

/** Strings with ASCII, U+0000, any UTF-16 code unit (lone surrogates too) and non-BMP characters. */
export const arbString = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 8 }),
  fc.constantFrom("\u0000", "😀", "bøb", "<<all-groups>>:chat", ""),
);
const arbOptString = fc.option(arbString, { nil: null });

const arbFlags = fc.oneof(fc.constant(0), fc.integer({ min: -0x80000000, max: 0x7fffffff }));

const arbExtensions = fc.array(
  fc.record({
    key: fc.uint8Array({ maxLength: 8 }),
    // Java writes an empty value like a missing one (length 0), so generate null or 1+ bytes.
    value: fc.option(fc.uint8Array({ minLength: 1, maxLength: 8 }), { nil: null }),
  }),
  { maxLength: 3 },
);

const arbSiteAddress: fc.Arbitrary<Address> = fc.record({
  kind: fc.constantFrom("site-uuid" as const, "site-master" as const),
  uuid: arbUuid,
  flags: arbFlags,
  extensions: arbExtensions,
  site: arbOptString,
  name: arbOptString,
});

const arbPort = fc.integer({ min: 0, max: 0xffff });

export const arbIpAddress: fc.Arbitrary<Address> = fc.oneof(
  fc
    .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), arbPort)
    .map(([b, port]) => ({ kind: "ip" as const, host: formatIp(b, 0, 4), port })),
  fc
    .tuple(
      fc.oneof(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        // Mostly-zero addresses exercise the "::" compression and the IPv4-mapped form.
        fc
          .tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 255 }), fc.boolean())
          .map(([i, v, mapped]) => {
            const b = new Uint8Array(16);
            if (mapped) b.set([0xff, 0xff], 10);
            b[i] = v;
            return b;
          }),
      ),
      arbPort,
      fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0x7fffffff })),
    )
    .map(([b, port, scopeId]) => ({ kind: "ip" as const, host: formatIp(b, 0, 16), port, scopeId })),
  arbPort.map((port) => ({ kind: "ip" as const, host: null, port })),
);

const arbMagicAddress: fc.Arbitrary<Address> = fc.oneof(
  fc.record({
    kind: fc.constant("magic" as const),
    magic: fc.constant(19),
    uuid: arbUuid,
    flags: arbFlags,
    extensions: fc.constant([]),
  }),
  fc.record({
    kind: fc.constant("magic" as const),
    magic: fc.constant(12),
    uuid: arbUuid,
    flags: arbFlags,
    extensions: arbExtensions,
  }),
);

export const arbAddress: fc.Arbitrary<Address> = fc.oneof(
  arbUuid.map((uuid) => ({ kind: "uuid" as const, uuid })),
  arbSiteAddress,
  arbIpAddress,
  arbMagicAddress,
);
const arbOptAddress = fc.option(arbAddress, { nil: null });

const arbPingData: fc.Arbitrary<PingData> = fc.record({
  member: arbOptAddress,
  flags: fc.integer({ min: 0, max: 255 }),
  logicalName: arbOptString,
  physicalAddr: fc.option(arbIpAddress, { nil: null }),
  mbrs: fc.option(fc.array(arbAddress, { maxLength: 3 }), { nil: null }),
});

const arbPayload = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 64 }));

export const arbGossipData: fc.Arbitrary<GossipData> = fc.oneof(
  fc.record({
    type: fc.constant(GossipType.Message),
    group: arbOptString,
    addr: arbOptAddress,
    sender: arbOptAddress,
    logicalName: fc.constant(null),
    pingData: fc.constant([]),
    physicalAddr: fc.constant(null),
    payload: arbPayload,
  }),
  fc.record({
    type: fc.constantFrom(0, 1, 2, 3, 5, 6, 7) as fc.Arbitrary<GossipType>,
    group: arbOptString,
    addr: arbOptAddress,
    sender: arbOptAddress,
    logicalName: arbOptString,
    pingData: fc.array(arbPingData, { maxLength: 3 }),
    physicalAddr: fc.option(arbIpAddress, { nil: null }),
    payload: arbPayload,
  }),
);

export type Mutation =
  | { readonly kind: "flip"; readonly at: number; readonly bit: number }
  | { readonly kind: "truncate"; readonly at: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: "delete"; readonly at: number; readonly n: number }
  | { readonly kind: "huge"; readonly at: number; readonly value: number };

const arbAt = fc.nat();
export const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: arbAt, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: arbAt }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: arbAt,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: arbAt, n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    kind: fc.constant("huge" as const),
    at: arbAt,
    value: fc.constantFrom(0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x00ffffff),
  }),
);

/** Applies one mutation to a copy of `b` (positions wrap around the length). */
export function applyMutation(b: Uint8Array, m: Mutation): Uint8Array {
  const at = b.length === 0 ? 0 : m.at % b.length;
  const out = Buffer.from(b);
  switch (m.kind) {
    case "flip":
      if (out.length > 0) out[at] = out[at]! ^ (1 << m.bit);
      return out;
    case "truncate":
      return out.subarray(0, at);
    case "insert":
      return Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    case "delete":
      return Buffer.concat([out.subarray(0, at), out.subarray(at + m.n)]);
    case "huge": {
      // Overwrite 2 or 4 bytes (a count or a length field, if one is there) with a large value.
      const n = m.value > 0xffff ? 4 : 2;
      for (let i = 0; i < n && at + i < out.length; i++) out[at + i] = (m.value >>> (8 * (n - 1 - i))) & 0xff;
      return out;
    }
  }
}

/** The obvious, slow splitter: the whole stream at once. Models what FrameSplitter must produce. */
export function referenceSplit(
  stream: Buffer,
  maxFrame: number,
): { frames: string[]; error: string | null; buffered: number } {
  const frames: string[] = [];
  let off = 0;
  while (stream.length - off >= 4) {
    const len = stream.readInt32BE(off);
    if (len === -5) {
      frames.push("close");
      off += 4;
      continue;
    }
    if (len < 0) return { frames, error: "bad-length", buffered: 0 };
    if (len > maxFrame) return { frames, error: "frame-too-large", buffered: 0 };
    if (stream.length - off - 4 < len) break;
    frames.push(stream.subarray(off, off + 4 + len).toString("hex"));
    off += 4 + len;
  }
  return { frames, error: null, buffered: stream.length - off };
}
