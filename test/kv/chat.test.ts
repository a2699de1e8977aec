// The replicated maps in `relay local`'s chat prompt (the README's first command with --kv-maps):
// a newcomer writes in the chat's site with `kv put ... --remote` (applied by the other site), reads
// it back, and `topo` lists the maps this member holds beside the sites, as `relay probe` does.
// runCli sets LOG_LEVEL=warn, which once kept `relay local` from seeing its routers start.
import { expect, test } from "@jest/globals";
import { requireBuild, runCli } from "../relay/cli.js";

test("relay local --kv-maps demo: kv put --remote, kv get, and the map in topo", async () => {
  requireBuild();
  const lines = ["kv put demo greeting hello --remote", "kv get demo greeting", "topo", "quit"];
  const r = await runCli(
    ["local", "--sites", "nyc=2,sfc=1", "--kv-maps", "demo", "--router-count", "1", "--ready-timeout", "90"],
    {},
    150_000,
    `${lines.join("\n")}\n`,
  );
  expect(r.code).toBe(0);
  const out = r.stdout;
  // The write waited for nyc (the backup site) and named its version; the read sees it.
  expect(out).toMatch(/@sfc\/Temp/);
  expect(out).toMatch(/"hello"|\bhello\b/);
  const topo = out.slice(out.lastIndexOf("maps on this member:"));
  expect(topo).toMatch(
    /^maps on this member:\n {2}demo: 1 entries, 0 tombstones, ready; backup nyc online, 0 pending/,
  );
}, 180_000);
