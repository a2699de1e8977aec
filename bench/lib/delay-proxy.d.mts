// Types of bench/lib/delay-proxy.mjs (for the TypeScript tests).

export interface DelayProxyOptions {
  /** @default "127.0.0.1" */
  readonly listenHost?: string;
  /** 0 = a free port. @default 0 */
  readonly listenPort?: number;
  readonly targetHost: string;
  readonly targetPort: number;
  /** Delay of each chunk, per direction (ms). @default 0 */
  readonly delayMs?: number;
  /** Bytes one direction may hold unreleased before it stops reading its source. @default 8 MiB */
  readonly maxQueuedBytes?: number;
}

export interface DelayProxyStats {
  readonly accepted: number;
  readonly open: number;
  readonly dialFailures: number;
  readonly bytesToTarget: number;
  readonly bytesToClient: number;
  readonly chunks: number;
  /** Shortest time a released chunk was held (ms; Infinity before the first). */
  readonly minHeldMs: number;
  readonly maxHeldMs: number;
  readonly maxQueuedBytes: number;
  readonly pauses: number;
  readonly delayMs: number;
}

export interface DelayProxy {
  readonly port: number;
  /** The delay of chunks read from now on (queued ones keep theirs; order is always kept). */
  setDelay(ms: number): void;
  stats(): DelayProxyStats;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

export function startDelayProxy(o: DelayProxyOptions): Promise<DelayProxy>;
