// Replays the golden JGroups 5.5.6 conversations (test/fixtures/captures) against our router:
// the client->router frames are sent on one connection per captured stream, in capture order, and
// what our router writes back must contain the captured router->client frames byte for byte.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { decodeBody } from "../../runtime/protocol/codec.js";
import { registerFrame } from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import type { GossipRouter } from "../../runtime/router/router.js";
import { REPO_ROOT } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { GC_HEX, sleep, startRouter, TestClient, teardown } from "./util.js";

const CAPTURES = path.resolve(REPO_ROOT, "test/fixtures/captures");

interface Line {
  readonly stream: number;
  readonly dir: "client->router" | "router->client";
  readonly hex: string;
}

function load(name: string): Line[] {
  const file = path.join(CAPTURES, `${name}.jsonl`);
  if (!existsSync(file))
    throw new Error(`capture ${file} not found (expected the shared captures next to the repo)`);
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Line);
}

/** True when `sub` appears in `seq` in order (other items may come in between). */
function isSubsequence(sub: readonly string[], seq: readonly string[]): boolean {
  let i = 0;
  for (const s of seq) if (i < sub.length && s === sub[i]) i++;
  return i === sub.length;
}

let routers: GossipRouter[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const r of routers) await teardown(r, clients);
  routers = [];
});

async function newRouter(): Promise<{ router: GossipRouter; port: number }> {
  const r = await startRouter();
  routers.push(r.router);
  return r;
}

/** Sum of every frame (and GRACEFUL_CLOSE marker) the router has read so far. */
function framesRead(router: GossipRouter): number {
  const s = router.stats();
  return Object.values(s.framesIn).reduce((a, b) => a + b, 0) + Object.values(s.decodeErrors).length;
}

function closes(router: GossipRouter): number {
  return Object.values(router.stats().closes).reduce((a, b) => a + b, 0);
}

/**
 * Replays a single-router capture. A router->client GRACEFUL_CLOSE that the client did not ask for
 * is the router noticing a dead client: we reproduce it by closing that client's sending side.
 */
async function replay(name: string): Promise<{ lines: Line[]; received: Map<number, string[]> }> {
  const lines = load(name);
  const { router, port } = await newRouter();
  const conns = new Map<number, TestClient>();
  const left = new Set<number>();
  let expectedRead = 0;
  for (const line of lines) {
    let c = conns.get(line.stream);
    if (!c) {
      c = await TestClient.connect(port);
      clients.push(c);
      conns.set(line.stream, c);
    }
    if (line.dir === "client->router") {
      c.send(Buffer.from(line.hex, "hex"));
      if (line.hex === GC_HEX) left.add(line.stream);
      // One connection per stream: wait until the router has handled this frame before the next,
      // so that the order across connections is the captured one.
      expectedRead++;
      await waitFor(
        `the router to read frame of stream ${line.stream}`,
        () => framesRead(router) >= expectedRead,
      );
    } else if (line.hex === GC_HEX && !left.has(line.stream)) {
      left.add(line.stream);
      const closed = closes(router);
      c.socket.end();
      await waitFor(`the router to notice that stream ${line.stream} is gone`, () => closes(router) > closed);
    }
  }
  const expected = new Map<number, string[]>();
  for (const l of lines) {
    if (l.dir === "router->client") expected.set(l.stream, [...(expected.get(l.stream) ?? []), l.hex]);
  }
  for (const [stream, hexes] of expected) {
    await waitFor(`stream ${stream} to receive its ${hexes.length} captured frames`, () =>
      isSubsequence(
        hexes,
        conns.get(stream)!.received.map((r) => r.hex),
      ),
    );
  }
  return { lines, received: new Map([...conns].map(([s, c]) => [s, c.received.map((r) => r.hex)])) };
}

/** Every MESSAGE we wrote is a byte-identical copy of a frame a client sent. */
function onlyForwardedCopies(lines: Line[], received: Map<number, string[]>): void {
  const sent = new Set(lines.filter((l) => l.dir === "client->router").map((l) => l.hex));
  for (const hexes of received.values()) {
    for (const hex of hexes) if (hex.slice(8, 10) === "04") expect(sent.has(hex)).toBe(true);
  }
}

