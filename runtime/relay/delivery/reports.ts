// Payloads of the two delivery control envelopes, checked field by field on the way in (anything
// unexpected is an EnvelopeError("bad-control")):
// - Ack (member -> its site masters, local): {"view": "<coordinator key>|<seq>", "marks":
//   [[site, name, incarnation, seq], ...]}: the view the member has installed, and its positions
// - Stable (site master -> origin member, across sites): {"inc": incarnation, "seq": n}; the
//   reporting site is the envelope's origin site.
import { isUuid } from "../../protocol/uuid.js";
import { type Envelope, EnvelopeError, EnvelopeKind, type Origin } from "../envelope.js";
import type { Watermark } from "./receive-window.js";

/** Watermarks per Ack envelope (a member sends several envelopes if it tracks more origins). */
export const MAX_MARKS_PER_ACK = 2048;

const bad = (what: string): never => {
  throw new EnvelopeError("bad-control", what);
};

function parse(payload: Uint8Array): unknown {
  if (payload.length > 512 * 1024) bad("delivery report too large");
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8"));
  } catch {
    return bad("delivery report is not JSON");
  }
}

const isName = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 255;
const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isInc = isUuid;

/** A member's report: the view it has installed (viewTag) and its delivered positions. */
export interface AckReport {
  readonly view: string;
  readonly marks: readonly Watermark[];
}

/** The tag of a view in reports: `<coordinator key>|<seq>`. */
export function viewTag(view: {
  readonly id: { readonly coordinator: string; readonly seq: number };
}): string {
  return `${view.id.coordinator}|${view.id.seq}`;
}

export function encodeAck(view: string, marks: readonly Watermark[]): Buffer {
  return Buffer.from(
    JSON.stringify({ view, marks: marks.map((m) => [m.site, m.name, m.incarnation, m.seq]) }),
    "utf8",
  );
}

export function decodeAck(payload: Uint8Array): AckReport {
  const doc = parse(payload) as { marks?: unknown; view?: unknown };
  if (typeof doc !== "object" || doc === null || !Array.isArray(doc.marks)) bad("ack without marks");
  if (typeof doc.view !== "string" || doc.view.length === 0 || doc.view.length > 600)
    bad("ack without a view");
  const marks = doc.marks as unknown[];
  if (marks.length > MAX_MARKS_PER_ACK) bad("too many marks in one ack");
  return {
    view: doc.view as string,
    marks: marks.map((m) => {
      if (!Array.isArray(m) || m.length !== 4) return bad("ack mark is not [site, name, inc, seq]");
      const [site, name, incarnation, seq] = m as unknown[];
      if (!isName(site) || !isName(name) || !isInc(incarnation) || !isSeq(seq)) return bad("bad ack mark");
      return { site, name, incarnation, seq };
    }),
  };
}

export interface StableReport {
  readonly incarnation: string;
  readonly seq: number;
}

export function encodeStable(r: StableReport): Buffer {
  return Buffer.from(JSON.stringify({ inc: r.incarnation, seq: r.seq }), "utf8");
}

export function decodeStable(payload: Uint8Array): StableReport {
  const doc = parse(payload) as { inc?: unknown; seq?: unknown };
  if (typeof doc !== "object" || doc === null || !isInc(doc.inc) || !isSeq(doc.seq)) bad("bad stable report");
  return { incarnation: doc.inc as string, seq: doc.seq as number };
}

/** The Ack envelope of a member of `origin.site` to its site masters. */
export function ackEnvelope(origin: Origin, view: string, marks: readonly Watermark[]): Envelope {
  return {
    kind: EnvelopeKind.Ack,
    hops: 0,
    origin,
    seq: 0,
    dest: { kind: "site", site: origin.site },
    payload: encodeAck(view, marks),
  };
}

/** A lane mark: `origin` keeps nothing of its lane to `site` below `nextSeq` (an idle lane). */
export function laneMarkEnvelope(origin: Origin, site: string, nextSeq: number): Envelope {
  return {
    kind: EnvelopeKind.LaneMark,
    hops: 4,
    origin,
    seq: 0,
    dest: { kind: "site", site },
    payload: new Uint8Array(0),
    lane: { site, seq: nextSeq - 1, low: nextSeq },
  };
}
