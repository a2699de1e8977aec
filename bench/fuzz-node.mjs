#!/usr/bin/env node
// Long fuzz run of the node-to-node decoders (not part of CI): the local cluster mesh frames
// (runtime/cluster/codec.ts: decodeFrame, meshSplitter), the relay envelope
// (runtime/relay/envelope.ts: decodeEnvelope) and the JSON payloads of the control envelopes
// (runtime/relay/control.ts, plus the delivery reports of runtime/relay/delivery/reports.ts when
// the build has them). Inputs are generated valid values, random bytes, and valid encodings
// mutated 1-3 times (bit flips, cuts, insertions, deletions, huge lengths; token-level edits of
// the JSON). Fails on:
//   - anything thrown that is not the decoder's typed error (ClusterCodecError / EnvelopeError);
//   - an accepted input that does not re-encode to the same bytes (frames, envelopes) or to an
//     equal value (control payloads);
//   - heap growth (heapUsed + arrayBuffers after GC) over 32 MiB.
// Reproducible from the printed seed; a failure prints the input as hex and the stack.
//
//   npm run build && node --expose-gc bench/fuzz-node.mjs [inputs=1000000] [seed]
//
// Recorded 2026-11-25 (nproc 2, AMD EPYC 2-vCPU VM, Node 20.20.2, Linux 6.18; other test suites
// running, load average 4-15, so the rates are pessimistic):
//   seed 1846404589 (default): 1,000,000 inputs, 0 other exceptions, 126 s (7.9k/s),
//     accepted 201,109 frames / 57,179 envelopes / 59,838 control payloads, peak heap growth after
//     GC 3.1 MiB, final 0.1 MiB, max RSS 321 MiB (transient: 1.5 MiB JSON lists, 70 KB payloads).
//   seed 12345: 1,000,000 inputs, 0 other exceptions, 194 s (5.1k/s), heap growth <= 0.
// Found and fixed (runtime/cluster/codec.ts): a leading U+FEFF in a name or reason was dropped on
// decode (TextDecoder without ignoreBOM), so "\ufeffnyc-1" came back as "nyc-1".
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const load = (p) => import(pathToFileURL(path.join(root, "dist/runtime", p)).href);
const C = await load("cluster/codec.js");
const E = await load("relay/envelope.js");
const K = await load("relay/control.js");
const R = existsSync(path.join(root, "dist/runtime/relay/delivery/reports.js"))
  ? await load("relay/delivery/reports.js")
  : null;

const total = Number(process.argv[2] ?? 1_000_000);
let seed = Number(process.argv[3] ?? 0x6e0de5ed) >>> 0 || 1;
const HEAP_LIMIT = 32 * 1024 * 1024;
const CHECK_EVERY = 50_000;

// xorshift32: reproducible from the printed seed.
function rnd() {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed;
}
const below = (n) => rnd() % n;
const pick = (xs) => xs[below(xs.length)];
const chance = (n) => below(n) === 0;
function randomBytes(n) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rnd() & 0xff;
  return b;
}

