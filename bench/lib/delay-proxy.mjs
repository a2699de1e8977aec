// A userspace TCP delay proxy: a stand-in for `tc netem delay` where kernel netem is not available
// (issue 14, "Across a continent": the real sites are 35-40 ms apart one way).
//
//   const p = await startDelayProxy({ targetHost: "127.0.0.1", targetPort: 12001, delayMs: 40 });
//   // clients connect to 127.0.0.1:p.port instead of the target
//   p.setDelay(0); p.stats(); await p.close();
//
// Every accepted connection dials the target and forwards bytes both ways. Each chunk read from
// one side is written to the other `delayMs` after it was read, in order: one FIFO queue and one
// timer per direction (armed for the head only, so a busy stream costs one timer, not one per
// chunk). `delayMs` is per direction, so a request/answer round trip through one proxy costs
// 2 x delayMs. setDelay() applies to chunks read from then on; queued chunks keep their release
// time, and a shorter delay never lets a chunk overtake an older one (FIFO).
//
// Bounded: a direction holding more than `maxQueuedBytes` not yet released stops reading its source
// (socket.pause) until it is under half of that again; a destination whose write() returns false
// also pauses its source until 'drain'. Memory is therefore bounded by about maxQueuedBytes plus one
// socket buffer per direction, whatever the peers do; TCP flow control carries the pressure back.
//
// End and errors propagate: an 'end' (FIN) from one side ends the other side once the bytes queued
// before it are released (the FIN is delayed like data); an error or a close of either socket
// destroys both at once (a reset is not delayed). No socket event can throw out of its handler.
// What it does not model: loss, jitter, bandwidth limits, the delay of the TCP handshake (connect()
// to the proxy completes at once; the dial to the target happens then).
import net from "node:net";
import { performance } from "node:perf_hooks";

const DEFAULT_MAX_QUEUED = 8 * 1024 * 1024;

/**
 * @param {{listenHost?: string, listenPort?: number, targetHost: string, targetPort: number,
 *   delayMs?: number, maxQueuedBytes?: number}} o
 * @returns {Promise<{port: number, setDelay(ms: number): void, stats(): object, close(): Promise<void>}>}
 */
export async function startDelayProxy(o) {
  const { listenHost = "127.0.0.1", listenPort = 0, targetHost, targetPort } = o;
  let delayMs = checkDelay(o.delayMs ?? 0);
  const maxQueued = o.maxQueuedBytes ?? DEFAULT_MAX_QUEUED;
  if (!Number.isInteger(targetPort) || targetPort <= 0 || targetPort > 65535)
    throw new RangeError(`delay proxy: targetPort must be a TCP port, got ${targetPort}`);
  if (!Number.isFinite(maxQueued) || maxQueued < 1)
    throw new RangeError(`delay proxy: maxQueuedBytes must be positive, got ${maxQueued}`);

  const st = {
    accepted: 0,
    open: 0,
    dialFailures: 0,
    bytesToTarget: 0,
    bytesToClient: 0,
    chunks: 0,
    /** Shortest time a released chunk was held (ms; Infinity before the first). */
    minHeldMs: Number.POSITIVE_INFINITY,
    maxHeldMs: 0,
    /** Most bytes one direction ever held unreleased. */
    maxQueuedBytes: 0,
    /** Times a source was paused because its queue was over the bound or its destination full. */
    pauses: 0,
  };
  const conns = new Set();
  const env = { delay: () => delayMs, maxQueued, st };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    st.accepted++;
    st.open++;
    const target = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay: true });
    const conn = { client, target, closed: false, pipes: [] };
    conns.add(conn);
    const teardown = () => {
      if (conn.closed) return;
      conn.closed = true;
      conns.delete(conn);
      st.open--;
      for (const p of conn.pipes) p.stop();
      client.destroy();
      target.destroy();
    };
    conn.pipes = [
      new Pipe(client, target, "bytesToTarget", env, teardown),
      new Pipe(target, client, "bytesToClient", env, teardown),
    ];
    client.on("error", teardown);
    target.on("error", (err) => {
      if (err?.code === "ECONNREFUSED") st.dialFailures++;
      teardown();
    });
    // A clean close of one socket (both halves done) can come while the other direction still
    // holds bytes for the other socket: only an error, or both sockets closed, ends the pair.
    let cleanCloses = 0;
    const onClose = (hadError) => {
      if (hadError || ++cleanCloses === 2) teardown();
    };
    client.on("close", onClose);
    target.on("close", onClose);
  });
  server.on("error", () => {}); // after listening: nothing to report to anyone; the port stays.

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenPort, listenHost, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    port: server.address().port,
    setDelay(ms) {
      delayMs = checkDelay(ms);
    },
    stats() {
      return { ...st, delayMs };
    },
    async close() {
      const closed = new Promise((resolve) => server.close(() => resolve()));
      for (const c of [...conns]) {
        c.closed = true;
        for (const p of c.pipes) p.stop();
        c.client.destroy();
        c.target.destroy();
      }
      conns.clear();
      st.open = 0;
      await closed;
    },
  };
}

