// Inputs found by the long fuzz run of the node-to-node decoders (bench/fuzz-node.mjs), kept as
// fixed regression cases: each must decode and re-encode to the very same bytes.
import { decodeFrame, encodeFrame } from "../../runtime/cluster/codec.js";

test.each([
  // JOIN_REJECT whose reason starts with U+FEFF (EF BB BF): the decoder used to drop the BOM.
  ["join-reject, reason with a leading BOM", "08000befbbbf6e2d39396c770a68"],
])("%s: decodes and re-encodes to the same bytes", (_what, hex) => {
  const body = Buffer.from(hex, "hex");
  expect(encodeFrame(decodeFrame(body)).subarray(4).toString("hex")).toBe(hex);
});

test("a member whose name starts with U+FEFF keeps its name (and so its member key)", () => {
  const member = {
    name: "\ufeffnyc-1",
    site: "nyc",
    uuid: "00000000-0000-4000-8000-000000000001",
    host: "127.0.0.1",
    port: 7800,
  };
  const f = decodeFrame(encodeFrame({ type: "hello-ack", member }).subarray(4));
  expect(f).toEqual({ type: "hello-ack", member });
});
