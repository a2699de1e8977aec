// A small but real GossipRouter stand-in for the tunnel client's unit tests: a net.Server on
// loopback that speaks the protocol through the project's own codec, with switches to misbehave
// (stay silent, drop every connection, send garbage). Not a test file itself.
import net from "node:net";
import tls from "node:tls";
import { addressKey, decodeBody } from "../../runtime/protocol/codec.js";
import { getMbrsRspFrame, heartbeatFrame, suspectFrame } from "../../runtime/protocol/frames.js";
import { FrameSplitter } from "../../runtime/protocol/splitter.js";
import { type Address, type GossipData, GossipType, type PingData } from "../../runtime/protocol/types.js";

interface Registration {
  readonly socket: net.Socket;
  readonly addr: Address;
  readonly name: string | null;
  readonly physical: Address | null;
}

/** One frame the fake router received, with the connection it came on (numbered from 0). */
export interface Received {
  readonly conn: number;
  readonly data: GossipData;
}

export class FakeRouter {
  readonly #server: net.Server;
  readonly #sockets = new Map<net.Socket, number>();
  readonly #groups = new Map<string, Map<string, Registration>>();
  #nextConn = 0;
  /** Every frame received, in order. */
  readonly received: Received[] = [];
  /** TLS handshakes the server refused. */
  readonly tlsErrors: string[] = [];
  /** GRACEFUL_CLOSE markers received. */
  gracefulCloses = 0;
  /** Answer HEARTBEAT frames (the tunnel client waits for the first answer before it is "registered"). */
  answerHeartbeats = true;
  /** Answer GET_MBRS (a JGroups router answers nothing for an unknown group). */
  answerGetMbrs = true;
  /** Stop reading from clients (their writes back up). */
  #paused = false;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Listens on 127.0.0.1:port (0 = ephemeral); with `tlsOptions`, a TLS server (e.g. requestCert for mutual auth). */
  static async start(port = 0, tlsOptions?: tls.TlsOptions): Promise<FakeRouter> {
    let router!: FakeRouter;
    const server = tlsOptions
      ? tls.createServer(tlsOptions, (s) => router.#accept(s))
      : net.createServer((s) => router.#accept(s));
    if (tlsOptions) server.on("tlsClientError", (err) => router.tlsErrors.push(err.message));
    router = new FakeRouter(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    return router;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get connectionCount(): number {
    return this.#sockets.size;
  }

  frames(type: GossipType): GossipData[] {
    return this.received.filter((r) => r.data.type === type).map((r) => r.data);
  }

  /** Destroys every client connection, as a crashed router would (the server keeps listening). */
  dropAll(): void {
    for (const s of this.#sockets.keys()) s.destroy();
  }

  /** Writes raw bytes to every client connection. */
  sendRaw(bytes: Buffer): void {
    for (const s of this.#sockets.keys()) s.write(bytes);
  }

  /** Sends SUSPECT(group, addr) to every client connection. */
  sendSuspect(group: string, addr: Address): void {
    this.sendRaw(suspectFrame(group, addr));
  }

  pauseReading(): void {
    this.#paused = true;
    for (const s of this.#sockets.keys()) s.pause();
  }

  resumeReading(): void {
    this.#paused = false;
    for (const s of this.#sockets.keys()) s.resume();
  }

  /** Closes the server and every connection. */
  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    const id = this.#nextConn++;
    this.#sockets.set(socket, id);
    if (this.#paused) socket.pause();
    const splitter = new FrameSplitter();
    let graceful = false;
    socket.on("data", (chunk: Buffer) => {
      try {
        splitter.push(chunk, {
          frame: (frame) => this.#handle(socket, id, frame),
          gracefulClose: () => {
            graceful = true;
            this.gracefulCloses++;
            this.#removeAll(socket);
            socket.end();
          },
        });
      } catch {
        socket.destroy();
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.#sockets.delete(socket);
      const lost = this.#removeAll(socket);
      if (graceful) return;
      for (const [group, addr] of lost) {
        for (const reg of this.#groups.get(group)?.values() ?? [])
          reg.socket.write(suspectFrame(group, addr));
      }
    });
  }

  #handle(socket: net.Socket, conn: number, frame: Buffer): void {
    const data = decodeBody(frame.subarray(4));
    this.received.push({ conn, data });
    switch (data.type) {
      case GossipType.Register: {
        const group = this.#groups.get(data.group!) ?? new Map<string, Registration>();
        this.#groups.set(data.group!, group);
        group.set(addressKey(data.addr!), {
          socket,
          addr: data.addr!,
          name: data.logicalName,
          physical: data.physicalAddr,
        });
        break;
      }
      case GossipType.Unregister:
        this.#groups.get(data.group!)?.delete(addressKey(data.addr!));
        break;
      case GossipType.Heartbeat:
        if (this.answerHeartbeats) socket.write(heartbeatFrame());
        break;
      case GossipType.GetMbrs: {
        if (!this.answerGetMbrs) break;
        const ping = (group: Map<string, Registration>): PingData[] =>
          [...group.values()].map((r) => ({
            member: r.addr,
            flags: 1,
            logicalName: r.name,
            physicalAddr: r.physical,
            mbrs: null,
          }));
        if (data.group !== null) {
          socket.write(getMbrsRspFrame(data.group, ping(this.#groups.get(data.group) ?? new Map()), true));
          break;
        }
        const names = [...this.#groups.keys()];
        names.forEach((name, i) => {
          const last = i === names.length - 1;
          socket.write(getMbrsRspFrame(`<<all-groups>>:${name}`, ping(this.#groups.get(name)!), last));
        });
        if (names.length === 0) socket.write(getMbrsRspFrame(null, [], true));
        break;
      }
      case GossipType.Message: {
        const group = this.#groups.get(data.group!);
        if (!group) break;
        const copy = Buffer.from(frame);
        if (data.addr === null) {
          for (const r of group.values()) r.socket.write(copy);
        } else {
          group.get(addressKey(data.addr))?.socket.write(copy);
        }
        break;
      }
      default:
        break;
    }
  }

  /** Removes every registration of a connection; returns the (group, addr) pairs removed. */
  #removeAll(socket: net.Socket): Array<[string, Address]> {
    const removed: Array<[string, Address]> = [];
    for (const [name, group] of this.#groups) {
      for (const [key, reg] of group) {
        if (reg.socket !== socket) continue;
        group.delete(key);
        removed.push([name, reg.addr]);
      }
      if (group.size === 0) this.#groups.delete(name);
    }
    return removed;
  }
}
