// Streaming frame splitter: cuts a TCP byte stream into `i32 length + body` frames. The one
// splitter of the project: the GossipRouter protocol (router, tunnel, dump) and the mesh of the
// local cluster use it with their own limits and errors (FrameSplitterOptions).
//
// Hot path of the router. Frames that lie wholly inside one chunk are handed out as subarrays of
// that chunk (zero copy). Only a frame that straddles chunks is copied, into one reusable buffer
// that grows with the bytes actually received (never to the announced length up front, so a
// peer cannot make us reserve 10 MiB by sending 4 bytes) — unless the owner bounds the total
// itself and asks for exact buffers (`exactReserve`, the router).
import { ConfigError } from "../../contract/errors.js";
import { DEFAULT_MAX_FRAME, GRACEFUL_CLOSE_LENGTH, ProtocolError } from "./types.js";

/** Receives frames as they are cut from the stream. */
export interface FrameSink {
  /**
   * A whole frame, length prefix included; the body is `frame.subarray(4)`. Valid only during the
   * call, unless the splitter was made with `stableFrames`.
   */
  frame(frame: Buffer): void;
  /** The GRACEFUL_CLOSE marker (length -5) was read (only with `gracefulClose`). */
  gracefulClose?(): void;
}

/** What differs between the streams that are cut into frames. */
export interface FrameSplitterOptions {
  /** Largest body length accepted. @default DEFAULT_MAX_FRAME (10 MiB) */
  readonly maxFrame?: number;
  /** Smallest body length accepted. @default 0 */
  readonly minFrame?: number;
  /** A length prefix of -5 is the GRACEFUL_CLOSE marker (no body), not a bad length. @default true */
  readonly gracefulClose?: boolean;
  /**
   * Frames stay valid after the sink returns: one that straddles chunks gets a buffer of its own
   * instead of the reused one (for consumers that keep what they are handed). @default false
   */
  readonly stableFrames?: boolean;
  /**
   * A frame that straddles reads gets a buffer of its announced size at once, instead of one that
   * grows with the bytes received (no copies, no garbage; pages not yet written cost no memory).
   * Only for an owner that bounds what all its splitters hold (the router's PartialFrameBudget
   * reads `capacity`). @default false
   */
  readonly exactReserve?: boolean;
  /**
   * The error thrown for a length outside minFrame..maxFrame.
   * @default ProtocolError "bad-length" (negative) or "frame-too-large"
   */
  readonly lengthError?: (
    length: number,
    limits: { readonly minFrame: number; readonly maxFrame: number },
  ) => Error;
}

function protocolLengthError(len: number, limits: { readonly maxFrame: number }): Error {
  if (len < 0) return new ProtocolError("bad-length", `frame length ${len}`);
  return new ProtocolError("frame-too-large", `frame length ${len} exceeds ${limits.maxFrame}`);
}

/** The straddle buffer is kept between frames only up to this size; larger ones are dropped after use. */
const KEEP_CAPACITY = 64 * 1024;
const MIN_CAPACITY = 256;
const NO_BYTES = Buffer.alloc(0);

/** Cuts a byte stream into frames by their length prefix, whatever the chunk boundaries. */
export class FrameSplitter {
  /** Holds the frame being reassembled (prefix included) in [0, #have). */
  #pending: Buffer = NO_BYTES;
  #have = 0;
  /** Total size of the frame being reassembled (4 + length); 0 while its prefix is incomplete. */
  #need = 0;

  readonly maxFrame: number;
  readonly minFrame: number;
  readonly #graceful: boolean;
  readonly #stable: boolean;
  readonly #exact: boolean;
  readonly #lengthError: NonNullable<FrameSplitterOptions["lengthError"]>;

  /** `options` as a number is the maxFrame of a GossipRouter stream. Throws ConfigError on bad limits. */
  constructor(options: number | FrameSplitterOptions = {}) {
    const o = typeof options === "number" ? { maxFrame: options } : options;
    const maxFrame = o.maxFrame ?? DEFAULT_MAX_FRAME;
    const minFrame = o.minFrame ?? 0;
    if (!Number.isInteger(maxFrame) || maxFrame < 0 || maxFrame > 0x7fffffff) {
      throw new ConfigError(`maxFrame must be an integer in 0..2^31-1, got ${maxFrame}`);
    }
    if (!Number.isInteger(minFrame) || minFrame < 0 || minFrame > maxFrame) {
      throw new ConfigError(`minFrame must be an integer in 0..maxFrame (${maxFrame}), got ${minFrame}`);
    }
    this.maxFrame = maxFrame;
    this.minFrame = minFrame;
    this.#graceful = o.gracefulClose ?? true;
    this.#stable = o.stableFrames ?? false;
    this.#exact = o.exactReserve ?? false;
    this.#lengthError = o.lengthError ?? protocolLengthError;
  }

