// The AUTH frame of token mode (docs/PROTOCOL.md "AUTH"): a client of a router started with
// `--auth-tokens` proves its site with it before anything else. Not a JGroups frame.
import { MAX_UTF_BYTES, mutf8Decode, mutf8Length, mutf8Write } from "./mutf8.js";

// Token mode: the client's first frame is `i32 length | u8 AUTH_TYPE | string site | string token`
// (strings as everywhere in the protocol: u8 presence 1, u16 length, modified UTF-8). JGroups has
// no such type (its GossipType values are 0..7), so a JGroups router closes a client that sends
// one: only our own clients send it, and only when configured with a token.

/** The type byte of the AUTH frame (outside JGroups' GossipType range 0..7, with room to spare). */
export const AUTH_TYPE = 0x41;
/** Longest site name in an AUTH frame (a DNS-1123 label). */
export const MAX_AUTH_SITE_BYTES = 63;
/** Longest token in an AUTH frame and in a token file. */
export const MAX_TOKEN_BYTES = 1024;
/** Largest AUTH frame body the router reads. */
export const MAX_AUTH_BODY = 1 + 3 + MAX_AUTH_SITE_BYTES + 3 + MAX_TOKEN_BYTES;

/** The AUTH frame a client sends first (length prefix included). Throws RangeError on oversized values. */
export function authFrame(site: string, token: string): Buffer {
  const siteLen = mutf8Length(site);
  const tokenLen = mutf8Length(token);
  if (siteLen === 0 || siteLen > MAX_AUTH_SITE_BYTES) throw new RangeError(`AUTH site of ${siteLen} bytes`);
  if (tokenLen === 0 || tokenLen > MAX_TOKEN_BYTES || tokenLen > MAX_UTF_BYTES) {
    throw new RangeError(`AUTH token of ${tokenLen} bytes (1..${MAX_TOKEN_BYTES})`);
  }
  const body = 1 + 3 + siteLen + 3 + tokenLen;
  const buf = Buffer.alloc(4 + body);
  buf.writeInt32BE(body, 0);
  buf[4] = AUTH_TYPE;
  let p = 5;
  for (const [s, n] of [
    [site, siteLen],
    [token, tokenLen],
  ] as const) {
    buf[p] = 1;
    buf.writeUInt16BE(n, p + 1);
    p = mutf8Write(s, buf, p + 3);
  }
  return buf;
}

/** Site and token of an AUTH frame (length prefix included), or null when it is not a well-formed one. */
export function parseAuthFrame(frame: Buffer): { site: string; token: Buffer } | null {
  if (frame.length < 5 || frame.length - 4 > MAX_AUTH_BODY || frame[4] !== AUTH_TYPE) return null;
  let p = 5;
  const field = (max: number): [number, number] | null => {
    if (p + 3 > frame.length || frame[p] !== 1) return null;
    const len = frame.readUInt16BE(p + 1);
    const start = p + 3;
    if (len === 0 || len > max || start + len > frame.length) return null;
    p = start + len;
    return [start, start + len];
  };
  const site = field(MAX_AUTH_SITE_BYTES);
  const token = field(MAX_TOKEN_BYTES);
  if (site === null || token === null || p !== frame.length) return null;
  let siteText: string;
  try {
    siteText = mutf8Decode(frame, site[0], site[1]);
  } catch {
    return null;
  }
  return { site: siteText, token: Buffer.from(frame.subarray(token[0], token[1])) };
}
