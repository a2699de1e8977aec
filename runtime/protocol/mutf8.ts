// Java "modified UTF-8" (the DataOutput.writeUTF format), per UTF-16 code unit:
//   U+0001..U+007F -> 1 byte, U+0000 and U+0080..U+07FF -> 2 bytes, U+0800..U+FFFF -> 3 bytes.
// Characters outside the BMP are therefore two 3-byte surrogates. Our decoder accepts only the
// canonical forms (what Java writes), so a decoded string always re-encodes to the same bytes.
import { ProtocolError } from "./types.js";

/** Largest encoded length of one string (u16 length prefix). */
export const MAX_UTF_BYTES = 0xffff;

/** Number of bytes `s` takes in modified UTF-8. */
export function mutf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c >= 0x80) n += c >= 0x800 ? 2 : 1;
  }
  return n;
}

/** Writes `s` at `pos` (the caller sized the buffer with mutf8Length) and returns the new position. */
export function mutf8Write(s: string, buf: Uint8Array, pos: number): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0 && c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

// String.fromCharCode.apply is limited by the engine's argument count: decode in slices.
const CHUNK = 4096;
const units = new Uint16Array(MAX_UTF_BYTES);

function bad(offset: number, why: string): ProtocolError {
  return new ProtocolError("bad-string", `${why} at byte ${offset}`);
}

/** Decodes buf[start, end) as canonical modified UTF-8. Throws ProtocolError("bad-string"). */
export function mutf8Decode(buf: Uint8Array, start: number, end: number): string {
  // Fast path: plain ASCII without NUL (group names, logical names).
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b === 0 || b >= 0x80) break;
    i++;
  }
  if (i === end) return asciiSlice(buf, start, end);

  let n = 0;
  for (i = start; i < end; ) {
    const b = buf[i]!;
    if (b !== 0 && b < 0x80) {
      units[n++] = b;
      i++;
    } else if ((b & 0xe0) === 0xc0) {
      if (i + 1 >= end) throw bad(i, "truncated 2-byte sequence");
      const b2 = buf[i + 1]!;
      if ((b2 & 0xc0) !== 0x80) throw bad(i + 1, "bad continuation byte");
      const c = ((b & 0x1f) << 6) | (b2 & 0x3f);
      // Canonical: only U+0000 and U+0080..U+07FF use two bytes.
      if (c !== 0 && c < 0x80) throw bad(i, "overlong 2-byte sequence");
      units[n++] = c;
      i += 2;
    } else if ((b & 0xf0) === 0xe0) {
      if (i + 2 >= end) throw bad(i, "truncated 3-byte sequence");
      const b2 = buf[i + 1]!;
      const b3 = buf[i + 2]!;
      if ((b2 & 0xc0) !== 0x80 || (b3 & 0xc0) !== 0x80) throw bad(i + 1, "bad continuation byte");
      const c = ((b & 0x0f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
      if (c < 0x800) throw bad(i, "overlong 3-byte sequence");
      units[n++] = c;
      i += 3;
    } else if (b === 0) {
      throw bad(i, "raw NUL byte (U+0000 must be c0 80)");
    } else {
      throw bad(i, `invalid lead byte 0x${b.toString(16)}`);
    }
  }
  let s = "";
  for (let k = 0; k < n; k += CHUNK) {
    s += String.fromCharCode.apply(null, units.subarray(k, Math.min(n, k + CHUNK)) as unknown as number[]);
  }
  return s;
}

function asciiSlice(buf: Uint8Array, start: number, end: number): string {
  const len = end - start;
  if (len <= 16) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
    return s;
  }
  let s = "";
  for (let k = start; k < end; k += CHUNK) {
    s += String.fromCharCode.apply(null, buf.subarray(k, Math.min(end, k + CHUNK)) as unknown as number[]);
  }
  return s;
}
