// What short byte strings decode to, remembered: a stream of frames or envelopes repeats the same
// few names and addresses, and decoding each again (building its string) costs more than finding
// it. Direct-mapped (a hash of the bytes picks the slot; a new key takes the slot over): bounded
// whatever the input, and a hit is checked byte by byte, so a collision only costs a decode.
export class BytesMemo<T> {
  readonly #keys: (Uint8Array | undefined)[];
  readonly #values: (T | undefined)[];
  readonly #mask: number;
  readonly #maxKeyBytes: number;

  /** `slots`: a power of two; keys longer than `maxKeyBytes` are decoded and not remembered. */
  constructor(slots = 64, maxKeyBytes = 255) {
    if (!Number.isInteger(Math.log2(slots)))
      throw new RangeError(`slots must be a power of two, not ${slots}`);
    this.#keys = new Array(slots);
    this.#values = new Array(slots);
    this.#mask = slots - 1;
    this.#maxKeyBytes = maxKeyBytes;
  }

  /**
   * The value for `buf[start, end)`: the remembered one, or `decode(buf, start, end)`, remembered
   * when it returns (a decode that throws leaves nothing behind).
   */
  get(
    buf: Uint8Array,
    start: number,
    end: number,
    decode: (buf: Uint8Array, start: number, end: number) => T,
  ): T {
    const len = end - start;
    if (len > this.#maxKeyBytes) return decode(buf, start, end);
    let h = len;
    for (let i = start; i < end; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
    const slot = h & this.#mask;
    const known = this.#keys[slot];
    if (known !== undefined && known.length === len) {
      let same = true;
      for (let i = 0; i < len; i++)
        if (known[i] !== buf[start + i]) {
          same = false;
          break;
        }
      if (same) return this.#values[slot]!;
    }
    const value = decode(buf, start, end);
    this.#keys[slot] = Uint8Array.prototype.slice.call(buf, start, end);
    this.#values[slot] = value;
    return value;
  }
}
