// One measured stream of the cross-site benches (crosssite.mjs, wan.mjs): a sender streams
// numbered messages, the receivers report progress (which feeds the sender's window credits), and
// the run ends when every receiver has every message or nothing moved for `stallMs`.
import { nowMs, sleep } from "./topology.mjs";

let nextStream = 1;

/**
 * Runs one stream from `sender` to `dest`, received by `receivers`; resolves with the sender's
 * answer, every live receiver's report and what `during()` returned (it runs while the stream does).
 */
export async function runStream({
  sender,
  receivers,
  dest,
  count,
  size,
  rate = 0,
  window = 0,
  during,
  stallMs = 10_000,
}) {
  const id = nextStream++;
  const counts = new Map(receivers.map((r) => [r.name, 0]));
  let lastProgress = nowMs();
  let done;
  const allIn = new Promise((r) => {
    done = r;
  });
  const onProgress = (m, p) => {
    if (p.id !== id || !counts.has(m.name)) return;
    counts.set(m.name, p.count);
    lastProgress = nowMs();
    const min = Math.min(...counts.values());
    if (window > 0) sender.tell("credit", { id, delivered: min });
    if (min >= count) done();
  };
  for (const r of receivers) r.onProgress = onProgress;
  const sending = sender.request("stream", { id, dest, count, size, rate, window, stallMs }, 600_000);
  const side = during ? during() : Promise.resolve(null);
  const sent = await sending;
  const sideResult = await side;
  if (sent.error) console.error(`stream ${id}: sender stopped: ${sent.error}`);
  // Wait for the receivers (bounded: no progress for stallMs ends the wait).
  while (Math.min(...counts.values()) < count && nowMs() - lastProgress < stallMs) {
    await Promise.race([allIn, sleep(50)]);
  }
  const live = receivers.filter((r) => r.alive);
  const reports = await Promise.all(live.map((r) => r.request("report", { id, killAt: sideResult?.killAt })));
  await Promise.all([sender, ...live].filter((m) => m.alive).map((m) => m.request("forget", { id })));
  for (const r of receivers) r.onProgress = null;
  return { id, sent, reports: live.map((r, i) => ({ name: r.name, ...reports[i] })), side: sideResult };
}

/** Problems of a finished stream: missing, duplicate or reordered messages at any receiver. */
export function streamProblems(run, count) {
  const bad = [];
  for (const r of run.reports) {
    if (r.count !== count || r.firstSeq !== 1 || r.duplicates || r.gaps || r.missing)
      bad.push(
        `${r.name}: ${r.count}/${count} (missing ${r.missing}, gaps ${r.gaps}, duplicates ${r.duplicates})`,
      );
  }
  return bad;
}
