// DeliveryEngine (runtime/relay/delivery/engine.ts) behind a fake DeliveryPath: a member of nyc
// that is not a site master, with an injected clock and tick() instead of timers. What it sends on
// its lanes is recorded; stability reports and the passing of time are fed in by hand.
import { describe, expect, test } from "@jest/globals";
import { pino } from "pino";
import type { Member, View } from "../../runtime/cluster/member.js";
import {
  DeliveryEngine,
  type DeliveryPath,
  EARLY_REPORT_MESSAGES,
} from "../../runtime/relay/delivery/engine.js";
import {
  ackEnvelope,
  decodeAck,
  decodeStable,
  encodeStable,
  viewTag,
} from "../../runtime/relay/delivery/reports.js";
import { decodeEnvelope, type Envelope, EnvelopeKind, type Lane } from "../../runtime/relay/envelope.js";
import { RelayError } from "../../runtime/relay/errors.js";

const ME = { site: "nyc", name: "nyc-2", incarnation: "0b9c4a52-3f5e-4d0a-9a57-1d2f3c4b5a69" };
const SFC_INC = "5f0d2c1e-7a8b-4c3d-9e0f-112233445566";
const member = (name: string, uuid: string): Member => ({
  name,
  site: "nyc",
  uuid,
  host: "127.0.0.1",
  port: 1,
});
const SM = member("nyc-1", "11111111-1111-4111-8111-111111111111");
const SELF = member("nyc-2", "22222222-2222-4222-8222-222222222222");
const VIEW: View = { id: { coordinator: "nyc-1", seq: 1 }, members: [SM, SELF] };

/** A fake path: sfc reachable, nyc-1 our forwarding site master; lane sends are recorded. */
function world(start = 100_000) {
  const sent: Lane[] = [];
  const clock = { now: start };
  const path: DeliveryPath = {
    origin: ME,
    log: pino({ level: "silent" }),
    now: () => clock.now,
    view: () => VIEW,
    siteMasters: () => [SM],
    forwarder: () => SM,
    isMe: (m) => m.uuid === SELF.uuid,
    topology: () => ({
      sites: [],
      routes: [{ site: "sfc", up: true, routers: ["r1"], siteMasters: ["sfc-1"] }],
    }),
    sendLane: (env) => {
      sent.push(env.lane!);
      return true;
    },
    sendToMember: () => {},
    sendStable: () => {},
    deliver: () => {},
  };
  return { sent, clock, path };
}

/** Our Data envelope to site sfc. */
function toSfc(seq: number, size = 10): Envelope {
  return {
    kind: EnvelopeKind.Data,
    hops: 4,
    origin: ME,
    seq,
    dest: { kind: "site", site: "sfc" },
    payload: Buffer.alloc(size, seq),
  };
}

/** sfc-2's Data envelope on nyc's lane (what our site master passes on to us). */
function laneFromSfc(seq: number, payload: Uint8Array): Envelope {
  return {
    kind: EnvelopeKind.Data,
    hops: 4,
    origin: { site: "sfc", name: "sfc-2", incarnation: SFC_INC },
    seq,
    dest: { kind: "site", site: "nyc" },
    payload,
    lane: { site: "nyc", seq, low: 1 },
  };
}

/** sfc's site master says every sfc member has our messages up to `seq`. */
function stableFromSfc(seq: number, incarnation = ME.incarnation): Envelope {
  return {
    kind: EnvelopeKind.Stable,
    hops: 4,
    origin: { site: "sfc", name: "sfc-1", incarnation: SFC_INC },
    seq: 0,
    dest: { kind: "member", site: ME.site, name: ME.name },
    payload: encodeStable({ incarnation, seq }),
  };
}

