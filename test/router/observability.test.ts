// /healthz and /metrics of an in-process router (ephemeral HTTP port on loopback).
import { suspectFrame } from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import { waitFor } from "../helpers/wait.js";
import { routerHarness, uuid } from "./util.js";

const h = routerHarness();

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
}

/** The value of one sample line, e.g. `relay_router_frames_in_total{type="MESSAGE"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("/healthz answers 200 with JSON; unknown paths 404", async () => {
  const router = await h.start({ httpPort: 0 });
  const port = h.port;
  const httpPort = router.httpPort!;
  expect(httpPort).toBeGreaterThan(0);
  const res = await get(httpPort, "/healthz");
  expect(res.status).toBe(200);
  expect(res.type).toContain("application/json");
  expect(JSON.parse(res.body)).toMatchObject({ status: "ok", port, connections: 0, groups: 0 });
  expect((await get(httpPort, "/nope")).status).toBe(404);
});

test("/metrics exposes connections, registrations per group, frames by type, undelivered, decode errors", async () => {
  const router = await h.start({ httpPort: 0 });
  const [a, b, bad] = await Promise.all([h.client(), h.client(), h.client()]);
  a.register("chat", uuid(1));
  b.register("chat", uuid(2));
  b.register("ops", uuid(3));
  await waitFor("registrations", () => router.registry.size === 3);
  a.message("chat", null, uuid(1), "x");
  a.message("chat", uuid(9), uuid(1), "lost");
  a.send(suspectFrame("chat", uuid(2)));
  bad.send(Buffer.from("fffffff0", "hex"));
  await b.waitType(GossipType.Message);
  await bad.waitClosed();
  await waitFor("the bad connection to be gone", () => router.stats().connections === 2);

  const res = await get(router.httpPort!, "/metrics");
  expect(res.status).toBe(200);
  expect(res.type).toContain("text/plain");
  const m = res.body;
  expect(sample(m, "relay_router_connections")).toBe(2);
  expect(sample(m, "relay_router_connections_accepted_total")).toBe(3);
  expect(sample(m, 'relay_router_registrations{group="chat"}')).toBe(2);
  expect(sample(m, 'relay_router_registrations{group="ops"}')).toBe(1);
  expect(sample(m, 'relay_router_frames_in_total{type="REGISTER"}')).toBe(3);
  expect(sample(m, 'relay_router_frames_in_total{type="MESSAGE"}')).toBe(2);
  expect(sample(m, 'relay_router_frames_out_total{type="MESSAGE"}')).toBe(2); // multicast to a and b
  expect(sample(m, 'relay_router_undelivered_frames_total{reason="unknown-dest"}')).toBe(1);
  expect(sample(m, 'relay_router_ignored_frames_total{reason="response-type"}')).toBe(1);
  expect(sample(m, 'relay_router_decode_errors_total{code="bad-length"}')).toBe(1);
  expect(sample(m, 'relay_router_connections_closed_total{reason="decode-error"}')).toBe(1);
  expect(sample(m, "relay_router_backpressure_pauses_total")).toBe(0);
  expect(sample(m, "relay_router_slow_receiver_disconnects_total")).toBe(0);
  expect(sample(m, "relay_router_expired_connections_total")).toBe(0);
  expect(m).toContain("process_cpu_seconds_total");
});
