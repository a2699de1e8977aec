// A message's payload belongs to the application: it may keep it and read it later. Payloads are
// views into what the connection read (no copy); a frame split across two socket reads is
// reassembled, and the mesh's splitter gives each such frame a buffer of its own (stableFrames). With
// one reused reassembly buffer, 59 of 200 kept payloads changed under the application.
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import type { RelayMessage } from "../../runtime/relay/types.js";
import { waitFor } from "../helpers/wait.js";
import { type Member, Sites } from "../kv/sites.js";

let sites: Sites;
let members: Member[];
beforeAll(async () => {
  sites = await Sites.start();
  members = await sites.startSites({ nyc: 3, sfc: 2 });
}, 60_000);
afterAll(async () => {
  await sites.close();
});

/** Message i: 20 KB of the byte (i mod 251), so most frames straddle socket reads. */
const body = (i: number) => Buffer.alloc(20_000, i % 251);

test.each([
  ["in the site (mesh)", "nyc"],
  ["across sites (tunnel, then mesh)", "sfc"],
])(
  "payloads kept by the application keep their bytes: %s",
  async (_, site) => {
    const [sender] = members;
    const receivers = members.filter((m) => m !== sender && m.channel.site === site);
    const kept = new Map<Member, Uint8Array[]>(receivers.map((r) => [r, []]));
    const listeners = receivers.map((r) => {
      const l = (m: RelayMessage) => {
        if (m.payload.length === 20_000) kept.get(r)!.push(m.payload); // kept as handed over, no copy
      };
      r.channel.on("message", l);
      return () => r.channel.off("message", l);
    });
    const N = 200;
    // In bursts: the frames of a turn leave in one write and arrive in reads that cut through them.
    for (let i = 0; i < N; i += 20) {
      for (let j = i; j < i + 20; j++) sender!.channel.send({ kind: "site", site }, body(j));
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(
      "every receiver has every message",
      () => receivers.every((r) => kept.get(r)!.length === N),
      {
        timeoutMs: 60_000,
      },
    );
    for (const stop of listeners) stop();
    for (const r of receivers) {
      const bad = kept.get(r)!.filter((p, i) => !Buffer.from(p).equals(body(i))).length;
      expect({ receiver: r.channel.name, changed: bad }).toEqual({ receiver: r.channel.name, changed: 0 });
    }
  },
  90_000,
);