describe("DeliveryEngine with a fake path", () => {
  test("a message stays buffered until its site reports it stable, and is re-sent by timeout until then", () => {
    const { sent, clock, path } = world();
    const engine = new DeliveryEngine(path, { retransmitTimeoutMs: 1000 });
    engine.enqueue(toSfc(1));
    engine.enqueue(toSfc(2));
    expect(sent).toEqual([
      { site: "sfc", seq: 1, low: 1 },
      { site: "sfc", seq: 2, low: 1 },
    ]);
    expect(engine.stats()).toMatchObject({ bufferedMessages: 2, retransmitted: 0 });

    clock.now += 999;
    engine.tick();
    expect(sent).toHaveLength(2); // not yet: sent less than the timeout ago

    clock.now += 1;
    engine.tick();
    expect(sent.slice(2)).toEqual([
      { site: "sfc", seq: 1, low: 1, retry: true },
      { site: "sfc", seq: 2, low: 1, retry: true },
    ]);
    expect(engine.stats().retransmitted).toBe(2);

    engine.onStable(stableFromSfc(1, SFC_INC)); // another incarnation's report: ignored
    expect(engine.stats().bufferedMessages).toBe(2);
    engine.onStable(stableFromSfc(1));
    expect(engine.backlog()).toEqual([{ site: "sfc", messages: 1, bytes: expect.any(Number) }]);

    clock.now += 1000;
    engine.tick();
    expect(sent.slice(4)).toEqual([{ site: "sfc", seq: 2, low: 2, retry: true }]);

    engine.onStable(stableFromSfc(2));
    expect(engine.stats().bufferedMessages).toBe(0);
    clock.now += 5000;
    engine.tick();
    // Nothing left to re-send; the idle lane is announced instead (a lane mark: low = next seq),
    // so a member that was out of its primary view learns what it missed.
    expect(sent.slice(5)).toEqual([{ site: "sfc", seq: 2, low: 3 }]);
  });

  test("the caller may reuse its buffer: sends and re-sends carry the bytes it sent", () => {
    const { path } = world();
    const sentBytes: Buffer[] = [];
    const heldEnvelopes: Envelope[] = [];
    path.sendLane = (env, bytes) => {
      sentBytes.push(bytes);
      heldEnvelopes.push(env); // what a bridge without a route would hold on to
      return true;
    };
    const clock = { now: 100_000 };
    path.now = () => clock.now;
    const engine = new DeliveryEngine(path, { retransmitTimeoutMs: 1000 });
    const buf = Buffer.alloc(300); // one buffer, refilled for every message
    for (let i = 1; i <= 20; i++) {
      buf.fill(i);
      const env: Envelope = {
        kind: EnvelopeKind.Data,
        hops: 4,
        origin: ME,
        seq: i,
        dest: { kind: "site", site: "sfc" },
        payload: buf,
      };
      engine.enqueue(env);
    }
    buf.fill(0xee);
    clock.now += 1000;
    engine.tick(); // all 20 re-sent
    expect(sentBytes).toHaveLength(40);
    for (const [n, bytes] of sentBytes.entries()) {
      const i = (n % 20) + 1;
      const d = decodeEnvelope(bytes);
      expect([d.seq, d.lane?.seq, Buffer.from(d.payload).equals(Buffer.alloc(300, i))]).toEqual([i, i, true]);
      expect(Buffer.from(heldEnvelopes[n]!.payload).equals(Buffer.alloc(300, i))).toBe(true);
    }
  });

  test("a member that delivered EARLY_REPORT_MESSAGES lane positions reports them at the end of the turn, not at the next tick", async () => {
    const { path } = world();
    const acks: Envelope[] = [];
    path.sendToMember = (m, bytes) => {
      expect(m).toBe(SM);
      acks.push(decodeEnvelope(bytes));
    };
    const engine = new DeliveryEngine(path);
    engine.onView(VIEW);
    const fromSfc = (seq: number) => laneFromSfc(seq, Buffer.alloc(8, seq));
    for (let i = 1; i < EARLY_REPORT_MESSAGES; i++) engine.onLane(fromSfc(i));
    await new Promise((resolve) => setImmediate(resolve));
    expect(acks).toHaveLength(0); // below the threshold: the tick reports
    engine.onLane(fromSfc(EARLY_REPORT_MESSAGES));
    expect(acks).toHaveLength(0); // not inside the turn that delivered
    await new Promise((resolve) => setImmediate(resolve));
    expect(acks.map((a) => [a.kind, decodeAck(a.payload).marks])).toEqual([
      [EnvelopeKind.Ack, [{ site: "sfc", name: "sfc-2", incarnation: SFC_INC, seq: EARLY_REPORT_MESSAGES }]],
    ]);
    engine.close();
  });

  test("a message held back out of order keeps a copy of its payload in memory of its own", () => {
    const { path } = world();
    const delivered: Envelope[] = [];
    path.deliver = (env) => delivered.push(env);
    const engine = new DeliveryEngine(path);
    engine.onView(VIEW);
    const read = Buffer.alloc(64 * 1024, 0xaa); // what one socket read brought, reused afterwards
    const fromSfc = (seq: number) => laneFromSfc(seq, read.subarray(seq * 100, seq * 100 + 100));
    for (let seq = 2; seq <= 40; seq++) engine.onLane(fromSfc(seq)); // held: 1 is missing
    read.fill(0); // the connection reuses its buffer
    engine.onLane(fromSfc(1));
    expect(delivered.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const e of delivered.slice(1)) {
      expect(Buffer.from(e.payload).equals(Buffer.alloc(100, 0xaa))).toBe(true);
      expect(e.payload.buffer.byteLength).toBe(100);
      expect(Buffer.isBuffer(e.payload)).toBe(true); // like the payloads that were not held
    }
    engine.close();
  });

  test("a site master certifies what a report advances at the end of the turn it arrived in", async () => {
    const { path } = world();
    // We are nyc-1, the site master; nyc-2 reports.
    path.isMe = (m) => m.uuid === SM.uuid;
    path.forwarder = () => SM;
    const stables: [string, Uint8Array][] = [];
    path.sendStable = (to, payload) => stables.push([to.name, payload]);
    const engine = new DeliveryEngine(path);
    engine.onView(VIEW);
    const origin = { site: "sfc", name: "sfc-2", incarnation: SFC_INC };
    engine.tick(); // our own (full) report from this view
    const report = (seq: number) => engine.onAck(SELF, ackEnvelope(ME, viewTag(VIEW), [{ ...origin, seq }]));
    // Our own position must be known too: we delivered nothing, so feed ours through the window.
    for (let i = 1; i <= 10; i++) engine.onLane(laneFromSfc(i, Buffer.alloc(1)));
    engine.tick(); // reports our 10 to ourselves; nyc-2 has not reported: nothing stable yet
    expect(stables).toHaveLength(0);
    report(7);
    expect(stables).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(stables.map(([to, p]) => [to, decodeStable(p)])).toEqual([
      ["sfc-2", { incarnation: SFC_INC, seq: 7 }],
    ]);
    engine.close();
  });

  test("a full buffer refuses with BUFFER_FULL and emits drain once stability frees half of it", () => {
    const { clock, path } = world();
    const engine = new DeliveryEngine(path, { sendBuffer: { maxMessages: 2 } });
    let drains = 0;
    engine.on("drain", () => drains++);
    engine.enqueue(toSfc(1));
    engine.enqueue(toSfc(2));
    expect(engine.writable).toBe(false);
    expect(() => engine.admit({ kind: "site", site: "sfc" }, 10)).toThrow(RelayError);
    expect(engine.stats().sendsRefused).toBe(1);
    engine.admit({ kind: "site", site: "nyc" }, 10); // our own site: not buffered, never refused

    clock.now += 250;
    engine.onStable(stableFromSfc(1));
    expect(drains).toBe(1);
    expect(engine.writable).toBe(true);
    expect(engine.stats().blockedMs).toBe(250);
  });
});
