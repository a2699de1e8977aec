// The issue's attack on the cluster port (issue 13): "A HELLO as a fake member followed by a VIEW
// with seq 2^32-1 ends in an uncaught RangeError: 5 frames killed 4 of 5 nyc nodes within 1 s. A
// fake member became the nyc coordinator and site master for 20 s." Repeated here against 5 real
// member processes (the coordinator is the site master: siteMasters = 1), without and with the
// cluster secret; every process must stay alive and no stranger may become coordinator.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, test } from "@jest/globals";
import { prove } from "../../runtime/cluster/auth.js";
import {
  authTranscript,
  CLUSTER_PROTOCOL_VERSION,
  type ClusterFrame,
  MAX_VIEW_SEQ,
} from "../../runtime/cluster/codec.js";
import { type Member, makeView } from "../../runtime/cluster/member.js";
import { freePort, REPO_ROOT } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { fakeMember, RawPeer, viewFrameWithSeq } from "./raw-peer.js";

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures/member.ts");
const children: ChildProcess[] = [];

afterEach(() => {
  RawPeer.destroyAll();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

interface Node {
  readonly child: ChildProcess;
  readonly port: number;
  member: Member | null;
  /** The last VIEW line: seq, coordinator key, names. */
  view: { seq: number; coordinator: string; names: string } | null;
  views: number;
}

/** 5 member processes on one static list; resolves once all are in one view of 5. */
async function fiveProcesses(secretFile?: string): Promise<Node[]> {
  const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
  const hosts = ports.map((p) => `127.0.0.1[${p}]`).join(",");
  const nodes = ports.map((port, i): Node => {
    const args = ["--import", "tsx", FIXTURE, `nyc-${i + 1}`, String(port), "chat", hosts];
    if (secretFile) args.push(secretFile);
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    const node: Node = { child, port, member: null, view: null, views: 0 };
    let partial = "";
    child.stdout!.on("data", (d: Buffer) => {
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop()!;
      for (const l of lines) {
        const [kind, a, b, c] = l.split(" ");
        if (kind === "READY") {
          const [name, uuid] = a!.split("/");
          node.member = { name: name!, site: "nyc", uuid: uuid!, host: "127.0.0.1", port };
        } else if (kind === "VIEW") {
          node.view = { seq: Number(a), coordinator: b!, names: c! };
          node.views++;
        }
      }
    });
    return node;
  });
  await waitFor(
    "one view of 5 in all 5 processes",
    () =>
      nodes.every((n) => n.member && n.view) &&
      new Set(nodes.map((n) => JSON.stringify(n.view))).size === 1 &&
      nodes[0]!.view!.names.split(",").length === 5,
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  return nodes;
}

const alive = (nodes: Node[]) => nodes.every((n) => n.child.exitCode === null && n.child.signalCode === null);
const realKeys = (nodes: Node[]) => new Set(nodes.map((n) => `${n.member!.name}/${n.member!.uuid}`));
const FAKE = fakeMember("nyc-0"); // sorts before every real member: it would win any merge

describe("the issue's attack on the cluster port, against 5 member processes", () => {
  test("without a secret: the HELLO + VIEW seq 2^32-1 frames kill nobody", async () => {
    const nodes = await fiveProcesses();
    const members = nodes.map((n) => n.member!);
    const before = nodes[0]!.view!;
    // The 5 frames, one connection per node; plus a view naming a third party coordinator.
    for (const n of nodes) {
      const p = await RawPeer.connect(n.port);
      p.send({ type: "hello", version: CLUSTER_PROTOCOL_VERSION, cluster: "chat", member: FAKE });
      p.send(viewFrameWithSeq(makeView(1, [FAKE, ...members]), 0xffffffff));
      const q = await RawPeer.connect(n.port);
      q.send({ type: "hello", version: CLUSTER_PROTOCOL_VERSION, cluster: "chat", member: FAKE });
      q.send(viewFrameWithSeq(makeView(1, [fakeMember("nyc-00"), ...members]), MAX_VIEW_SEQ));
    }
    // Long enough for a crash, a view change and failure detection (suspect timeout 400 ms).
    await new Promise((r) => setTimeout(r, 2000));
    expect(alive(nodes)).toBe(true);
    expect(nodes.map((n) => n.view)).toEqual(nodes.map(() => before));
  }, 60_000);

  test("with a secret: nothing a stranger sends is processed; no stranger coordinates", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mesh-secret-"));
    const file = path.join(dir, "cluster-secret");
    writeFileSync(file, `${randomBytes(32).toString("base64")}\n`);
    const nodes = await fiveProcesses(file);
    const members = nodes.map((n) => n.member!);
    const before = nodes[0]!.view!;
    const viewsBefore = nodes.map((n) => n.views);
    const hello = { version: CLUSTER_PROTOCOL_VERSION, cluster: "chat", member: FAKE };
    // A merge-shaped view that today's main installed: the fake member first, everyone kept.
    const forged = viewFrameWithSeq(makeView(1, [FAKE, ...members]), before.seq + 1);
    const replies: ClusterFrame[] = [];
    for (const n of nodes) {
      // Plain HELLO + VIEW seq 2^32-1 + merge-shaped VIEW.
      const p = await RawPeer.connect(n.port);
      p.send({ type: "hello", ...hello });
      p.send(viewFrameWithSeq(makeView(1, [FAKE, ...members]), 0xffffffff));
      p.send(forged);
      // AUTH_HELLO, then a proof made without the secret, then the forged view.
      const q = await RawPeer.connect(n.port);
      const nonce = randomBytes(32);
      q.send({ type: "auth-hello", ...hello, nonce });
      const ch = (await q.next("auth-challenge")) as Extract<ClusterFrame, { type: "auth-challenge" }> | null;
      if (ch) {
        const t = authTranscript("dialer", "chat", FAKE, ch.member, nonce, ch.nonce);
        q.send({ type: "auth-proof", proof: prove(Buffer.from("a guess at the secret, 32 bytes long!"), t) });
      }
      q.send(forged);
      expect(await p.closedWithin(5000)).toBe(true);
      expect(await q.closedWithin(5000)).toBe(true);
      replies.push(...p.frames, ...q.frames);
    }
    await new Promise((r) => setTimeout(r, 2000));
    expect(alive(nodes)).toBe(true);
    // No view changed at all (no new VIEW line), the coordinator is the same real member.
    expect(nodes.map((n) => n.views)).toEqual(viewsBefore);
    expect(nodes.map((n) => n.view)).toEqual(nodes.map(() => before));
    expect(realKeys(nodes).has(before.coordinator)).toBe(true);
    // What the stranger got back: bare REJECTs and challenges, never an AUTH_ACK or a view.
    expect(new Set(replies.map((f) => f.type))).toEqual(new Set(["reject", "auth-challenge"]));
    for (const f of replies) if (f.type === "reject") expect(f.reason).toBe("refused");
  }, 60_000);
});
