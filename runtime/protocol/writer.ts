// A cursor that writes big-endian integers and bytes into a Buffer, shared by the GossipRouter
// codec (which sizes the body first and writes into exactly that many bytes) and the mesh codec
// (which lets the buffer grow and fills in the length prefix at the end).

export class Writer {
  buf: Buffer;
  pos: number;
  readonly #growable: boolean;

  /** A fixed-size writer over `buf` from `pos`; `growable` lets it reallocate when full. */
  constructor(buf: Buffer, pos = 0, growable = false) {
    this.buf = buf;
    this.pos = pos;
    this.#growable = growable;
  }

  u8(v: number): this {
    this.#room(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.#room(2);
    this.buf.writeUInt16BE(v, this.pos); // RangeError outside 0..0xffff: callers check their values
    this.pos += 2;
    return this;
  }

  i32(v: number): this {
    this.#room(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  u32(v: number): this {
    this.#room(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Makes room for `n` more bytes (growable writers only; a fixed one was sized by its caller). */
  #room(n: number): void {
    if (!this.#growable || this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.pos + n, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}
