// Connection ends: lost connections (EOF, RST, kill -9 of a client process) get a GRACEFUL_CLOSE
// written towards them and SUSPECTs to the other members; graceful leaves and --no-suspect do not;
// idle connections expire.
import { spawn } from "node:child_process";
import { heartbeatFrame, registerFrame, suspectFrame } from "../../runtime/protocol/frames.js";
import { GossipType } from "../../runtime/protocol/types.js";
import { waitFor } from "../helpers/wait.js";
import { GC_HEX, routerHarness, sleep, uuid } from "./util.js";

const h = routerHarness();
const children: ReturnType<typeof spawn>[] = [];

afterEach(() => {
  for (const ch of children) ch.kill("SIGKILL");
  children.length = 0;
});

test("EOF without GRACEFUL_CLOSE: GRACEFUL_CLOSE written towards it, SUSPECT to the others", async () => {
  await h.start();
  const [a, b, dead] = [await h.client(), await h.client(), await h.client()];
  a.register("chat", uuid(1), "a");
  b.register("chat", uuid(2), "b");
  dead.register("chat", uuid(3), "dead");
  await h.registered(3);
  dead.socket.end(); // FIN, but keep reading: the router's GRACEFUL_CLOSE must arrive
  await waitFor("GRACEFUL_CLOSE towards the lost peer", () => dead.gracefulCloses === 1);
  const expected = suspectFrame("chat", uuid(3)).toString("hex");
  await a.waitType(GossipType.Suspect);
  await b.waitType(GossipType.Suspect);
  expect(a.received.map((r) => r.hex)).toEqual([expected]);
  expect(b.received.map((r) => r.hex)).toEqual([expected]);
  expect(h.router.registry.size).toBe(2);
  expect(h.router.stats().closes).toEqual({ eof: 1 });
});

test("connection reset: SUSPECT for every registration of the lost connection, in each group", async () => {
  await h.start();
  const [a, b, dead] = [await h.client(), await h.client(), await h.client()];
  a.register("g1", uuid(1));
  b.register("g2", uuid(2));
  dead.register("g1", uuid(3));
  dead.register("g2", uuid(4));
  dead.register("g3", uuid(5)); // alone in g3: nobody to tell
  await h.registered(5);
  dead.socket.resetAndDestroy();
  await a.waitType(GossipType.Suspect);
  await b.waitType(GossipType.Suspect);
  await sleep(30);
  expect(a.received.map((r) => r.hex)).toEqual([suspectFrame("g1", uuid(3)).toString("hex")]);
  expect(b.received.map((r) => r.hex)).toEqual([suspectFrame("g2", uuid(4)).toString("hex")]);
  expect(h.router.registry.groups.has("g3")).toBe(false);
});

test("--no-suspect: lost connections are removed silently", async () => {
  await h.start({ suspect: false });
  const [a, dead] = [await h.client(), await h.client()];
  a.register("chat", uuid(1));
  dead.register("chat", uuid(2));
  await h.registered(2);
  dead.socket.end();
  await waitFor("GRACEFUL_CLOSE towards the lost peer", () => dead.gracefulCloses === 1);
  await h.registered(1);
  await sleep(50);
  expect(a.received).toHaveLength(0);
});

test("graceful leave (GRACEFUL_CLOSE from the client): registrations removed, no SUSPECT, nothing written back", async () => {
  await h.start();
  const [a, leaver] = [await h.client(), await h.client()];
  a.register("chat", uuid(1));
  leaver.register("chat", uuid(2));
  await h.registered(2);
  leaver.leave();
  await h.registered(1);
  await leaver.waitClosed();
  await sleep(50);
  expect(a.received).toHaveLength(0);
  expect(leaver.received).toHaveLength(0);
  expect(h.router.stats().closes).toEqual({ graceful: 1 });
});

test("a client process killed with kill -9 is suspected", async () => {
  await h.start();
  const [a, b] = [await h.client(), await h.client()];
  a.register("chat", uuid(1), "a");
  b.register("chat", uuid(2), "b");
  await h.registered(2);
  const hex = registerFrame("chat", uuid(3), "victim", null).toString("hex");
  const script = `const s=require("net").connect(${h.port},"127.0.0.1",()=>{s.write(Buffer.from("${hex}","hex"),()=>console.log("ready"))});s.on("data",()=>{});setInterval(()=>{},1000);`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  await waitFor("the child client to register", () => out.includes("ready"), { timeoutMs: 10_000 });
  await h.registered(3);
  child.kill("SIGKILL");
  await a.waitType(GossipType.Suspect);
  await b.waitType(GossipType.Suspect);
  const expected = suspectFrame("chat", uuid(3)).toString("hex");
  expect(a.received.map((r) => r.hex)).toEqual([expected]);
  expect(b.received.map((r) => r.hex)).toEqual([expected]);
});

test("--expiry closes silent connections (GRACEFUL_CLOSE + SUSPECT) and keeps chatty ones", async () => {
  await h.start({ expiryMs: 300 });
  const [alive, silent] = [await h.client(), await h.client()];
  alive.register("chat", uuid(1));
  silent.register("chat", uuid(2));
  await h.registered(2);
  const hb = setInterval(() => alive.send(heartbeatFrame()), 50);
  try {
    await waitFor("the silent connection to expire", () => silent.gracefulCloses === 1, { timeoutMs: 5_000 });
    await alive.waitType(GossipType.Suspect);
    expect(alive.ofType(GossipType.Suspect)[0]!.addr).toEqual(uuid(2));
    await sleep(400); // longer than the expiry: heartbeats keep `alive` open
    expect(alive.closed || alive.ended).toBe(false);
    expect(h.router.stats().expiries).toBe(1);
    expect(h.router.registry.size).toBe(1);
  } finally {
    clearInterval(hb);
  }
  expect(silent.received.at(-1)!.hex).toBe(GC_HEX);
});

test("a router whose process stalls past --expiry reads what its clients sent before it judges them silent", async () => {
  // A GC pause, a starved CPU or SIGSTOP: the loop resumes with the reaper's timer overdue and the
  // clients' heartbeats waiting in the socket buffers. Timers run before the loop polls sockets, so
  // a reaper that judged at once expired every client (seen as a paused sender that never came
  // back in a loaded test run).
  await h.start({ expiryMs: 300 });
  const client = await h.client();
  client.register("chat", uuid(1));
  await h.registered(1);
  const hb = setInterval(() => client.send(heartbeatFrame()), 50);
  try {
    await sleep(200);
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        // After the loop's poll: the heartbeat reaches the kernel now, and the router reads it only
        // in the next turn's poll, after that turn's timers.
        client.send(heartbeatFrame());
        const until = Date.now() + 900; // three expiry periods
        while (Date.now() < until) {
          // the stall
        }
        resolve();
      }),
    );
    await sleep(200);
    expect(h.router.stats().expiries).toBe(0);
    expect(client.closed || client.ended).toBe(false);
    expect(h.router.registry.size).toBe(1);
  } finally {
    clearInterval(hb);
  }
});

test("stop(): every client gets GRACEFUL_CLOSE, no SUSPECT", async () => {
  await h.start();
  const [a, b] = [await h.client(), await h.client()];
  a.register("chat", uuid(1));
  b.register("chat", uuid(2));
  await h.registered(2);
  await h.router.stop();
  await waitFor("GRACEFUL_CLOSE on shutdown", () => a.gracefulCloses === 1 && b.gracefulCloses === 1);
  expect(a.ofType(GossipType.Suspect)).toHaveLength(0);
  expect(b.ofType(GossipType.Suspect)).toHaveLength(0);
});
