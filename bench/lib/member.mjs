// One relay member for the cross-site benchmarks, as its own process (forked by bench/lib/topology.mjs
// with an IPC channel). It embeds a RelayChannel from dist/ with the options it is given
// (BENCH_MEMBER, JSON) and answers the parent's requests:
//   status                    -> ready, site master?, view, sites seen
//   stream {id, dest, count, size, rate, window, stallMs}
//                             -> sends numbered messages (see payload below), paced by `rate`
//                                (msgs/s, 0 = as fast as back-pressure allows) and by a window
//                                of messages not yet delivered everywhere (credits from the parent);
//                                the reply has the channel's stats at the last send and the most
//                                messages its send buffer held during the stream (maxBuffered)
//   report {id, killAt?}      -> what this member received of stream `id`: count, duplicates, gaps,
//                                reorders, latency percentiles, largest gap in the arrival timeline
//   forget {id}               -> drops a stream's receive state
//   kv* requests              -> the replicated map `cfg.kv.map` on this member (bench/kv.mjs):
//                                kvBulk, kvSteady, kvWatch, kvLags, kvStatus (see kvRequest below)
// Payload of a bench message: "BNCH", stream id (u32), seq (u32, from 1), send time (float64 ms of
// process.hrtime, i.e. CLOCK_MONOTONIC: the same clock in every process of this machine), padding.
// The per-message work of the bench itself is kept small (no BigInt, no DataView): a profile had
// it at ~10 % of a receiver's CPU and ~3 % of the sender's, counted in the relay's CPU per message.
// The member exits when the parent goes away (IPC disconnect), so nothing outlives a bench run.
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import path from "node:path";

const cfg = JSON.parse(process.env.BENCH_MEMBER ?? "{}");
const { RelayChannel } = await import(path.join(cfg.dist, "runtime/relay/channel.js"));
const { RelayError } = await import(path.join(cfg.dist, "runtime/relay/errors.js"));
const { StaticDiscovery } = await import(path.join(cfg.dist, "runtime/cluster/discovery.js"));
const { pino } = await import("pino");

const MAGIC = 0x424e4348; // "BNCH"
const HEADER = 20;
const nowNs = () => process.hrtime.bigint();
/** CLOCK_MONOTONIC in ms, as a double (sub-µs resolution) without a BigInt. */
const monoMs = () => {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
};
const nowMs = monoMs;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.on("disconnect", () => process.exit(0));

const log = cfg.logFile
  ? pino(
      { level: "warn", base: { node: cfg.name, site: cfg.site } },
      createWriteStream(cfg.logFile, { flags: "a" }),
    )
  : pino({ level: "silent" });

const ch = new RelayChannel({
  site: cfg.site,
  cluster: cfg.cluster,
  name: cfg.name,
  discovery: new StaticDiscovery(cfg.members),
  routers: cfg.routers,
  bindAddr: "127.0.0.1",
  bindPort: cfg.port,
  bridgeGroup: cfg.bridgeGroup,
  reliable: cfg.reliable,
  logger: log,
});

// ---- receiving ----

/** Growable Float64 array (arrival times, latencies): no per-message objects. */
class Series {
  a = new Float64Array(1024);
  n = 0;
  push(x) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  view() {
    return this.a.subarray(0, this.n);
  }
}

/** Receive state of one stream from one sender. */
function newStream(from, firstSeq) {
  return {
    from,
    firstSeq,
    count: 0,
    next: firstSeq,
    duplicates: 0,
    gaps: 0,
    missing: 0,
    firstAt: 0,
    lastAt: 0,
    maxLatency: 0,
    arrivals: new Series(),
    latencies: new Series(),
  };
}
const streams = new Map(); // id -> state (one sender per stream id)
let progressDirty = new Set();

