// The version of an entry: the HLC stamp of the write plus where it was made (site, member).
//
// Total order (compareVersions): the stamp first (wall, then logical), then the site, then the
// member, both compared as UTF-8 byte strings (= Unicode code point order; not JavaScript's
// UTF-16 code unit order, which differs above U+FFFF). Two writes never share a version: one
// member's clock is strictly increasing and (site, member) names the member. Equal versions
// therefore mean the same write.
//
// Text form (versionKey), for logs, resume tokens and the digest:
//   <wall>.<logical>@<site>/<member>      e.g. 1764662400000.3@nyc/nyc-1
// wall and logical in decimal without leading zeros, site and member percent-encoded with
// encodeURIComponent (so "/" and "@" inside names cannot be confused with the separators).
// parseVersionKey accepts exactly the strings versionKey produces.
import { KvError } from "./errors.js";
import { compareHlc, type Hlc, isValidHlc, MAX_LOGICAL, MAX_WALL } from "./hlc.js";

export interface Version {
  readonly hlc: Hlc;
  /** Origin site of the write. */
  readonly site: string;
  /** Origin member (within the site) of the write. */
  readonly member: string;
}

/** Largest site and member name, in UTF-8 bytes (names are 1..255 bytes, as in the mesh codec). */
export const MAX_NAME_BYTES = 255;

const LONE_SURROGATE = /\p{Cs}/u;

/** True when `s` is well-formed Unicode (no lone surrogate), so it survives UTF-8. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** UTF-8 length of a string without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Compares two strings in UTF-8 byte order (code point order). */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800..DFFF) encode code points above FFFF: move them above E000..FFFF.
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function compareVersions(a: Version, b: Version): number {
  return compareHlc(a.hlc, b.hlc) || compareUtf8(a.site, b.site) || compareUtf8(a.member, b.member);
}

export function versionsEqual(a: Version, b: Version): boolean {
  return compareVersions(a, b) === 0;
}

/** The greater of two versions (either when equal). */
export function maxVersion(a: Version, b: Version): Version {
  return compareVersions(a, b) >= 0 ? a : b;
}

function validName(s: unknown): boolean {
  return typeof s === "string" && s.length > 0 && utf8Length(s) <= MAX_NAME_BYTES && isWellFormed(s);
}

/** Why `v` is not a well-formed version, or null when it is. */
export function versionProblem(v: Version): string | null {
  if (v === null || typeof v !== "object" || v.hlc === null || typeof v.hlc !== "object")
    return "version is not an object";
  if (!isValidHlc(v.hlc))
    return `HLC (wall ${v.hlc.wall}, logical ${v.hlc.logical}) outside wall 0..${MAX_WALL}, logical 0..${MAX_LOGICAL}`;
  if (!validName(v.site)) return `site must be 1..${MAX_NAME_BYTES} UTF-8 bytes of well-formed Unicode`;
  if (!validName(v.member)) return `member must be 1..${MAX_NAME_BYTES} UTF-8 bytes of well-formed Unicode`;
  return null;
}

export function makeVersion(hlc: Hlc, site: string, member: string): Version {
  const v: Version = { hlc: { wall: hlc.wall, logical: hlc.logical }, site, member };
  const problem = versionProblem(v);
  if (problem) throw new KvError("BAD_FRAME", `bad version: ${problem}`);
  return v;
}

export function versionKey(v: Version): string {
  return `${v.hlc.wall}.${v.hlc.logical}@${encodeURIComponent(v.site)}/${encodeURIComponent(v.member)}`;
}

const VERSION_KEY = /^(0|[1-9][0-9]{0,15})\.(0|[1-9][0-9]{0,4})@([^/@]+)\/([^/@]+)$/;

/** The inverse of versionKey; throws KvError BAD_FRAME on anything versionKey cannot produce. */
export function parseVersionKey(s: string): Version {
  const bad = (why: string) =>
    new KvError("BAD_FRAME", `not a version key (${why}): ${JSON.stringify(String(s).slice(0, 100))}`);
  if (typeof s !== "string" || s.length > 2048) throw bad("too long or not a string");
  const m = VERSION_KEY.exec(s);
  if (!m) throw bad("expected <wall>.<logical>@<site>/<member>");
  let site: string;
  let member: string;
  try {
    site = decodeURIComponent(m[3]!);
    member = decodeURIComponent(m[4]!);
  } catch {
    throw bad("bad percent-encoding");
  }
  const v: Version = { hlc: { wall: Number(m[1]), logical: Number(m[2]) }, site, member };
  const problem = versionProblem(v);
  if (problem) throw bad(problem);
  if (versionKey(v) !== s) throw bad("not in canonical form");
  return v;
}
