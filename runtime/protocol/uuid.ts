// UUID text <-> 16 bytes, the one implementation for every codec of the project (GossipRouter
// addresses, mesh members, relay envelopes). Text is the canonical lowercase 8-4-4-4-12 form.
// Callers validate with isUuid() and throw their own error: what a bad UUID means differs per codec.

/** The canonical text form: lowercase hex, 8-4-4-4-12. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * How the two 64-bit halves lie in the 16 bytes: "msb-first" as in the text (RFC 4122; the mesh
 * and the relay envelope), "lsb-first" as JGroups writes a UUID (least-significant long first).
 */
export type UuidByteOrder = "msb-first" | "lsb-first";

export const UUID_BYTES = 16;

/**
 * The same few UUIDs are written and checked for every message (our address, the site masters'):
 * their 16 bytes (msb-first) are kept, keyed by the text, so neither the pattern nor the hex
 * parsing runs per message. Bounded (UUIDs can be remote input): emptied when full.
 */
const MEMO_MAX = 4096;
const known = new Map<string, Buffer>();

function bytesOf(uuid: string): Buffer {
  let b = known.get(uuid);
  if (b === undefined) {
    b = Buffer.from(uuid.replaceAll("-", ""), "hex");
    if (known.size >= MEMO_MAX) known.clear();
    known.set(uuid, b);
  }
  return b;
}

/** True when `value` is a UUID in canonical text form. */
export function isUuid(value: unknown): value is string {
  if (typeof value !== "string") return false;
  if (known.has(value)) return true;
  if (!UUID_PATTERN.test(value)) return false;
  bytesOf(value);
  return true;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** 16 bytes at `buf[at..at+16)` -> canonical text. The caller checked that the bytes are there. */
export function uuidFromBytes(buf: Uint8Array, at = 0, order: UuidByteOrder = "msb-first"): string {
  const b = buf;
  const m = order === "msb-first" ? at : at + 8;
  const l = order === "msb-first" ? at + 8 : at;
  return (
    HEX[b[m]!]! +
    HEX[b[m + 1]!]! +
    HEX[b[m + 2]!]! +
    HEX[b[m + 3]!]! +
    "-" +
    HEX[b[m + 4]!]! +
    HEX[b[m + 5]!]! +
    "-" +
    HEX[b[m + 6]!]! +
    HEX[b[m + 7]!]! +
    "-" +
    HEX[b[l]!]! +
    HEX[b[l + 1]!]! +
    "-" +
    HEX[b[l + 2]!]! +
    HEX[b[l + 3]!]! +
    HEX[b[l + 4]!]! +
    HEX[b[l + 5]!]! +
    HEX[b[l + 6]!]! +
    HEX[b[l + 7]!]!
  );
}

/** Writes a UUID (already validated with isUuid) as 16 bytes at `buf[at..at+16)`. */
export function writeUuid(uuid: string, buf: Buffer, at: number, order: UuidByteOrder = "msb-first"): void {
  const b = bytesOf(uuid);
  const msb = order === "msb-first" ? at : at + 8;
  const lsb = order === "msb-first" ? at + 8 : at;
  for (let i = 0; i < 8; i++) {
    buf[msb + i] = b[i]!;
    buf[lsb + i] = b[8 + i]!;
  }
}

/** A UUID (already validated with isUuid) as 16 new bytes. */
export function uuidToBytes(uuid: string, order: UuidByteOrder = "msb-first"): Buffer {
  const out = Buffer.allocUnsafe(UUID_BYTES);
  writeUuid(uuid, out, 0, order);
  return out;
}