  /** Feeds bytes; calls the sink for each complete frame. Throws ProtocolError on a bad length. */
  push(chunk: Buffer, sink: FrameSink): void {
    const n = chunk.length;
    let off = 0;
    if (this.#have > 0) {
      off = this.#fill(chunk, 0, sink);
      if (this.#have > 0) return; // chunk used up, frame still incomplete
    }
    while (n - off >= 4) {
      const len = (chunk[off]! << 24) | (chunk[off + 1]! << 16) | (chunk[off + 2]! << 8) | chunk[off + 3]!;
      if (len < this.minFrame || len > this.maxFrame) {
        if (len === GRACEFUL_CLOSE_LENGTH && this.#graceful) {
          off += 4;
          sink.gracefulClose?.();
          continue;
        }
        this.#badLength(len);
      }
      const end = off + 4 + len;
      if (end > n) break;
      sink.frame(chunk.subarray(off, end));
      off = end;
    }
    if (off < n) this.#fill(chunk, off, sink);
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#have;
  }

  /** Bytes of the reassembly buffer (held while a frame is incomplete, kept after up to 64 KiB). */
  get capacity(): number {
    return this.#pending.length;
  }

  /** Drops the reassembly buffer kept between frames (no frame is incomplete). True if it did. */
  releaseIdle(): boolean {
    if (this.#have > 0 || this.#pending.length === 0) return false;
    this.#pending = NO_BYTES;
    return true;
  }

  /** Forgets everything held, an incomplete frame included (the stream is abandoned). */
  discard(): void {
    this.#have = 0;
    this.#need = 0;
    this.#pending = NO_BYTES;
  }

  /** Copies bytes from chunk[off..] into the straddle buffer; emits the frame when complete. */
  #fill(chunk: Buffer, off: number, sink: FrameSink): number {
    const n = chunk.length;
    if (this.#need === 0) {
      this.#reserve(4);
      const take = Math.min(4 - this.#have, n - off);
      chunk.copy(this.#pending, this.#have, off, off + take);
      this.#have += take;
      off += take;
      if (this.#have < 4) return off;
      const len = this.#pending.readInt32BE(0);
      if (len === GRACEFUL_CLOSE_LENGTH && this.#graceful) {
        this.#have = 0;
        sink.gracefulClose?.();
        return off;
      }
      if (len < this.minFrame || len > this.maxFrame) this.#badLength(len);
      this.#need = 4 + len;
    }
    const take = Math.min(this.#need - this.#have, n - off);
    this.#reserve(this.#have + take);
    chunk.copy(this.#pending, this.#have, off, off + take);
    this.#have += take;
    off += take;
    if (this.#have === this.#need) {
      const frame = this.#pending.subarray(0, this.#need);
      this.#have = 0;
      this.#need = 0;
      if (this.#stable || this.#pending.length > KEEP_CAPACITY) this.#pending = NO_BYTES;
      sink.frame(frame);
    }
    return off;
  }

  /** Grows the straddle buffer geometrically, never beyond the frame being reassembled. */
  #reserve(min: number): void {
    const cap = this.#pending.length;
    if (cap >= min) return;
    const limit = Math.max(this.#need, 4);
    const next =
      this.#exact && this.#need > 0 ? this.#need : Math.min(limit, Math.max(min, cap * 2, MIN_CAPACITY));
    // allocUnsafeSlow: a buffer kept per connection must not pin an 8 KiB slab of the shared pool.
    const grown = Buffer.allocUnsafeSlow(next);
    this.#pending.copy(grown, 0, 0, this.#have);
    this.#pending = grown;
  }

  #badLength(len: number): never {
    // The stream cannot be resynchronised after a bad prefix: drop what we hold.
    this.#have = 0;
    this.#need = 0;
    this.#pending = NO_BYTES;
    throw this.#lengthError(len, this);
  }
}
