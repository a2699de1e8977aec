// The env contract: what the constructs render, the runtime parses back; every bad variable gets
// a ConfigError naming it.

import fc from "fast-check";
import { ConfigError } from "../../contract/initial-hosts.js";
import {
  parseRelayEnv,
  RELAY_ENV,
  type RelayEnvSpec,
  type RelayEnvVar,
  renderRelayEnv,
} from "../../contract/relay-env.js";

/** What Kubernetes does with the rendered list: literal values, downward-API fields from the pod. */
function materialize(env: readonly RelayEnvVar[], pod: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    env.map((e) => ("valueFrom" in e ? [e.name, pod[e.valueFrom.fieldPath]!] : [e.name, e.value])),
  );
}

const pod = { "metadata.name": "nyc-relay-7d9f-abcde", "status.podIP": "10.0.3.17" };
const cloudSpec: RelayEnvSpec = {
  site: "nyc",
  cluster: "relay",
  discovery: { kind: "dns", query: "nyc-relay.default.svc.cluster.local" },
  tunnelInitialHosts: "a1.elb.amazonaws.com[12001],34.82.1.2[12001]",
  tls: {
    cert: "/etc/relay/tls/tls.crt",
    key: "/etc/relay/tls/tls.key",
    ca: "/etc/relay/tls/ca.crt",
    serverName: "gossip-router.relay.internal",
  },
};

test("render: ordered names, downward API for the pod's name and IP", () => {
  const env = renderRelayEnv(cloudSpec);
  expect(env.map((e) => e.name)).toEqual([
    "SITE",
    "CLUSTER",
    "DNS_QUERY",
    "TUNNEL_INITIAL_HOSTS",
    "NODE_NAME",
    "BIND_ADDR",
    "BIND_PORT",
    "HTTP_PORT",
    "SITE_MASTERS",
    "TLS_CERT",
    "TLS_KEY",
    "TLS_CA",
    "TLS_SERVER_NAME",
  ]);
  expect(env[4]).toEqual({ name: "NODE_NAME", valueFrom: { fieldPath: "metadata.name" } });
  expect(env[5]).toEqual({ name: "BIND_ADDR", valueFrom: { fieldPath: "status.podIP" } });
  expect(env.slice(6, 9)).toEqual([
    { name: "BIND_PORT", value: "7800" },
    { name: "HTTP_PORT", value: "8080" },
    { name: "SITE_MASTERS", value: "1" },
  ]);
});

test("render -> parse round trip (cloud, with TLS)", () => {
  const config = parseRelayEnv(materialize(renderRelayEnv(cloudSpec), pod));
  expect(config).toEqual({
    site: "nyc",
    cluster: "relay",
    discovery: { kind: "dns", query: "nyc-relay.default.svc.cluster.local" },
    tunnelInitialHosts: [
      { host: "a1.elb.amazonaws.com", port: 12001 },
      { host: "34.82.1.2", port: 12001 },
    ],
    nodeName: "nyc-relay-7d9f-abcde",
    bindAddr: "10.0.3.17",
    bindPort: 7800,
    httpPort: 8080,
    siteMasters: 1,
    tls: cloudSpec.tls,
  });
});

test("render -> parse round trip (local run: static members, literal name and address, no TLS)", () => {
  const env = renderRelayEnv({
    site: "sfc",
    cluster: "c1",
    discovery: { kind: "static", members: "127.0.0.1[7801],127.0.0.1[7802]" },
    tunnelInitialHosts: "127.0.0.1[12001]",
    nodeName: "sfc-1",
    bindAddr: "127.0.0.1",
    bindPort: 7801,
    httpPort: 8081,
    siteMasters: 2,
  });
  expect(env.every((e) => "value" in e)).toBe(true);
  const config = parseRelayEnv(materialize(env, {}));
  expect(config.discovery).toEqual({
    kind: "static",
    members: [
      { host: "127.0.0.1", port: 7801 },
      { host: "127.0.0.1", port: 7802 },
    ],
  });
  expect(config).toMatchObject({
    nodeName: "sfc-1",
    bindPort: 7801,
    httpPort: 8081,
    siteMasters: 2,
    tls: undefined,
  });
});

