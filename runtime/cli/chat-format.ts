// How `relay chat` and `relay probe` print things: the 2019 walkthrough's formats, as pure functions.

import type { ProbeInfo } from "../relay/control.js";
import { senderLabel } from "../relay/envelope.js";
import type { Topology } from "../relay/types.js";

/** `<< hello from Temp`, `<< response from nyc-2:nyc`. */
export function formatChatLine(
  text: string,
  from: { name: string; site: string },
  localSite: string,
): string {
  return `<< ${text} from ${senderLabel(from, localSite)}`;
}

/** Control characters would let a remote sender rewrite the reader's terminal. */
export function printable(text: string, max = 4096): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?");
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

export const CHAT_HELP = [
  "Type a line to send it to every member of every site; each member answers 'response'.",
  "Commands:",
  "  help    this text",
  "  topo    every site with its members (ip:port), (me) and // site master; the maps this member holds",
  "  sites   the sites currently reachable",
  "  sm      the site masters of each site",
  "  routes  route status per remote site (up/down, through which routers)",
  "  view    the local view",
  "  kv ...  replicated maps (kv help): put, get, del, dump, status",
  "  quit    leave and exit",
].join("\n");

/**
 * ```
 * sfc
 *   sfc-1 127.0.0.1:40001 // site master
 *   Temp 127.0.0.1:40123 (me)
 * nyc
 *   nyc-1 127.0.0.1:40010 // site master
 * ```
 */
export function formatTopology(t: Topology): string {
  const lines: string[] = [];
  for (const s of t.sites) {
    lines.push(s.site);
    for (const m of s.members) {
      const me = s.site === t.site && m.name === t.self ? " (me)" : "";
      const sm = s.siteMasters.includes(m.name) ? " // site master" : "";
      lines.push(`  ${m.name} ${m.host}:${m.port}${me}${sm}`);
    }
  }
  return lines.join("\n");
}

export function formatSites(t: Topology): string {
  return `sites: ${t.sites.map((s) => s.site).join(", ")}`;
}

export function formatSiteMasters(t: Topology): string {
  return t.sites.map((s) => `${s.site}: ${s.siteMasters.join(", ") || "(none)"}`).join("\n");
}

export function formatRoutes(t: Topology): string {
  if (t.routes.length === 0) return "routes: (none known)";
  const routes = t.routes.map((r) =>
    r.up
      ? `${r.site}: up via ${r.routers.join(", ") || "(no router)"}; site masters: ${r.siteMasters.join(", ") || "(none)"}`
      : `${r.site}: down`,
  );
  const routers = t.routers.map((r) => `router ${r.endpoint}: ${r.state}`);
  return [...routes, ...routers].join("\n");
}

/** The walkthrough's probe.sh block for one member. */
export function formatProbe(index: number, bytes: number, p: ProbeInfo): string {
  return [
    `#${index} (${bytes} bytes):`,
    `local_addr=${p.local_addr}`,
    `physical_addr=${p.physical_addr}`,
    `view=${p.view}`,
    `cluster=${p.cluster}`,
    `site=${p.site}${p.site_master ? " (site master)" : ""}`,
    `version=${p.version}`,
    ...(p.maps ?? []).map((m) => `map=${m}`),
    "",
  ].join("\n");
}
