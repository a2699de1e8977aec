// A bounds-checked cursor over a body, shared by the GossipRouter codec and the mesh codec. Every
// read checks the remaining bytes first and throws the codec's "truncated" error instead of
// reading past the end, so decoders built on it are total.
import { ProtocolError } from "./types.js";

/** The error a read past the end throws: `what` names the field, `n` the bytes it needed. */
export type TruncatedError = (
  what: string,
  n: number,
  at: { readonly pos: number; readonly end: number },
) => Error;

const protocolTruncated: TruncatedError = (what, n, at) =>
  new ProtocolError("truncated", `${what}: needs ${n} bytes at offset ${at.pos}, ${at.end - at.pos} left`);

/** V8's typed_array_max_size_in_heap: smaller typed arrays live on the JS heap. */
const ON_HEAP_BYTES = 64;

export class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  readonly #truncated: TruncatedError;

  /** `truncated` defaults to the GossipRouter codec's ProtocolError("truncated"). */
  constructor(buf: Uint8Array, pos = 0, end = buf.length, truncated: TruncatedError = protocolTruncated) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.#truncated = truncated;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws unless `n` more bytes are available; `what` names the field in the error. */
  need(n: number, what: string): void {
    if (n > this.end - this.pos) throw this.#truncated(what, n, this);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  i16(what: string): number {
    return (this.u16(what) << 16) >> 16;
  }

  u16(what: string): number {
    this.need(2, what);
    const b = this.buf;
    const v = (b[this.pos]! << 8) | b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  u32(what: string): number {
    return this.i32(what) >>> 0;
  }

  /** A copy of the next `n` bytes (never a view into the caller's buffer). */
  copy(n: number, what: string): Uint8Array {
    const src = this.bytes(n, what);
    // Up to 64 bytes V8 keeps a typed array's bytes on its heap (cheapest); above that a new
    // Uint8Array is a new ArrayBuffer (a backing store, zeroed, and GC bookkeeping), where
    // allocUnsafe takes the copy from Node's shared pool. Every byte is overwritten either way.
    const out = n <= ON_HEAP_BYTES ? new Uint8Array(n) : Buffer.allocUnsafe(n);
    out.set(src);
    return out;
  }

  /**
   * A copy of the next `n` bytes in memory of its own, for bytes that are kept for long (a
   * replicated map's values). `copy` may take a slice of Node's shared 8 KiB pool, and one kept
   * slice keeps its whole slab alive: a store that keeps one value out of every slab of pooled
   * copies holds up to 80 times its data (test/kv/value-memory.test.ts).
   */
  copyOwned(n: number, what: string): Uint8Array {
    const out = new Uint8Array(n);
    out.set(this.bytes(n, what));
    return out;
  }

  /** The next `n` bytes as a view into the buffer (no copy). */
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}
