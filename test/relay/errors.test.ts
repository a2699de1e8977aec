// RelayChannel.send documents RelayError; the site cluster underneath throws ClusterError (for
// example BUFFER_FULL when a member's socket is far over its high-water mark). The channel maps
// every cluster code to the matching RelayError code.
import { CodedError, ConfigError } from "../../contract/errors.js";
import { ClusterCodecError } from "../../runtime/cluster/codec.js";
import { ClusterError } from "../../runtime/cluster/errors.js";
import { resolveClusterOptions } from "../../runtime/cluster/options.js";
import { ProtocolError } from "../../runtime/protocol/types.js";
import { SendBuffer } from "../../runtime/relay/delivery/send-buffer.js";
import { EnvelopeError } from "../../runtime/relay/envelope.js";
import { RelayError, toRelayError } from "../../runtime/relay/errors.js";
import { resolveRouterOptions } from "../../runtime/router/options.js";
import { TunnelError } from "../../runtime/tunnel/errors.js";

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
  // the ClusterError is kept as the cause, so logs and callers can see where it came from
  expect((mapped as RelayError).cause).toBeInstanceOf(ClusterError);
  expect(((mapped as RelayError).cause as ClusterError).code).toBe(cluster);
});

test("every error the runtime throws on purpose is a CodedError with a stable code", () => {
  for (const err of [
    new RelayError("CLOSED", "x"),
    new ClusterError("CLOSED", "x"),
    new TunnelError("TUNNEL_CLOSED", "x"),
    new ProtocolError("bad-type", "x"),
    new EnvelopeError("truncated", "x"),
    new ClusterCodecError("BAD_TYPE", "x"),
    new ConfigError("x"),
  ]) {
    expect(err).toBeInstanceOf(CodedError);
    expect(typeof err.code).toBe("string");
  }
  expect(new ConfigError("x").code).toBe("BAD_OPTION");
});

test("bad options of every runtime class are one ConfigError with code BAD_OPTION", () => {
  const attempts: Array<() => unknown> = [
    () => resolveRouterOptions({ port: -1 }),
    () => new SendBuffer({ maxBytes: 0 }),
    () => resolveClusterOptions({ site: "", cluster: "c", name: "n" } as never),
  ];
  for (const attempt of attempts) {
    expect(attempt).toThrow(ConfigError);
  }
});

test("other errors pass through unchanged", () => {
  const own = new RelayError("BAD_DESTINATION", "x");
  const other = new TypeError("y");
  expect(toRelayError(own)).toBe(own);
  expect(toRelayError(other)).toBe(other);
});
