// Streaming frame splitter. STUB: signatures fixed, being implemented (codec helper).
import { DEFAULT_MAX_FRAME } from "./types.js";

/** Receives frames as they are cut from the stream. */
export interface FrameSink {
  /** A whole frame, length prefix included; the body is `frame.subarray(4)`. Valid only during the call. */
  frame(frame: Buffer): void;
  /** The GRACEFUL_CLOSE marker (length -5) was read. */
  gracefulClose(): void;
}

/** Cuts a byte stream into frames by their length prefix, whatever the chunk boundaries. */
export class FrameSplitter {
  constructor(readonly maxFrame: number = DEFAULT_MAX_FRAME) {}

  /** Feeds bytes; calls the sink for each complete frame. Throws ProtocolError on a bad length. */
  push(chunk: Buffer, sink: FrameSink): void {
    void chunk;
    void sink;
    throw new Error("not implemented");
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return 0;
  }
}
