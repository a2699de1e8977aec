// RelayChannel.send documents RelayError; the site cluster underneath throws ClusterError (for
// example BUFFER_FULL when a member's socket is far over its high-water mark). The channel maps
// every cluster code to the matching RelayError code.
import { ClusterError } from "../../runtime/cluster/errors.js";
import { RelayError, toRelayError } from "../../runtime/relay/channel.js";

test.each([
  ["BUFFER_FULL", "BUFFER_FULL"],
  ["CLOSED", "CLOSED"],
  ["NOT_JOINED", "NOT_CONNECTED"],
  ["NOT_STARTED", "NOT_CONNECTED"],
  ["NOT_A_MEMBER", "UNKNOWN_MEMBER"],
  ["TOO_LARGE", "PAYLOAD_TOO_LARGE"],
] as const)("ClusterError %s reaches the caller as RelayError %s", (cluster, relay) => {
  const mapped = toRelayError(new ClusterError(cluster, `cluster says ${cluster}`));
  expect(mapped).toBeInstanceOf(RelayError);
  expect(mapped).toMatchObject({ code: relay, message: `cluster says ${cluster}` });
});

test("other errors pass through unchanged", () => {
  const own = new RelayError("BAD_DESTINATION", "x");
  const other = new TypeError("y");
  expect(toRelayError(own)).toBe(own);
  expect(toRelayError(other)).toBe(other);
});