// ---------------------------------------------------------------------------------------------
// Valid values

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_.";
const EXOTIC = ["é", "ß", "東京", "🚀", "\u0000", "\u200b", "\ufeff", '"', "\\", "\n"];
function name(maxBytes = 32) {
  if (chance(40)) return "x".repeat(255); // the longest allowed
  let s = "";
  const n = 1 + below(Math.min(maxBytes, 24));
  for (let i = 0; i < n; i++) s += chance(12) ? pick(EXOTIC) : ALPHABET[below(ALPHABET.length)];
  while (Buffer.byteLength(s) > 255) s = s.slice(0, -1);
  return s || "a";
}
function uuid() {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const EDGE_INTS = [
  0,
  1,
  2,
  0xff,
  0x100,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xffffffff,
  2 ** 32,
  2 ** 53 - 1,
];
const u32 = () => (chance(4) ? pick(EDGE_INTS.filter((x) => x <= 0xffffffff)) : rnd());
const safeInt = () => (chance(3) ? pick(EDGE_INTS) : rnd() * below(0x1fffff) + rnd());
const member = () => ({
  name: name(),
  site: name(8),
  uuid: uuid(),
  host: `10.0.${below(256)}.${below(256)}`,
  port: below(65536),
});
function view() {
  const n = chance(20) ? 1 + below(400) : 1 + below(8);
  const members = [];
  for (let i = 0; i < n; i++) members.push(member());
  return { id: { coordinator: `${members[0].name}/${members[0].uuid}`, seq: u32() }, members };
}
const reason = () => (chance(10) ? "r".repeat(1024) : name(64));

function clusterFrame() {
  switch (below(12)) {
    case 0:
      return { type: "hello", version: below(256), cluster: name(), member: member() };
    case 1:
      return { type: "hello-ack", member: member() };
    case 2:
      return { type: "reject", reason: reason() };
    case 3:
      return { type: "heartbeat" };
    case 4:
      return { type: "info-req" };
    case 5:
      return { type: "info", view: chance(3) ? null : view() };
    case 6:
      return { type: "join-req" };
    case 7:
      return { type: "join-reject", reason: reason() };
    case 8:
      return { type: "view", view: view() };
    case 9:
      return { type: "leave" };
    case 10:
      return { type: "merge-req", view: view() };
    default:
      return { type: "data", payload: chance(2) ? envelopeBytes() : randomBytes(below(200)) };
  }
}

// Control payloads (as values, encoded with the project's own encoders).
const siteMember = () => ({ name: name(), host: name(40), port: below(65536) });
const list = (n, f) => Array.from({ length: below(n + 1) }, f);
const siteView = () => ({
  site: name(8),
  viewId: `[${name()}|${below(1000)}]`,
  members: list(6, siteMember),
  siteMasters: list(3, () => name()),
});
const route = () => ({
  site: name(8),
  up: chance(2),
  routers: list(3, () => `10.0.0.${below(256)}[12001]`),
  siteMasters: list(2, () => name()),
});
const routerInfo = () => ({
  endpoint: `10.0.0.${below(256)}[12001]`,
  state: pick(["registered", "connecting", "down"]),
});
const topology = () => ({
  from: name(),
  sites: list(4, siteView),
  routes: list(4, route),
  routers: list(3, routerInfo),
});
const probe = () => ({
  name: name(),
  site: name(8),
  local_addr: `${name()} [${uuid()}]`,
  physical_addr: `10.0.0.1:${below(65536)}`,
  view: `[${name()}|${below(99)}] (${below(9)}) [${name()}]`,
  cluster: name(),
  version: "cross-cloud-relay 0.1.0",
  site_master: chance(2),
});
const watermark = () => ({ site: name(8), name: name(), incarnation: uuid(), seq: safeInt() });

/** The control decoders: [name, decode, encode, generate]. */
const CONTROL = [
  ["siteView", K.decodeSiteView, K.encodeControl, siteView],
  ["topology", K.decodeTopology, K.encodeControl, topology],
  ["probe", K.decodeProbeInfo, K.encodeControl, probe],
  ...(R
    ? [
        ["ack", R.decodeAck, R.encodeAck, () => list(8, watermark)],
        ["stable", R.decodeStable, R.encodeStable, () => ({ incarnation: uuid(), seq: safeInt() })],
      ]
    : []),
];
const CONTROL_FOR_KIND = { 2: 0, 4: 1, 6: 2, 7: 3, 8: 4 };

function envelope() {
  const kind = 1 + below(8);
  const ci = CONTROL_FOR_KIND[kind];
  const payload =
    ci !== undefined && CONTROL[ci] && !chance(8)
      ? CONTROL[ci][2](CONTROL[ci][3]())
      : randomBytes(chance(50) ? below(70_000) : below(64));
  const dest = pick([
    () => ({ kind: "all" }),
    () => ({ kind: "site", site: name(8) }),
    () => ({ kind: "member", site: name(8), name: name() }),
  ])();
  const env = {
    kind,
    hops: below(256),
    origin: { site: name(8), name: name(), incarnation: uuid() },
    seq: safeInt(),
    dest,
    payload,
  };
  return E.FLAG_LANE !== undefined && chance(3)
    ? { ...env, lane: { site: name(8), seq: safeInt(), low: safeInt() } }
    : env;
}
const envelopeBytes = () => E.encodeEnvelope(envelope());

// ---------------------------------------------------------------------------------------------
// Mutations

const HUGE = [0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x00ffffff];
function mutate(b) {
  const at = b.length === 0 ? 0 : below(b.length);
  switch (below(6)) {
    case 0: {
      const out = Buffer.from(b);
      if (out.length) out[at] ^= 1 << below(8);
      return out;
    }
    case 1:
      return b.subarray(0, at);
    case 2:
      return Buffer.concat([b.subarray(0, at), randomBytes(1 + below(8)), b.subarray(at)]);
    case 3:
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + below(8))]);
    case 4: {
      const out = Buffer.from(b);
      const v = pick(HUGE);
      const n = v > 0xffff ? 4 : v > 0xff ? 2 : 1;
      for (let i = 0; i < n && at + i < out.length; i++) out[at + i] = (v >>> (8 * (n - 1 - i))) & 0xff;
      return out;
    }
    default: {
      // Duplicate a slice (repeated fields, doubled members).
      const end = Math.min(b.length, at + 1 + below(40));
      return Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
    }
  }
}

