// An e2e attack app (issue 13): a hostile client of a public router, speaking the raw GossipRouter
// protocol over TLS from inside a pod namespace. It holds whatever certificate it is given (a
// stolen copy of a site's Secret, or a stranger's own) and prints one JSON line with what
// happened. Run as `node --import tsx test/e2e/apps/attacker.ts <attack> --router HOST:PORT ...`:
//
//   hijack --victim-site S       find S's site master on the bridge (GET_MBRS) and REGISTER its
//                                address as ours, as a hijacker wanting its unicasts would
//   forge-stable --claim-site C --target-site T --sender NAME --incarnation I --seq N
//                                register an address of our own site T (allowed), then send T's
//                                site master, from a forged address of site C, a Stable report
//                                and an ack that claim to be C's and to cover sender NAME
//                                (incarnation I) up to N, so that it would drop what C has not
//                                received; only the router's sender check can tell the address
//                                is not ours (T's own addresses are not listened to on the bridge)
//   connect                      only the TLS handshake and one GET_MBRS (a stranger's probe)
//
// TLS: --cert/--key (optional: a client without a certificate) --ca --servername.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { parseArgs } from "node:util";
import { decodeBody } from "../../../runtime/protocol/codec.js";
import { getMbrsFrame, messageFrame, registerFrame } from "../../../runtime/protocol/frames.js";
import { FrameSplitter } from "../../../runtime/protocol/splitter.js";
import { type GossipData, GossipType, type SiteAddress } from "../../../runtime/protocol/types.js";
import { ackEnvelope, encodeStable } from "../../../runtime/relay/delivery/reports.js";
import { EnvelopeKind, encodeEnvelope } from "../../../runtime/relay/envelope.js";

const BRIDGE = "bridge";
const WAIT_MS = 8_000;

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    router: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    ca: { type: "string" },
    servername: { type: "string" },
    "victim-site": { type: "string" },
    "claim-site": { type: "string" },
    "target-site": { type: "string" },
    incarnation: { type: "string" },
    sender: { type: "string" },
    seq: { type: "string" },
  },
});
const attack = positionals[0];
const [host, portText] = (o.router ?? "").split(":");

function print(result: Record<string, unknown>): never {
  process.stdout.write(`${JSON.stringify({ attack, router: o.router, ...result })}\n`);
  process.exit(0);
}

/** The raw protocol over one TLS connection: frames received, and whether the router closed it. */
class Link {
  readonly frames: GossipData[] = [];
  closed = false;
  readonly #splitter = new FrameSplitter();
  readonly #waiters = new Set<() => void>();

  constructor(readonly socket: tls.TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      this.#splitter.push(chunk, {
        frame: (f) => this.frames.push(decodeBody(Buffer.from(f).subarray(4))),
        gracefulClose: () => {},
      });
      this.#wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  #wake(): void {
    for (const w of this.#waiters) w();
  }

  /** Resolves true once `cond` holds, false after WAIT_MS. */
  until(cond: () => boolean): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        resolve(false);
      }, WAIT_MS);
      this.#waiters.add(check);
      check();
    });
  }

  /** GET_MBRS of the bridge: the registered addresses (empty when refused or closed). */
  async bridgeMembers(): Promise<{ addr: SiteAddress; name: string | null }[]> {
    const before = this.frames.length;
    this.socket.write(getMbrsFrame(BRIDGE));
    await this.until(
      () => this.closed || this.frames.slice(before).some((f) => f.type === GossipType.GetMbrsRspLast),
    );
    return this.frames
      .slice(before)
      .flatMap((f) => f.pingData)
      .filter((p) => p.member?.kind === "site-uuid")
      .map((p) => ({ addr: p.member as SiteAddress, name: p.logicalName }));
  }
}

function connect(): Promise<Link> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port: Number(portText),
      ...(o.cert ? { cert: readFileSync(o.cert) } : {}),
      ...(o.key ? { key: readFileSync(o.key) } : {}),
      ...(o.ca ? { ca: readFileSync(o.ca) } : {}),
      ...(o.servername ? { servername: o.servername } : {}),
    });
    const t = setTimeout(() => reject(new Error("TLS handshake timed out")), WAIT_MS);
    socket.once("secureConnect", () => {
      clearTimeout(t);
      resolve(new Link(socket));
    });
    socket.once("error", (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

const siteMasterOf = (members: { addr: SiteAddress }[], site: string) =>
  members.find((m) => m.addr.site === site)?.addr ?? null;

async function main(): Promise<void> {
  let link: Link;
  try {
    link = await connect();
  } catch (err) {
    print({ connected: false, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
  }
  // TLS 1.3: a refused client certificate shows up as the router closing right after the handshake.
  const members = await link.bridgeMembers();
  if (attack === "connect") print({ connected: !link.closed, members: members.length });

  if (attack === "hijack") {
    const victim = siteMasterOf(members, o["victim-site"] ?? "");
    if (!victim) print({ connected: true, found: false, members: members.length });
    link.socket.write(registerFrame(BRIDGE, victim, victim.name, null));
    const closed = await link.until(() => link.closed);
    print({ connected: true, found: true, victim: victim.name, closedByRouter: closed });
  }

  if (attack === "forge-stable") {
    const ourSite = o["target-site"]!; // a stolen copy of the target site's own Secret
    const target = siteMasterOf(members, ourSite);
    if (!target) print({ connected: true, found: false, members: members.length });
    const me: SiteAddress = {
      kind: "site-uuid",
      uuid: randomUUID(),
      flags: 0,
      extensions: [],
      site: ourSite,
      name: `${ourSite}-intruder`,
    };
    link.socket.write(registerFrame(BRIDGE, me, me.name, null));
    const claimed = { site: o["claim-site"]!, name: `${o["claim-site"]}-1`, incarnation: randomUUID() };
    // The forged sender: an address of site C (what C's site master would send from).
    const forgedSender: SiteAddress = { ...me, uuid: randomUUID(), site: claimed.site, name: claimed.name };
    const incarnation = o.incarnation!;
    const seq = Number(o.seq);
    const stable = encodeEnvelope({
      kind: EnvelopeKind.Stable,
      hops: 0,
      origin: claimed,
      seq: 0,
      dest: { kind: "member", site: ourSite, name: o.sender! },
      payload: encodeStable({ incarnation, seq }),
    });
    const ack = encodeEnvelope(
      ackEnvelope(claimed, "forged", [{ site: ourSite, name: o.sender!, incarnation, seq }]),
    );
    for (let i = 0; i < 5; i++) {
      link.socket.write(messageFrame(BRIDGE, target, forgedSender, stable));
      link.socket.write(messageFrame(BRIDGE, target, forgedSender, ack));
    }
    const closed = await link.until(() => link.closed);
    print({ connected: true, found: true, target: target.name, sent: 10, closedByRouter: closed });
  }
  print({ error: `unknown attack ${JSON.stringify(attack)}` });
}

await main();
