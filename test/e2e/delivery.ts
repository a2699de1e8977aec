// Reading the e2e member apps' record files and checking them against the delivery contract:
// every surviving member receives every message of every sender exactly once, in order.

/** One received test message. */
export interface Arrival {
  readonly at: number;
  readonly n: number;
}

/** What one member received from each sender (`name:site`), in arrival order. */
export type Received = Map<string, Arrival[]>;

/** Parses a record file (`<epoch ms> <name>:<site> <n>` per line); malformed lines throw. */
export function parseRecord(text: string): Received {
  const out: Received = new Map();
  for (const [i, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const m = /^(\d+) (\S+:\S+) (\d+)$/.exec(line);
    if (!m) throw new Error(`record line ${i + 1} is malformed: ${JSON.stringify(line.slice(0, 80))}`);
    const from = m[2]!;
    let list = out.get(from);
    if (!list) {
      list = [];
      out.set(from, list);
    }
    list.push({ at: Number(m[1]), n: Number(m[3]) });
  }
  return out;
}

/** How one stream (one sender seen by one member) compares with 1..count. */
export interface StreamCheck {
  readonly received: number;
  readonly missing: number;
  readonly duplicates: number;
  /** Arrivals whose number is lower than one received before it. */
  readonly reordered: number;
  /** The missing numbers as ranges, e.g. "1203-1217,1480". At most 10 ranges listed. */
  readonly missingRanges: string;
  /** Largest time between two consecutive arrivals (ms). */
  readonly maxGapMs: number;
  /** Number received right after that gap. */
  readonly maxGapBefore: number;
}

export function checkStream(arrivals: readonly Arrival[], count: number): StreamCheck {
  const seen = new Uint8Array(count + 1);
  let duplicates = 0;
  let reordered = 0;
  let highest = 0;
  let maxGapMs = 0;
  let maxGapBefore = 0;
  for (const [i, a] of arrivals.entries()) {
    if (a.n >= 1 && a.n <= count) {
      if (seen[a.n]) duplicates++;
      seen[a.n] = 1;
    }
    if (a.n < highest) reordered++;
    highest = Math.max(highest, a.n);
    if (i > 0) {
      const gap = a.at - arrivals[i - 1]!.at;
      if (gap > maxGapMs) {
        maxGapMs = gap;
        maxGapBefore = a.n;
      }
    }
  }
  const ranges: string[] = [];
  let missing = 0;
  for (let n = 1; n <= count; n++) {
    if (seen[n]) continue;
    missing++;
    let end = n;
    while (end + 1 <= count && !seen[end + 1]) end++;
    if (ranges.length < 10) ranges.push(end === n ? `${n}` : `${n}-${end}`);
    missing += end - n;
    n = end;
  }
  return {
    received: arrivals.length,
    missing,
    duplicates,
    reordered,
    missingRanges: ranges.join(",") + (ranges.length === 10 ? ",..." : ""),
    maxGapMs,
    maxGapBefore,
  };
}

/** One line per failed stream (member, sender, what is wrong); empty when the contract holds. */
export function contractViolations(
  checks: ReadonlyMap<string, ReadonlyMap<string, StreamCheck>>,
  count: number,
): string[] {
  const out: string[] = [];
  for (const [member, streams] of checks) {
    for (const [sender, c] of streams) {
      if (c.missing === 0 && c.duplicates === 0 && c.reordered === 0 && c.received === count) continue;
      out.push(
        `${member} <- ${sender}: ${c.received}/${count} received, ${c.missing} missing` +
          (c.missing ? ` (${c.missingRanges})` : "") +
          `, ${c.duplicates} duplicates, ${c.reordered} out of order`,
      );
    }
  }
  return out;
}