test("tunnel-chat: every captured router->client frame, byte for byte, in order", async () => {
  const { lines, received } = await replay("tunnel-chat");
  onlyForwardedCopies(lines, received);
});

test("heartbeat: HEARTBEAT answers are byte-identical to JGroups'", async () => {
  const { lines, received } = await replay("heartbeat");
  onlyForwardedCopies(lines, received);
  const hb = lines.filter((l) => l.dir === "router->client" && l.hex.slice(8, 10) === "05");
  expect(hb.length).toBeGreaterThan(0);
});

test("suspect-kill9: GRACEFUL_CLOSE towards the dead member, SUSPECT(chat, m3) to the others, byte for byte", async () => {
  const { lines, received } = await replay("suspect-kill9");
  onlyForwardedCopies(lines, received);
  const suspects = lines.filter((l) => l.dir === "router->client" && l.hex.slice(8, 10) === "06");
  expect(suspects.map((l) => l.stream).sort()).toEqual([0, 1]);
  expect(received.get(2)).toContain(GC_HEX);
});

test("get-mbrs: responses identical to JGroups' for registered groups; an empty LAST where JGroups hangs", async () => {
  const lines = load("get-mbrs");
  const hex = (i: number) => lines[i]!.hex;
  const frame = (i: number) => Buffer.from(hex(i), "hex");
  // The members the capture's routers held, in the capture's order, from its own responses.
  const chat = decodeBody(frame(1).subarray(4)).pingData;
  const global = decodeBody(frame(2).subarray(4)).pingData;
  const registerAll = async (port: number, groups: [string, typeof chat][]) => {
    for (const [group, pings] of groups) {
      for (const p of pings) {
        const c = await TestClient.connect(port);
        clients.push(c);
        c.send(registerFrame(group, p.member!, p.logicalName, p.physicalAddr));
        await sleep(5);
      }
    }
  };

  // Router "12001": chat (alice) and global (_nyc2, _sfc1).
  const r1 = await newRouter();
  await registerAll(r1.port, [
    ["chat", chat],
    ["global", global],
  ]);
  await waitFor("3 registrations", () => r1.router.registry.size === 3);
  const s0 = await TestClient.connect(r1.port);
  clients.push(s0);
  s0.send(frame(0));
  await s0.waitFrames(2);
  expect(s0.received.map((r) => r.hex)).toEqual([hex(1), hex(2)]);
  s0.send(frame(3)); // GRACEFUL_CLOSE: nothing comes back
  await s0.waitClosed();
  expect(s0.received).toHaveLength(2);

  const s1 = await TestClient.connect(r1.port);
  clients.push(s1);
  s1.send(frame(4));
  await s1.waitFrames(1);
  expect(s1.received.map((r) => r.hex)).toEqual([hex(5)]);

  // Router "12002": only global.
  const r2 = await newRouter();
  await registerAll(r2.port, [["global", global]]);
  await waitFor("2 registrations", () => r2.router.registry.size === 2);
  const s3 = await TestClient.connect(r2.port);
  clients.push(s3);
  s3.send(frame(9));
  await s3.waitFrames(1);
  expect(s3.received.map((r) => r.hex)).toEqual([hex(10)]);

  // Stream 2: GET_MBRS chat where chat does not exist. JGroups sent nothing (the client hung and
  // was killed; the router then wrote GRACEFUL_CLOSE). We answer an empty GET_MBRS_RSP_LAST.
  const s2 = await TestClient.connect(r2.port);
  clients.push(s2);
  s2.send(frame(7));
  const [rsp] = await s2.waitType(GossipType.GetMbrsRspLast);
  expect(rsp).toMatchObject({ group: "chat", pingData: [] });
  s2.socket.end();
  await waitFor("GRACEFUL_CLOSE after the client went away", () => s2.gracefulCloses === 1);
  expect(s2.received.at(-1)!.hex).toBe(hex(8));
});
