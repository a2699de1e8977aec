// DnsDiscovery against a real DNS server on loopback (a tiny UDP responder written here), through a
// resolver given explicitly with setServers().
import dgram from "node:dgram";
import { Resolver } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { DnsDiscovery } from "../../runtime/cluster/discovery.js";
import type { LocalCluster } from "../../runtime/cluster/local-cluster.js";
import { freePort } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import { member, sameView } from "./util.js";

/** Answers A queries for the names in `zone`; NXDOMAIN otherwise. Only what the test needs. */
class TinyDns {
  readonly #sock = dgram.createSocket("udp4");
  readonly zone = new Map<string, string[]>();
  queries = 0;

  async start(): Promise<number> {
    this.#sock.on("message", (msg, rinfo) => {
      this.queries++;
      const reply = this.#answer(msg);
      if (reply) this.#sock.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => this.#sock.bind(0, "127.0.0.1", r));
    return this.#sock.address().port;
  }

  close(): Promise<void> {
    return new Promise((r) => this.#sock.close(() => r()));
  }

  #answer(msg: Buffer): Buffer | null {
    if (msg.length < 12) return null;
    const labels: string[] = [];
    let pos = 12;
    while (pos < msg.length && msg[pos]! !== 0) {
      const n = msg[pos]!;
      labels.push(msg.subarray(pos + 1, pos + 1 + n).toString());
      pos += 1 + n;
    }
    const question = msg.subarray(12, pos + 5); // name + 0 + qtype + qclass
    const qtype = msg.readUInt16BE(pos + 1);
    const ips = qtype === 1 ? this.zone.get(labels.join(".").toLowerCase()) : undefined;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(ips ? 0x8180 : 0x8183, 2); // response, RD+RA, rcode 0 or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(ips?.length ?? 0, 6);
    const answers = (ips ?? []).map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(5, 6);
      rr.writeUInt16BE(4, 10);
      ip.split(".").forEach((o, i) => {
        rr[12 + i] = Number(o);
      });
      return rr;
    });
    return Buffer.concat([header, question, ...answers]);
  }
}

describe("DnsDiscovery", () => {
  const dns = new TinyDns();
  let port = 0;
  beforeAll(async () => {
    port = await dns.start();
  });
  afterAll(() => dns.close());

  const resolver = () => {
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([`127.0.0.1:${port}`]);
    return r;
  };

  test("returns the A records of the headless Service, each with the mesh port; re-queried each time", async () => {
    dns.zone.set("relay-nyc.default.svc.cluster.local", ["10.0.0.12", "10.0.0.7"]);
    const d = new DnsDiscovery("relay-nyc.default.svc.cluster.local", 7800, { resolver: resolver() });
    expect(await d.find()).toEqual([
      { host: "10.0.0.12", port: 7800 },
      { host: "10.0.0.7", port: 7800 },
    ]);
    dns.zone.set("relay-nyc.default.svc.cluster.local", ["10.0.0.7", "10.0.0.9", "10.0.0.7"]);
    const before = dns.queries;
    expect((await d.find()).map((a) => a.host)).toEqual(["10.0.0.7", "10.0.0.9"]);
    expect(dns.queries).toBeGreaterThan(before);
  });

  test("servers option builds the resolver; unknown name = no candidates (not an error)", async () => {
    const d = new DnsDiscovery("nobody.default.svc.cluster.local", 7800, { servers: [`127.0.0.1:${port}`] });
    expect(await d.find()).toEqual([]);
  });

  test("an IP literal needs no lookup; bad arguments are ConfigErrors", async () => {
    expect(await new DnsDiscovery("127.0.0.1", 7801).find()).toEqual([{ host: "127.0.0.1", port: 7801 }]);
    expect(() => new DnsDiscovery("", 7800)).toThrow(/DNS_QUERY/);
    expect(() => new DnsDiscovery("x", 0)).toThrow(/port/);
  });

  test("3 members on 127.0.0.1-3 sharing one port find each other through DNS and form one view", async () => {
    const port = await freePort();
    const name = "relay-nyc.chat.svc.cluster.local";
    dns.zone.set(name, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    const cs: LocalCluster[] = [1, 2, 3].map((i) =>
      member(`nyc-${i}`, new DnsDiscovery(name, port, { resolver: resolver() }), {
        bindAddr: `127.0.0.${i}`,
        bindPort: port,
      }),
    );
    try {
      await Promise.all(cs.map((c) => c.start()));
      await waitFor("one view of 3 via DNS", () => sameView(cs), { timeoutMs: 8000 });
      expect(cs.map((c) => c.localMember.host)).toEqual(["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    } finally {
      await Promise.all(cs.map((c) => c.close()));
    }
  });
});
