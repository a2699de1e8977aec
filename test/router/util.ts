// Router test helpers: a raw protocol client over a real socket (plain or TLS), an in-process
// router on an ephemeral loopback port with silent logs, and bounded waits.
import net from "node:net";
import tls from "node:tls";
import { pino } from "pino";
import { decodeBody } from "../../runtime/protocol/codec.js";
import { GRACEFUL_CLOSE_FRAME, messageFrame, registerFrame } from "../../runtime/protocol/frames.js";
import { FrameSplitter } from "../../runtime/protocol/splitter.js";
import { type Address, type GossipData, GossipType, type UuidAddress } from "../../runtime/protocol/types.js";
import type { RouterOptions } from "../../runtime/router/options.js";
import { GossipRouter } from "../../runtime/router/router.js";
import { waitFor } from "../helpers/wait.js";

export const GC_HEX = "fffffffb";

/** A deterministic UUID address. */
export function uuid(n: number): UuidAddress {
  return { kind: "uuid", uuid: `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}` };
}

export function ip(port: number): Address {
  return { kind: "ip", host: "127.0.0.1", port };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts a router on 127.0.0.1, ephemeral port, no HTTP unless asked, logs silenced. */
export async function startRouter(
  options: RouterOptions = {},
): Promise<{ router: GossipRouter; port: number }> {
  const router = new GossipRouter(
    { bind: "127.0.0.1", port: 0, httpPort: null, ...options },
    pino({ level: process.env["ROUTER_TEST_LOG"] ?? "silent" }),
  );
  const { port } = await router.start();
  return { router, port };
}

/** One received item: a whole frame (hex kept for byte comparisons) or the GRACEFUL_CLOSE marker. */
export interface Received {
  readonly raw: Buffer;
  readonly hex: string;
  /** null for GRACEFUL_CLOSE. */
  readonly data: GossipData | null;
}

export class TestClient {
  readonly received: Received[] = [];
  readonly #splitter = new FrameSplitter();
  #ended = false;
  #closed = false;
  /** Set when the router sent bytes we could not parse. */
  decodeError: Error | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      try {
        this.#splitter.push(chunk, {
          frame: (f) => {
            const raw = Buffer.from(f);
            this.received.push({ raw, hex: raw.toString("hex"), data: decodeBody(raw.subarray(4)) });
          },
          gracefulClose: () =>
            this.received.push({ raw: Buffer.from(GRACEFUL_CLOSE_FRAME), hex: GC_HEX, data: null }),
        });
      } catch (err) {
        this.decodeError = err as Error;
      }
    });
    socket.on("end", () => {
      // Like a real client: once the router has closed its side, close ours.
      this.#ended = true;
      socket.end();
    });
    socket.on("close", () => {
      this.#closed = true;
    });
    socket.on("error", () => {});
  }

  static connect(port: number, tlsOptions?: tls.ConnectionOptions): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsOptions
        ? tls.connect({ host: "127.0.0.1", port, ...tlsOptions }, () => resolve(new TestClient(socket)))
        : net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () =>
            resolve(new TestClient(socket)),
          );
      socket.setNoDelay(true);
      socket.once("error", reject);
    });
  }

  get ended(): boolean {
    return this.#ended;
  }
  get closed(): boolean {
    return this.#closed;
  }

  send(...frames: Buffer[]): void {
    for (const f of frames) this.socket.write(f);
  }

  register(group: string, addr: Address, name: string | null = null, phys: Address | null = null): void {
    this.send(registerFrame(group, addr, name, phys));
  }

  message(group: string, dest: Address | null, sender: Address | null, payload: string | Buffer): Buffer {
    const f = messageFrame(group, dest, sender, typeof payload === "string" ? Buffer.from(payload) : payload);
    this.send(f);
    return f;
  }

  /** Received frames of one type. */
  ofType(type: GossipType): GossipData[] {
    return this.received.filter((r) => r.data?.type === type).map((r) => r.data!);
  }

  /** Payloads of received MESSAGE frames, as text. */
  texts(): string[] {
    return this.ofType(GossipType.Message).map((d) => Buffer.from(d.payload).toString());
  }

  get gracefulCloses(): number {
    return this.received.filter((r) => r.data === null).length;
  }

  async waitFrames(n: number, what = `${n} frames`, timeoutMs = 5_000): Promise<void> {
    await waitFor(what, () => this.received.length >= n, { timeoutMs: timeoutMs });
  }

  async waitType(type: GossipType, n = 1, timeoutMs = 5_000): Promise<GossipData[]> {
    await waitFor(`${n} frame(s) of type ${GossipType[type]}`, () => this.ofType(type).length >= n, {
      timeoutMs: timeoutMs,
      // Slow or stuck? How far it got says which.
      onTimeout: () =>
        `got ${this.ofType(type).length} of ${n}; this client ${this.#closed ? "closed" : "open"}`,
    });
    return this.ofType(type);
  }

  async waitClosed(timeoutMs = 5_000): Promise<void> {
    await waitFor("the router to close the connection", () => this.#closed || this.#ended, {
      timeoutMs: timeoutMs,
    });
  }

  /** Orderly leave like TUNNEL: GRACEFUL_CLOSE marker, then FIN. */
  leave(): void {
    this.socket.end(GRACEFUL_CLOSE_FRAME);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Closes every client and stops the router (for afterEach). */
export async function teardown(router: GossipRouter | null, clients: TestClient[]): Promise<void> {
  for (const c of clients) c.destroy();
  clients.length = 0;
  await router?.stop();
}

/** One router per test and the clients connected to it. */
export class RouterHarness {
  #router: GossipRouter | null = null;
  port = 0;
  readonly clients: TestClient[] = [];

  get router(): GossipRouter {
    if (!this.#router) throw new Error("router not started");
    return this.#router;
  }

  async start(options: RouterOptions = {}): Promise<GossipRouter> {
    const { router, port } = await startRouter(options);
    this.#router = router;
    this.port = port;
    return router;
  }

  /** A client connected to the router (TLS when options are given); closed by teardown(). */
  async client(tlsOptions?: tls.ConnectionOptions): Promise<TestClient> {
    const c = await TestClient.connect(this.port, tlsOptions);
    this.clients.push(c);
    return c;
  }

  /** Waits until the router holds exactly `n` registrations. */
  async registered(n: number): Promise<void> {
    await waitFor(`${n} registrations`, () => this.router.registry.size === n);
  }

  async teardown(): Promise<void> {
    await teardown(this.#router, this.clients);
    this.#router = null;
  }
}

/** A harness for the current test file: torn down after each test; started before each one with `options`. */
export function routerHarness(options?: RouterOptions): RouterHarness {
  const h = new RouterHarness();
  if (options) beforeEach(() => h.start(options).then(() => undefined));
  afterEach(() => h.teardown());
  return h;
}