const JSON_SWAPS = [
  "null",
  "true",
  "false",
  "0",
  "-1",
  "1e309",
  "-0",
  "65536",
  "1.5",
  "9007199254740993",
  '""',
  '"x"',
  "[]",
  "{}",
  '{"__proto__":{}}',
  '"\\ud800"',
  `"${"y".repeat(2000)}"`,
  "[".repeat(5000) + "]".repeat(5000),
];
/** Token-level edits of a JSON text: the decoders' field checks see wrong types and bounds. */
function mutateJson(text) {
  const at = below(text.length + 1);
  switch (below(5)) {
    case 0: {
      // Replace a value (a number, string, literal, or a whole array/object opening) by another.
      const m = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|true|false|null/g;
      const tokens = [...text.matchAll(m)];
      if (tokens.length === 0) return text;
      const t = pick(tokens);
      return text.slice(0, t.index) + pick(JSON_SWAPS) + text.slice(t.index + t[0].length);
    }
    case 1:
      return text.slice(0, at) + text.slice(at + 1 + below(6));
    case 2:
      return text.slice(0, at) + pick([",", ":", "[", "]", "{", "}", '"', "\\", "0"]) + text.slice(at);
    case 3:
      return text.slice(0, at);
    default: {
      // Grow a list: repeat an array element many times (bounds on list lengths).
      const open = text.indexOf("[", at);
      if (open < 0) return text;
      const close = text.indexOf("]", open);
      if (close < 0) return text;
      const inner = text.slice(open + 1, close);
      if (!inner) return text;
      // Up to a bit over the 1 MiB control limit, so that bound is reached too.
      const copies = Math.min(1 + below(12_000), Math.floor((1.5 * 1024 * 1024) / (inner.length + 1)));
      return text.slice(0, open + 1) + Array(copies).fill(inner).join(",") + text.slice(close);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

const stats = {
  inputs: 0,
  accepted: { frame: 0, envelope: 0, control: 0 },
  errors: {},
  splitterBodies: 0,
};
function fail(what, input, e) {
  const hex = Buffer.isBuffer(input) ? input.toString("hex") : Buffer.from(String(input)).toString("hex");
  console.error(`FAIL (${what}) seed=${startSeed} input#${stats.inputs} input=${hex}`);
  console.error(e);
  process.exit(1);
}
function expectTyped(e, Type, what, input) {
  if (!(e instanceof Type)) fail(what, input, e);
  const key = `${what}:${e.code}`;
  stats.errors[key] = (stats.errors[key] ?? 0) + 1;
}

function checkFrameBody(body) {
  let f;
  try {
    f = C.decodeFrame(body);
  } catch (e) {
    expectTyped(e, C.ClusterCodecError, "frame", body);
    return;
  }
  stats.accepted.frame++;
  let again;
  try {
    again = C.encodeFrame(f);
  } catch (e) {
    fail("frame re-encode threw", body, e);
  }
  if (!again.subarray(4).equals(Buffer.from(body)))
    fail("frame re-encode differs", body, new Error(again.toString("hex")));
  if (f.type === "data") checkEnvelope(f.payload);
}

function checkEnvelope(bytes, limits) {
  let env;
  try {
    env = E.decodeEnvelope(bytes, limits);
  } catch (e) {
    expectTyped(e, E.EnvelopeError, "envelope", bytes);
    return;
  }
  stats.accepted.envelope++;
  let again;
  try {
    again = E.encodeEnvelope(env);
  } catch (e) {
    fail("envelope re-encode threw", bytes, e);
  }
  if (!again.equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)))
    fail("envelope re-encode differs", bytes, new Error(again.toString("hex")));
  const ci = CONTROL_FOR_KIND[env.kind];
  if (ci !== undefined && CONTROL[ci]) checkControl(CONTROL[ci], env.payload);
}

function checkControl([what, decode, encode], payload) {
  let v;
  try {
    v = decode(payload);
  } catch (e) {
    expectTyped(e, E.EnvelopeError, `control.${what}`, payload);
    return;
  }
  stats.accepted.control++;
  try {
    // Compared as JSON: a "-0" the decoders accept as 0 comes back as 0, which is the same number.
    if (JSON.stringify(decode(encode(v))) !== JSON.stringify(v))
      fail(`control.${what} not stable`, payload, new Error("differs"));
  } catch (e) {
    fail(`control.${what} re-encode`, payload, e);
  }
}

const splitterSink = [];
function checkStream(stream) {
  const s = C.meshSplitter(chance(2) ? 64 * 1024 : C.DEFAULT_MAX_FRAME);
  const sink = { frame: (f) => splitterSink.push(f.subarray(4)) };
  try {
    for (let off = 0; off < stream.length; ) {
      const n = 1 + below(chance(4) ? 4096 : 64);
      s.push(stream.subarray(off, off + n), sink);
      off += n;
    }
  } catch (e) {
    expectTyped(e, C.ClusterCodecError, "splitter", stream);
  }
  if (s.buffered > s.maxFrame + 4) fail("splitter holds too much", stream, new Error(`${s.buffered} bytes`));
  stats.splitterBodies += splitterSink.length;
  for (const body of splitterSink) checkFrameBody(body);
  splitterSink.length = 0;
}

function one() {
  stats.inputs++;
  const k = below(20);
  if (k < 2) {
    // Random frame body, a known type byte half of the time.
    const b = randomBytes(below(300));
    if (b.length && chance(2)) b[0] = 1 + below(12);
    checkFrameBody(b);
  } else if (k < 7) {
    let b = C.encodeFrame(clusterFrame()).subarray(4);
    if (!chance(10)) for (let m = 1 + below(3); m > 0; m--) b = mutate(b);
    checkFrameBody(b);
  } else if (k < 8) {
    const b = randomBytes(below(200));
    if (b.length >= 4 && chance(2)) b.writeUInt32BE(0x524c0100 | (1 + below(8)), 0); // magic, version, kind
    checkEnvelope(b);
  } else if (k < 13) {
    let b = envelopeBytes();
    if (!chance(10)) for (let m = 1 + below(3); m > 0; m--) b = mutate(b);
    checkEnvelope(b, chance(5) ? { maxPayload: below(1024) } : undefined);
  } else if (k < 17) {
    const c = pick(CONTROL);
    let text = c[2](c[3]()).toString("utf8");
    if (!chance(10)) for (let m = 1 + below(3); m > 0; m--) text = mutateJson(text);
    const bytes = chance(8) ? mutate(Buffer.from(text, "utf8")) : Buffer.from(text, "utf8");
    checkControl(c, bytes);
  } else if (k < 18) {
    checkControl(
      pick(CONTROL),
      chance(2) ? randomBytes(below(300)) : Buffer.from(JSON.stringify(pick(JSON_SWAPS))),
    );
  } else {
    // A stream of frames cut into random chunks, some with a wrong length prefix or body bytes.
    const parts = [];
    for (let i = 1 + below(5); i > 0; i--) {
      const frame = C.encodeFrame(clusterFrame());
      if (chance(8)) frame.writeInt32BE(chance(2) ? rnd() | 0 : pick([0, -1, 0x7fffffff]), 0);
      parts.push(frame);
    }
    const stream = Buffer.concat(parts);
    checkStream(chance(2) ? mutate(stream) : stream);
  }
}

function memory() {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

if (!globalThis.gc) console.warn("warning: run with --expose-gc for an exact heap check");
const startSeed = seed;
// Warm up (JIT, lazily created objects) before the heap baseline.
for (let i = 0; i < 2000; i++) one();
stats.inputs = 0;
stats.accepted = { frame: 0, envelope: 0, control: 0 };
stats.errors = {};
stats.splitterBodies = 0;
const base = memory();
let peak = 0;
const t0 = process.hrtime.bigint();
while (stats.inputs < total) {
  one();
  if (stats.inputs % CHECK_EVERY === 0) {
    const grown = memory() - base;
    peak = Math.max(peak, grown);
    if (grown > HEAP_LIMIT) fail("heap", Buffer.alloc(0), new Error(`heap grew by ${grown} bytes`));
  }
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(
  JSON.stringify(
    {
      seed: startSeed,
      inputs: stats.inputs,
      accepted: stats.accepted,
      typedErrors: Object.fromEntries(Object.entries(stats.errors).sort()),
      splitterBodies: stats.splitterBodies,
      deliveryReports: R !== null,
      otherExceptions: 0,
      seconds: Math.round(secs * 10) / 10,
      inputsPerSecond: Math.round(stats.inputs / secs),
      peakHeapGrowthBytes: peak,
      finalHeapGrowthBytes: memory() - base,
      maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      exactGc: Boolean(globalThis.gc),
    },
    null,
    2,
  ),
);