test("property: any valid spec round-trips", () => {
  const label = fc.stringMatching(/^[a-z][a-z0-9]{0,20}$/);
  const port = fc.integer({ min: 1, max: 65535 });
  fc.assert(
    fc.property(
      label,
      label,
      fc.array(fc.tuple(label, port), { minLength: 1, maxLength: 4 }),
      port,
      port,
      fc.integer({ min: 1, max: 16 }),
      (site, cluster, routers, bindPort, httpPort, siteMasters) => {
        fc.pre(bindPort !== httpPort);
        const hosts = routers.map(([h, p]) => `${h}.example.com[${p}]`).join(",");
        const config = parseRelayEnv(
          materialize(
            renderRelayEnv({
              site,
              cluster,
              discovery: { kind: "dns", query: `${site}.svc.cluster.local` },
              tunnelInitialHosts: hosts,
              bindPort,
              httpPort,
              siteMasters,
            }),
            pod,
          ),
        );
        expect(config.tunnelInitialHosts).toEqual(
          routers.map(([h, p]) => ({ host: `${h}.example.com`, port: p })),
        );
        expect([config.site, config.cluster, config.bindPort, config.httpPort, config.siteMasters]).toEqual([
          site,
          cluster,
          bindPort,
          httpPort,
          siteMasters,
        ]);
      },
    ),
    { numRuns: 200 },
  );
});

const good = materialize(renderRelayEnv(cloudSpec), pod);

