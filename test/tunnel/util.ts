// Bounded waits shared by the tunnel tests.
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import type { UuidAddress } from "../../runtime/protocol/types.js";
import {
  TunnelClient,
  type TunnelMessage,
  type TunnelOptions,
  type TunnelStatusEvent,
} from "../../runtime/tunnel/index.js";

/** A logger that writes nothing unless TEST_LOG is set (then JSON on stderr). */
export const quietLog = pino({ level: process.env["TEST_LOG"] ? "debug" : "silent" });

export function uuidAddr(): UuidAddress {
  return { kind: "uuid", uuid: randomUUID() };
}

/** The next status event matching `pred`, or a rejection after timeoutMs. */
export function nextStatus<T extends TunnelStatusEvent["type"]>(
  client: TunnelClient,
  type: T,
  timeoutMs = 5000,
  pred: (e: Extract<TunnelStatusEvent, { type: T }>) => boolean = () => true,
): Promise<Extract<TunnelStatusEvent, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("status", on);
      reject(new Error(`no "${type}" status event within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (e: TunnelStatusEvent) => {
      if (e.type !== type) return;
      const ev = e as Extract<TunnelStatusEvent, { type: T }>;
      if (!pred(ev)) return;
      clearTimeout(timer);
      client.off("status", on);
      resolve(ev);
    };
    client.on("status", on);
  });
}

/** Records every status event of a client. */
export function recordStatus(client: TunnelClient): TunnelStatusEvent[] {
  const events: TunnelStatusEvent[] = [];
  client.on("status", (e) => events.push(e));
  return events;
}

/**
 * A client of the loopback routers on `ports`, with quick reconnects and a silent logger. It is
 * added to `created` so that the test file's afterEach can close it.
 */
export function testClient(
  ports: number[],
  created: TunnelClient[],
  extra: Partial<TunnelOptions> = {},
): TunnelClient {
  const c = new TunnelClient({
    routers: ports.map((port) => ({ host: "127.0.0.1", port })),
    group: "chat",
    localAddr: uuidAddr(),
    logicalName: `m${created.length}`,
    physicalAddr: { kind: "ip", host: "127.0.0.1", port: 7800 + created.length },
    reconnectInitialMs: 20,
    reconnectMaxMs: 200,
    logger: quietLog,
    ...extra,
  });
  created.push(c);
  return c;
}

/** Collects every message a client emits. */
export function inbox(c: TunnelClient): TunnelMessage[] {
  const got: TunnelMessage[] = [];
  c.on("message", (m) => got.push(m));
  return got;
}

export const text = (m: TunnelMessage): string => Buffer.from(m.payload).toString();