function checkDelay(ms) {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delay proxy: delayMs must be >= 0, got ${ms}`);
  return ms;
}

/** One direction of a connection: bytes read from `src`, released to `dst` after the delay. */
class Pipe {
  /** @type {{chunk: Buffer, readAt: number, due: number}[]} */
  #queue = [];
  #head = 0; // index of the head in #queue (shift() on a long array is O(n))
  #queued = 0;
  #timer = null;
  #writeBlocked = false;
  #paused = false;
  #srcEnded = false;
  #stopped = false;

  constructor(src, dst, counter, env, teardown) {
    this.src = src;
    this.dst = dst;
    this.counter = counter;
    this.env = env;
    this.teardown = teardown;
    src.on("data", (chunk) => this.#guard(() => this.#onData(chunk)));
    src.on("end", () =>
      this.#guard(() => {
        this.#srcEnded = true;
        this.#release();
      }),
    );
    dst.on("drain", () =>
      this.#guard(() => {
        this.#writeBlocked = false;
        this.#release();
      }),
    );
  }

  stop() {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
  }

  #guard(fn) {
    if (this.#stopped) return;
    try {
      fn();
    } catch {
      this.teardown();
    }
  }

  #onData(chunk) {
    const now = performance.now();
    this.#queue.push({ chunk, readAt: now, due: now + this.env.delay() });
    this.#queued += chunk.length;
    const st = this.env.st;
    if (this.#queued > st.maxQueuedBytes) st.maxQueuedBytes = this.#queued;
    this.#release();
  }

  /** Writes every chunk that is due (in one corked batch), then re-arms the timer for the head. */
  #release() {
    if (this.#stopped) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const st = this.env.st;
    const now = performance.now();
    let corked = false;
    while (this.#head < this.#queue.length && !this.#writeBlocked) {
      const e = this.#queue[this.#head];
      if (e.due > now) break;
      this.#queue[this.#head++] = undefined;
      this.#queued -= e.chunk.length;
      const held = now - e.readAt;
      if (held < st.minHeldMs) st.minHeldMs = held;
      if (held > st.maxHeldMs) st.maxHeldMs = held;
      st.chunks++;
      st[this.counter] += e.chunk.length;
      if (!corked) {
        this.dst.cork();
        corked = true;
      }
      if (!this.dst.write(e.chunk)) this.#writeBlocked = true;
    }
    if (corked) this.dst.uncork();
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#flow();
    const empty = this.#head === this.#queue.length;
    if (empty && this.#srcEnded) {
      // Everything read before the FIN is out: pass the FIN on.
      if (!this.dst.writableEnded) this.dst.end();
      return;
    }
    if (!empty && !this.#writeBlocked) {
      // Node timers may fire up to ~1 ms early against performance.now(): the loop re-checks and
      // re-arms, so nothing is ever released before its time.
      const wait = Math.max(1, Math.ceil(this.#queue[this.#head].due - now));
      this.#timer = setTimeout(() => this.#guard(() => this.#release()), wait);
    }
  }

  /** Pauses the source while the queue is over the bound or the destination is full. */
  #flow() {
    const over = this.#queued > this.env.maxQueued || (this.#paused && this.#queued > this.env.maxQueued / 2);
    const shouldPause = over || this.#writeBlocked;
    if (shouldPause && !this.#paused) {
      this.#paused = true;
      this.env.st.pauses++;
      this.src.pause();
    } else if (!shouldPause && this.#paused) {
      this.#paused = false;
      this.src.resume();
    }
  }
}