test.each<[string, Record<string, string | undefined>, RegExp]>([
  ["SITE missing", { SITE: undefined }, /^SITE is not set/],
  ["SITE blank", { SITE: "  " }, /^SITE is not set/],
  ["SITE not DNS-1123", { SITE: "New York" }, /^SITE: "New York" is not a DNS-1123 label/],
  ["CLUSTER missing", { CLUSTER: undefined }, /^CLUSTER is not set/],
  ["CLUSTER with a space", { CLUSTER: "a b" }, /^CLUSTER: "a b" is not allowed/],
  ["both discovery kinds", { STATIC_MEMBERS: "h[1]" }, /^DNS_QUERY and STATIC_MEMBERS are both set/],
  ["no discovery", { DNS_QUERY: undefined }, /^neither DNS_QUERY nor STATIC_MEMBERS is set/],
  ["DNS_QUERY not a name", { DNS_QUERY: "a..b" }, /^DNS_QUERY: "a\.\.b" is not a DNS name/],
  [
    "STATIC_MEMBERS bad",
    { DNS_QUERY: undefined, STATIC_MEMBERS: "host:7800" },
    /^STATIC_MEMBERS: "host:7800" is not host\[port\]/,
  ],
  ["TUNNEL_INITIAL_HOSTS missing", { TUNNEL_INITIAL_HOSTS: undefined }, /^TUNNEL_INITIAL_HOSTS is not set/],
  ["TUNNEL_INITIAL_HOSTS bad port", { TUNNEL_INITIAL_HOSTS: "a[0]" }, /^TUNNEL_INITIAL_HOSTS: port 0/],
  ["NODE_NAME missing", { NODE_NAME: undefined }, /^NODE_NAME is not set/],
  ["NODE_NAME with a space", { NODE_NAME: "a b" }, /^NODE_NAME: "a b" must be/],
  ["BIND_ADDR with a space", { BIND_ADDR: "1.2.3.4 5" }, /^BIND_ADDR: /],
  ["BIND_PORT not a number", { BIND_PORT: "http" }, /^BIND_PORT: "http" is not an integer in 1\.\.65535/],
  ["BIND_PORT out of range", { BIND_PORT: "70000" }, /^BIND_PORT: 70000 is outside 1\.\.65535/],
  ["HTTP_PORT zero", { HTTP_PORT: "0" }, /^HTTP_PORT: 0 is outside/],
  ["HTTP_PORT = BIND_PORT", { HTTP_PORT: "7800" }, /^HTTP_PORT: 7800 is also BIND_PORT/],
  ["SITE_MASTERS zero", { SITE_MASTERS: "0" }, /^SITE_MASTERS: 0 is outside 1\.\.16/],
  ["SITE_MASTERS negative", { SITE_MASTERS: "-1" }, /^SITE_MASTERS: "-1" is not an integer/],
  ["TLS half set", { TLS_KEY: undefined }, /^TLS is half configured: TLS_KEY missing/],
  [
    "TLS_SERVER_NAME without TLS",
    { TLS_CERT: undefined, TLS_KEY: undefined, TLS_CA: undefined },
    /^TLS_SERVER_NAME is set without TLS/,
  ],
  ["TLS_SERVER_NAME not a name", { TLS_SERVER_NAME: "-bad-" }, /^TLS_SERVER_NAME: "-bad-" is not a DNS name/],
  ["TLS path too long", { TLS_CA: `/${"x".repeat(5000)}` }, /^TLS_CA: path longer than 4096/],
  ["KV_PORT without KV_MAPS", { KV_PORT: "8090" }, /^KV_PORT set without KV_MAPS/],
  ["KV_MAPS bad name", { KV_MAPS: "ok,not ok", KV_TOKEN_FILE: "/t" }, /^KV_MAPS: "not ok" is not a map name/],
  ["KV_MAPS twice", { KV_MAPS: "a,a", KV_TOKEN_FILE: "/t" }, /^KV_MAPS: a map is named twice/],
  ["KV_MAPS empty item", { KV_MAPS: "a,", KV_TOKEN_FILE: "/t" }, /^KV_MAPS: "" is not a map name/],
  ["KV_PORT = HTTP_PORT", { KV_MAPS: "a", KV_PORT: "8080", KV_TOKEN_FILE: "/t" }, /^KV_PORT: 8080 is also/],
  [
    "kv API open on a pod IP",
    { KV_MAPS: "a" },
    /^KV_TOKEN_FILE is not set: the maps' API on 10\.0\.3\.17 needs/,
  ],
  [
    "KV_BACKUP_SITES itself",
    { KV_MAPS: "a", KV_TOKEN_FILE: "/t", KV_BACKUP_SITES: "sfc,nyc" },
    /^KV_BACKUP_SITES: "nyc" is not another site/,
  ],
  [
    "KV_TLS_CERT without KV_TLS_KEY",
    { KV_MAPS: "a", KV_TOKEN_FILE: "/t", KV_TLS_CERT: "/kv/tls.crt" },
    /^the kv API's TLS is half configured: KV_TLS_KEY missing/,
  ],
  ["KV_TLS_KEY without KV_MAPS", { KV_TLS_KEY: "/kv/tls.key" }, /^KV_TLS_KEY set without KV_MAPS/],
])("%s -> ConfigError naming the variable", (_, patch, message) => {
  const env = { ...good, ...patch };
  let error: unknown;
  try {
    parseRelayEnv(env);
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const text = (error as Error).message;
  expect(text).toMatch(message);
  expect(text).not.toContain("\n");
  expect(text.length).toBeLessThan(300);
});

test("defaults for a minimal local env; unknown variables ignored", () => {
  const config = parseRelayEnv({
    SITE: "nyc",
    CLUSTER: "relay",
    STATIC_MEMBERS: "127.0.0.1[7800]",
    TUNNEL_INITIAL_HOSTS: "127.0.0.1[12001]",
    NODE_NAME: "nyc-1",
    PATH: "/usr/bin",
  });
  expect(config).toMatchObject({
    bindAddr: "127.0.0.1",
    bindPort: 7800,
    httpPort: 8080,
    siteMasters: 1,
    tls: undefined,
  });
});

test("RELAY_ENV lists each name once", () => {
  const names = Object.values(RELAY_ENV);
  expect(new Set(names).size).toBe(names.length);
});

test("kv: rendered through the contract and parsed back; open API only on loopback", () => {
  const spec: RelayEnvSpec = {
    ...cloudSpec,
    kv: { maps: ["sessions", "orders"], tokenFile: "/etc/relay/kv-token/token", backupSites: ["sfc"] },
  };
  const env = renderRelayEnv(spec);
  expect(env.slice(-4)).toEqual([
    { name: "KV_MAPS", value: "sessions,orders" },
    { name: "KV_PORT", value: "8090" },
    { name: "KV_TOKEN_FILE", value: "/etc/relay/kv-token/token" },
    { name: "KV_BACKUP_SITES", value: "sfc" },
  ]);
  expect(parseRelayEnv(materialize(env, pod)).kv).toEqual({
    maps: ["sessions", "orders"],
    port: 8090,
    tokenFile: "/etc/relay/kv-token/token",
    backupSites: ["sfc"],
    tls: undefined,
  });
  const tls = { cert: "/etc/relay/kv-tls/tls.crt", key: "/etc/relay/kv-tls/tls.key" };
  const withTls = renderRelayEnv({ ...spec, kv: { ...spec.kv!, tls } });
  expect(withTls.slice(-2)).toEqual([
    { name: "KV_TLS_CERT", value: tls.cert },
    { name: "KV_TLS_KEY", value: tls.key },
  ]);
  expect(parseRelayEnv(materialize(withTls, pod)).kv?.tls).toEqual(tls);
  expect(parseRelayEnv(good).kv).toBeUndefined();
  const local = parseRelayEnv({ ...good, BIND_ADDR: "127.0.0.1", KV_MAPS: "demo" });
  expect(local.kv).toEqual({
    maps: ["demo"],
    port: 8090,
    tokenFile: undefined,
    backupSites: undefined,
    tls: undefined,
  });
});