ch.on("message", (m) => {
  const p = m.payload;
  if (p.length < HEADER) return;
  const b = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (b.readUInt32BE(0) !== MAGIC) return;
  const id = b.readUInt32BE(4);
  const seq = b.readUInt32BE(8);
  const sentMs = b.readDoubleBE(12);
  const atMs = monoMs();
  let s = streams.get(id);
  if (!s) {
    // A member that joins while a stream runs starts with the first message it gets.
    s = newStream(`${m.from.name}:${m.from.site}`, seq);
    streams.set(id, s);
  }
  if (seq < s.next) {
    s.duplicates++;
    return;
  }
  if (seq > s.next) {
    s.gaps++;
    s.missing += seq - s.next;
  }
  s.next = seq + 1;
  s.count++;
  if (s.count === 1) s.firstAt = atMs;
  s.lastAt = atMs;
  const latency = atMs - sentMs;
  if (latency > s.maxLatency) s.maxLatency = latency;
  if (cfg.record !== false) {
    s.arrivals.push(atMs);
    s.latencies.push(latency);
  }
  progressDirty.add(id);
});

// Progress to the parent (the sender's window credits), at most every 5 ms.
setInterval(() => {
  if (progressDirty.size === 0 || !process.connected) return;
  const ids = progressDirty;
  progressDirty = new Set();
  for (const id of ids) {
    const s = streams.get(id);
    if (s) process.send({ type: "progress", id, count: s.count, next: s.next });
  }
}, 5).unref();

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function report(id, killAt) {
  const s = streams.get(id);
  if (!s) return { firstSeq: null, count: 0, next: 1, duplicates: 0, gaps: 0, missing: 0, latency: {} };
  const lat = Float64Array.from(s.latencies.view()).sort();
  const arr = s.arrivals.view();
  // Largest hole in the arrival timeline; with a kill, only holes that end after the kill count
  // (the hole includes the time from the last message before the kill).
  let gap = 0;
  let gapEnd = 0;
  for (let i = 1; i < arr.length; i++) {
    if (killAt !== undefined && arr[i] < killAt) continue;
    const d = arr[i] - arr[i - 1];
    if (d > gap) {
      gap = d;
      gapEnd = arr[i];
    }
  }
  return {
    from: s.from,
    firstSeq: s.firstSeq,
    count: s.count,
    next: s.next,
    duplicates: s.duplicates,
    gaps: s.gaps,
    missing: s.missing,
    firstAt: s.firstAt,
    lastAt: s.lastAt,
    latency: { n: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), max: s.maxLatency },
    maxGap: gap,
    // How long after the kill the first message after that hole arrived.
    recoveredAfterKill: killAt !== undefined && gapEnd ? gapEnd - killAt : null,
  };
}

// ---- sending ----

const credits = new Map(); // stream id -> delivered everywhere (min over the receivers)
const creditWaiters = new Map();

function waitCredit(id, need, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      creditWaiters.delete(id);
      resolve(false);
    }, timeoutMs);
    creditWaiters.set(id, {
      need,
      resolve: (ok) => {
        clearTimeout(timer);
        resolve(ok);
      },
    });
  });
}

