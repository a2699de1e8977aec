// A hand-driven mesh peer for the attack and fuzz tests: a raw TCP socket that writes frames (or
// any bytes) to a member and collects the decoded frames it answers, until the member closes.
import net from "node:net";
import { type ClusterFrame, decodeFrame, encodeFrame, meshSplitter } from "../../runtime/cluster/codec.js";
import type { Member, View } from "../../runtime/cluster/member.js";

export class RawPeer {
  /** Every peer not yet destroyed (destroyAll() in afterEach). */
  static readonly open = new Set<RawPeer>();
  readonly socket: net.Socket;
  readonly frames: ClusterFrame[] = [];
  closed = false;
  readonly #closedP: Promise<void>;
  readonly #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    const splitter = meshSplitter();
    socket.on("data", (d) => {
      try {
        splitter.push(d, { frame: (f) => this.frames.push(decodeFrame(f.subarray(4))) });
      } catch {
        socket.destroy();
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on("error", () => {});
    RawPeer.open.add(this);
    this.#closedP = new Promise((resolve) =>
      socket.on("close", () => {
        this.closed = true;
        RawPeer.open.delete(this);
        for (const w of this.#waiters.splice(0)) w();
        resolve();
      }),
    );
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(new RawPeer(s)));
      s.once("error", reject);
    });
  }

  send(f: ClusterFrame | Buffer): void {
    if (!this.closed) this.socket.write(Buffer.isBuffer(f) ? f : encodeFrame(f));
  }

  /** Resolves once a frame of `type` arrived (or the socket closed); the frame or null. */
  async next(type: ClusterFrame["type"], timeoutMs = 5000): Promise<ClusterFrame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => x.type === type);
      if (f) return f;
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** True once the member closed the connection within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#closedP, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  static destroyAll(): void {
    for (const p of RawPeer.open) p.destroy();
  }
}

/** A member that no cluster admitted: the attacker's identity. */
export function fakeMember(name = "nyc-9", port = 1): Member {
  return { name, site: "nyc", uuid: "99999999-9999-4999-8999-999999999999", host: "127.0.0.1", port };
}

/** The bytes of a VIEW frame with any u32 seq (the encoder refuses out-of-range ones). */
export function viewFrameWithSeq(view: View, seq: number): Buffer {
  const f = Buffer.from(encodeFrame({ type: "view", view: { ...view, id: { ...view.id, seq: 1 } } }));
  f.writeUInt32BE(seq >>> 0, 5);
  return f;
}
