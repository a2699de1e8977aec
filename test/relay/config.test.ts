// The node's configuration path: the env the constructs render, parsed by the contract, mapped to
// RelayChannel options.
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigError } from "../../contract/errors.js";
import { parseRelayEnv } from "../../contract/relay-env.js";
import { channelOptionsFor } from "../../runtime/relay/config.js";

const base = {
  SITE: "nyc",
  CLUSTER: "relay",
  DNS_QUERY: "relay-nyc.default.svc.cluster.local",
  TUNNEL_INITIAL_HOSTS: "a.example.com[12001],203.0.113.7[12001]",
  NODE_NAME: "nyc-1",
  BIND_ADDR: "192.0.2.10",
};
const tls = {
  TLS_CERT: "/etc/relay/tls/tls.crt",
  TLS_KEY: "/etc/relay/tls/tls.key",
  TLS_CA: "/etc/relay/tls/ca.crt",
};

test("TLS_SERVER_NAME reaches the router connections as the name to verify", () => {
  const o = channelOptionsFor(
    parseRelayEnv({ ...base, ...tls, TLS_SERVER_NAME: "gossip-router.relay.internal" }),
  );
  expect(o.tls).toEqual(
    expect.objectContaining({
      ca: "/etc/relay/tls/ca.crt",
      cert: "/etc/relay/tls/tls.crt",
      key: "/etc/relay/tls/tls.key",
      servername: "gossip-router.relay.internal",
    }),
  );
});

test("without TLS_SERVER_NAME the router's own host name is verified; without TLS there is no tls", () => {
  expect(channelOptionsFor(parseRelayEnv({ ...base, ...tls })).tls).not.toHaveProperty("servername");
  expect(channelOptionsFor(parseRelayEnv(base)).tls).toBeUndefined();
});

test("routers, site, name and addresses come from the env unchanged", () => {
  const o = channelOptionsFor(parseRelayEnv(base));
  expect(o.routers).toEqual([
    { host: "a.example.com", port: 12001 },
    { host: "203.0.113.7", port: 12001 },
  ]);
  expect([o.site, o.cluster, o.name, o.bindAddr, o.advertiseAddr]).toEqual([
    "nyc",
    "relay",
    "nyc-1",
    "192.0.2.10",
    "192.0.2.10",
  ]);
});

test("ROUTER_TOKEN_FILE: its content (without a trailing newline) becomes the router token; unreadable is a ConfigError naming it", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "relay-token-"));
  const file = path.join(dir, "nyc");
  writeFileSync(file, "s3cret\n");
  expect(channelOptionsFor(parseRelayEnv({ ...base, ROUTER_TOKEN_FILE: file })).routerToken).toBe("s3cret");
  expect(channelOptionsFor(parseRelayEnv(base)).routerToken).toBeUndefined();
  expect(() =>
    channelOptionsFor(parseRelayEnv({ ...base, ROUTER_TOKEN_FILE: path.join(dir, "none") })),
  ).toThrow(/ROUTER_TOKEN_FILE: cannot read/);
  writeFileSync(file, "");
  expect(() => channelOptionsFor(parseRelayEnv({ ...base, ROUTER_TOKEN_FILE: file }))).toThrow(ConfigError);
});