async function stream({ id, dest, count, size, rate = 0, window = 0, stallMs = 10_000 }) {
  const body = Buffer.alloc(Math.max(size, HEADER), 0x61);
  const d =
    dest.kind === "all"
      ? { kind: "all" }
      : dest.kind === "member"
        ? { kind: "member", site: dest.site, name: dest.name }
        : { kind: "site", site: dest.site };
  let refused = 0;
  let blockedMs = 0;
  let maxBuffered = 0;
  const t0 = nowMs();
  let firstMs = 0;
  credits.set(id, 0);
  for (let seq = 1; seq <= count; seq++) {
    if (rate > 0) {
      const due = t0 + ((seq - 1) * 1000) / rate;
      const wait = due - nowMs();
      if (wait > 1) await sleep(wait);
    } else if (seq % 64 === 0) {
      await new Promise((r) => setImmediate(r));
    }
    if (window > 0 && seq - (credits.get(id) ?? 0) > window) {
      const b0 = nowMs();
      if (!(await waitCredit(id, seq - window, stallMs)))
        return {
          id,
          sent: seq - 1,
          error: `no progress from the receivers for ${stallMs} ms`,
          refused,
          blockedMs,
        };
      blockedMs += nowMs() - b0;
    }
    const payload = Buffer.allocUnsafe(body.length);
    body.copy(payload, HEADER, HEADER);
    payload.writeUInt32BE(MAGIC, 0);
    payload.writeUInt32BE(id, 4);
    payload.writeUInt32BE(seq, 8);
    // The send buffer's fill (reliable mode), sampled: stats() builds a large object (every 64
    // messages it was ~6 % of the sender's CPU in a profile, a cost of the bench, not the relay).
    if (seq % 1024 === 0) maxBuffered = Math.max(maxBuffered, ch.stats().bufferedMessages);
    for (let attempt = 0; ; attempt++) {
      const t = monoMs();
      payload.writeDoubleBE(t, 12);
      try {
        ch.send(d, payload);
        if (firstMs === 0) firstMs = t;
        break;
      } catch (err) {
        // Back-pressure: the relay's send buffer (reliable) or the local link (bare) is full.
        const full = err?.code === "BUFFER_FULL";
        if (full) maxBuffered = Math.max(maxBuffered, ch.stats().bufferedMessages);
        if (!full || attempt > 100_000)
          return { id, sent: seq - 1, error: String(err?.message ?? err), refused, blockedMs };
        refused++;
        const b0 = nowMs();
        if (err instanceof RelayError) await Promise.race([once(ch, "drain"), sleep(50)]);
        else await sleep(1);
        blockedMs += nowMs() - b0;
      }
    }
  }
  const stats = ch.stats();
  return {
    id,
    sent: count,
    firstAt: firstMs,
    lastSendAt: nowMs(),
    refused,
    blockedMs,
    stats,
    maxBuffered: Math.max(maxBuffered, stats.bufferedMessages),
  };
}

// ---- replicated map (cfg.kv = {map, options}: the map's ReplicatedMapOptions) ----

let kvMap = null;
const kvWatches = new Map(); // prefix -> { lags: Series, iterator }

/** The writer's pending keys and lag towards each backup site, sampled by kvSteady. */
function kvBacklog() {
  const b = kvMap.status().backups;
  return {
    keys: b.reduce((n, x) => n + x.pendingKeys, 0),
    lagMs: Math.max(0, ...b.map((x) => x.lagMs ?? 0)),
  };
}

