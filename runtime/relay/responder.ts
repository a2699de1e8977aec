// The RelayDemo behaviour every member runs: a line sent to everyone is answered with "response",
// by unicast to its sender (answers are not answered, so nothing loops).
import type { RelayChannel } from "./channel.js";
import type { RelayMessage } from "./types.js";

export const RESPONSE_TEXT = "response";

/** Starts answering; returns a function that stops it. */
export function answerBroadcasts(channel: RelayChannel): () => void {
  const reply = Buffer.from(RESPONSE_TEXT, "utf8");
  const listener = (m: RelayMessage) => {
    if (m.dest.kind !== "all") return;
    try {
      channel.sendToMember(m.from, reply);
    } catch {
      // closing, or the sender is gone: nothing to answer
    }
  };
  channel.on("message", listener);
  return () => channel.off("message", listener);
}
