// Payloads of the control envelopes (site views, topology, probe answers): small JSON documents,
// checked field by field on the way in. Anything unexpected is an EnvelopeError("bad-control").
import { EnvelopeError } from "./envelope.js";

/** Control payloads are small; this bounds the JSON parser's work. */
export const MAX_CONTROL_BYTES = 1024 * 1024;
const MAX_LIST = 10_000;
const MAX_TEXT = 1024;

/** One member of a site as other sites see it. */
export interface SiteMemberInfo {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** A site's view, announced by its site master on the bridge. members[0] = coordinator. */
export interface SiteViewInfo {
  readonly site: string;
  readonly viewId: string;
  readonly members: readonly SiteMemberInfo[];
  /** Names of the members acting as site masters, in preference order. */
  readonly siteMasters: readonly string[];
}

/** Route to one remote site, as its local site master sees it. */
export interface RouteInfo {
  readonly site: string;
  readonly up: boolean;
  /** Routers (host[port]) through which a site master of that site is currently seen. */
  readonly routers: readonly string[];
  /** Names of that site's site masters on the bridge. */
  readonly siteMasters: readonly string[];
}

/** One router connection of a site master. */
export interface RouterInfo {
  readonly endpoint: string;
  readonly state: string;
}

/** What a site master tells its local members about the other sites. */
export interface TopologyInfo {
  /** Name of the site master that sent it. */
  readonly from: string;
  readonly sites: readonly SiteViewInfo[];
  readonly routes: readonly RouteInfo[];
  readonly routers: readonly RouterInfo[];
}

/** A member's answer to `relay probe` (the fields of the walkthrough's probe.sh, plus site). */
export interface ProbeInfo {
  readonly name: string;
  readonly site: string;
  readonly local_addr: string;
  readonly physical_addr: string;
  readonly view: string;
  readonly cluster: string;
  readonly version: string;
  readonly site_master: boolean;
  /** One line per replicated map this member hosts (runtime/kv: entries, readiness, backups). */
  readonly maps?: readonly string[];
}

/** Most map lines in one probe answer, and the longest line. */
export const MAX_PROBE_MAPS = 64;
export const MAX_PROBE_MAP_LINE = 512;

export function encodeControl(value: SiteViewInfo | TopologyInfo | ProbeInfo): Buffer {
  return Buffer.from(JSON.stringify(value), "utf8");
}

function parseJson(payload: Uint8Array): unknown {
  if (payload.length > MAX_CONTROL_BYTES) {
    throw new EnvelopeError("bad-control", `control payload of ${payload.length} bytes`);
  }
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8"));
  } catch {
    throw new EnvelopeError("bad-control", "control payload is not JSON");
  }
}

function bad(what: string): never {
  throw new EnvelopeError("bad-control", what);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function text(v: unknown, what: string, max = MAX_TEXT): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max) bad(`${what} is not a string of 1..${max}`);
  return v;
}

function list<T>(v: unknown, what: string, item: (x: unknown, what: string) => T): T[] {
  if (!Array.isArray(v) || v.length > MAX_LIST) bad(`${what} is not a list of at most ${MAX_LIST}`);
  return v.map((x, i) => item(x, `${what}[${i}]`));
}

function port(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65535) bad(`${what} is not a port`);
  return v;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") bad(`${what} is not a boolean`);
  return v;
}

function member(v: unknown, what: string): SiteMemberInfo {
  const o = obj(v, what);
  return {
    name: text(o["name"], `${what}.name`, 255),
    host: text(o["host"], `${what}.host`),
    port: port(o["port"], `${what}.port`),
  };
}

function siteView(v: unknown, what: string): SiteViewInfo {
  const o = obj(v, what);
  return {
    site: text(o["site"], `${what}.site`, 255),
    viewId: text(o["viewId"], `${what}.viewId`),
    members: list(o["members"], `${what}.members`, member),
    siteMasters: list(o["siteMasters"], `${what}.siteMasters`, (x, w) => text(x, w, 255)),
  };
}

function route(v: unknown, what: string): RouteInfo {
  const o = obj(v, what);
  return {
    site: text(o["site"], `${what}.site`, 255),
    up: bool(o["up"], `${what}.up`),
    routers: list(o["routers"], `${what}.routers`, (x, w) => text(x, w)),
    siteMasters: list(o["siteMasters"], `${what}.siteMasters`, (x, w) => text(x, w, 255)),
  };
}

function router(v: unknown, what: string): RouterInfo {
  const o = obj(v, what);
  return { endpoint: text(o["endpoint"], `${what}.endpoint`), state: text(o["state"], `${what}.state`, 64) };
}

export function decodeSiteView(payload: Uint8Array): SiteViewInfo {
  return siteView(parseJson(payload), "siteView");
}

export function decodeTopology(payload: Uint8Array): TopologyInfo {
  const o = obj(parseJson(payload), "topology");
  return {
    from: text(o["from"], "topology.from", 255),
    sites: list(o["sites"], "topology.sites", siteView),
    routes: list(o["routes"], "topology.routes", route),
    routers: list(o["routers"], "topology.routers", router),
  };
}

export function decodeProbeInfo(payload: Uint8Array): ProbeInfo {
  const o = obj(parseJson(payload), "probe");
  return {
    name: text(o["name"], "probe.name", 255),
    site: text(o["site"], "probe.site", 255),
    local_addr: text(o["local_addr"], "probe.local_addr"),
    physical_addr: text(o["physical_addr"], "probe.physical_addr"),
    view: text(o["view"], "probe.view", 64 * 1024),
    cluster: text(o["cluster"], "probe.cluster"),
    version: text(o["version"], "probe.version"),
    site_master: bool(o["site_master"], "probe.site_master"),
    ...(o["maps"] === undefined ? {} : { maps: probeMaps(o["maps"]) }),
  };
}

function probeMaps(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_PROBE_MAPS)
    bad(`probe.maps is not a list of at most ${MAX_PROBE_MAPS}`);
  return v.map((x, i) => text(x, `probe.maps[${i}]`, MAX_PROBE_MAP_LINE));
}