async function kvRequest(msg) {
  switch (msg.type) {
    // {prefix, count, size, window, ack, fill?, stride?}: `count` puts of keys prefix + i x stride, at
    // most `window` unresolved; resolves with the time until every put resolved (ms, CLOCK_MONOTONIC
    // at start and end).
    case "kvBulk": {
      const value = Buffer.alloc(msg.size, msg.fill ?? 0x61);
      let next = 0;
      const t0 = nowMs();
      await Promise.all(
        Array.from({ length: msg.window }, async () => {
          while (next < msg.count)
            await kvMap.put(`${msg.prefix}${next++ * (msg.stride ?? 1)}`, value, { ack: msg.ack });
        }),
      );
      return { startAt: t0, endAt: nowMs() };
    }
    // {prefix, rate, count, size}: puts at a steady rate, each value starting with its write time
    // (u64 ns, CLOCK_MONOTONIC); the backlog towards the backup sites sampled every 50 ms (RPO).
    case "kvSteady": {
      const rpoKeys = [];
      const rpoLag = [];
      const sampler = setInterval(() => {
        const b = kvBacklog();
        rpoKeys.push(b.keys);
        rpoLag.push(b.lagMs);
      }, 50);
      const t0 = nowMs();
      let sent = 0;
      let refused = 0;
      while (sent < msg.count) {
        const due = Math.min(msg.count, Math.floor(((nowMs() - t0) / 1000) * msg.rate));
        while (sent < due) {
          const v = Buffer.alloc(msg.size);
          v.writeBigUInt64BE(nowNs(), 0);
          kvMap.put(`${msg.prefix}${sent++}`, v).catch(() => refused++);
        }
        await sleep(1);
      }
      clearInterval(sampler);
      return { startAt: t0, endAt: nowMs(), refused, rpoKeys, rpoLag };
    }
    // {prefix}: records, for every change under `prefix` this member sees, now - its write time.
    case "kvWatch": {
      const lags = new Series();
      const iterator = kvMap.watch(msg.prefix);
      kvWatches.set(msg.prefix, { lags, iterator });
      void (async () => {
        for await (const c of iterator) {
          const sent = Buffer.from(c.value).readBigUInt64BE(0);
          lags.push(Number(nowNs() - sent) / 1e6);
        }
      })();
      return {};
    }
    // {prefix, stop?}: how many changes the watch saw and their lags (all of them: the parent
    // takes percentiles over every writer's keys).
    case "kvLags": {
      const w = kvWatches.get(msg.prefix);
      if (!w) return { count: 0, lags: [] };
      if (msg.stop) {
        kvWatches.delete(msg.prefix);
        await w.iterator.return();
      }
      return { count: w.lags.n, lags: msg.stop ? Array.from(w.lags.view()) : [] };
    }
    case "kvStatus": {
      const s = kvMap.status();
      return {
        size: kvMap.size,
        ready: kvMap.isReady,
        digest: s.digest,
        backups: s.backups,
        syncs: s.syncs,
        has: msg.key === undefined ? undefined : kvMap.has(msg.key),
      };
    }
    default:
      return { error: `unknown request ${msg.type}` };
  }
}

// ---- requests from the parent ----

process.on("message", async (msg) => {
  const reply = (body) => process.connected && process.send({ type: "reply", rid: msg.rid, ...body });
  try {
    switch (msg.type) {
      case "credit": {
        credits.set(msg.id, Math.max(credits.get(msg.id) ?? 0, msg.delivered));
        const w = creditWaiters.get(msg.id);
        if (w && msg.delivered >= w.need) {
          creditWaiters.delete(msg.id);
          w.resolve(true);
        }
        return;
      }
      case "status": {
        const t = ch.topology();
        reply({
          ready: ch.ready,
          siteMaster: ch.isSiteMaster,
          view: ch.view ? ch.view.members.map((m) => m.name) : [],
          sites: t.sites.map((s) => s.site),
          routes: t.routes.map((r) => ({ site: r.site, up: r.up, routers: r.routers.length })),
          stats: ch.stats(),
        });
        return;
      }
      case "stream":
        reply(await stream(msg));
        return;
      case "report":
        reply(report(msg.id, msg.killAt));
        return;
      case "forget":
        streams.delete(msg.id);
        reply({});
        return;
      case "kvBulk":
      case "kvSteady":
      case "kvWatch":
      case "kvLags":
      case "kvStatus":
        reply(kvMap ? await kvRequest(msg) : { error: "no replicated map on this member (cfg.kv)" });
        return;
      case "close":
        await ch.close();
        reply({});
        setTimeout(() => process.exit(0), 10);
        return;
      default:
        reply({ error: `unknown request ${msg.type}` });
    }
  } catch (err) {
    reply({ error: String(err?.stack ?? err) });
  }
});

process.on("SIGTERM", () => {
  ch.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
});

await ch.connect();
if (cfg.kv) {
  const { KvService } = await import(path.join(cfg.dist, "runtime/kv/service.js"));
  const kv = new KvService(ch, { logger: log });
  const codec = { encode: (v) => v, decode: (b) => b };
  kvMap = kv.open(cfg.kv.map, { ...cfg.kv.options, codec });
  await kvMap.ready;
}
process.send({ type: "up", pid: process.pid, port: ch.localMember.port });
