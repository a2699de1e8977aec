// Members and views of site nyc numbered 1, 2, 3... for the pure view-rule tests: member i is
// `nyc-i` with a fixed uuid, and view(seq, [ids]) lists them oldest first.
import { type Member, makeView, type View } from "../../runtime/cluster/member.js";

export const member = (i: number): Member => ({
  name: `nyc-${i}`,
  site: "nyc",
  uuid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
  host: "127.0.0.1",
  port: 7800 + i,
});

export const view = (seq: number, ids: readonly number[]): View => makeView(seq, ids.map(member));
