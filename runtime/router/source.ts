// Where a MESSAGE's sender address starts, without allocating: the router checks on every MESSAGE
// of an authenticated connection that the sender is an address that connection registered
// (policy.ts), and compares the sender's bytes with the last verified ones first. The offsets here
// follow the codec's readAddress field by field (test/router/authz.test.ts checks that they agree
// with decodeMessageSender); on anything unusual they give -1 and the caller decodes for real.

/** End offset of the address encoded at `p` of `f`, or -1 (unknown flag, out of bounds). */
function skipAddress(f: Buffer, p: number): number {
  const n = f.length;
  if (p >= n) return -1;
  const flag = f[p]!;
  p++;
  switch (flag) {
    case 0x01: // null
      return p;
    case 0x02: // UUID
      return p + 16 <= n ? p + 16 : -1;
    case 0x04: // SiteUUID
    case 0x08: {
      // SiteMaster: uuid, compressed flags, extensions, site string, name string
      p += 16;
      p = skipCompressed(f, p);
      if (p < 0) return -1;
      p = skipExtensions(f, p);
      if (p < 0) return -1;
      p = skipString(f, p);
      if (p < 0) return -1;
      return skipString(f, p);
    }
    case 0x10: {
      // IpAddress: u8 length (0, 4, 16), bytes, [i32 scope for 16], u16 port
      if (p >= n) return -1;
      const len = f[p]!;
      if (len !== 0 && len !== 4 && len !== 16) return -1;
      p += 1 + len + (len === 16 ? 4 : 0) + 2;
      return p <= n ? p : -1;
    }
    case 0x00: {
      // magic id (i16), uuid, compressed flags, [extensions for ExtendedUUID (12)]
      if (p + 2 > n) return -1;
      const magic = (f[p]! << 8) | f[p + 1]!;
      if (magic !== 12 && magic !== 19) return -1;
      p = skipCompressed(f, p + 2 + 16);
      if (p < 0) return -1;
      return magic === 12 ? skipExtensions(f, p) : p;
    }
    default:
      return -1;
  }
}

function skipCompressed(f: Buffer, p: number): number {
  if (p >= f.length) return -1;
  const len = f[p]!;
  if (len > 4) return -1;
  p += 1 + len;
  return p <= f.length ? p : -1;
}

function skipExtensions(f: Buffer, p: number): number {
  if (p >= f.length) return -1;
  let count = f[p]!;
  p++;
  while (count-- > 0) {
    if (p >= f.length) return -1;
    p += 1 + f[p]!; // key
    if (p >= f.length) return -1;
    p += 1 + f[p]!; // value
  }
  return p <= f.length ? p : -1;
}

function skipString(f: Buffer, p: number): number {
  if (p >= f.length) return -1;
  if (f[p] !== 1) return p + 1; // presence byte other than 1 = null, as the codec reads it
  if (p + 3 > f.length) return -1;
  p += 3 + ((f[p + 1]! << 8) | f[p + 2]!);
  return p <= f.length ? p : -1;
}

/**
 * Offset in `frame` (length prefix included) where a MESSAGE's sender starts, given `destEnd` when
 * the caller already knows where the destination ends (-1 = find it), or -1 when the header is
 * unusual (then decode it).
 */
export function senderStart(frame: Buffer, destEnd: number): number {
  if (destEnd > 0) return destEnd;
  const n = frame.length;
  if (n < 7) return -1;
  let p = 6;
  if (frame[5] === 1) {
    if (n < 8) return -1;
    p = 8 + ((frame[6]! << 8) | frame[7]!);
  }
  return skipAddress(frame, p);
}
