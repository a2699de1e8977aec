// The router command line: what the GossipRouter construct renders, the contract's parser and the
// commander-based `relay router` both read back unchanged.

import { Command } from "commander";
import fc from "fast-check";
import { ConfigError } from "../../contract/errors.js";
import { ROUTER_HTTP_PORT, ROUTER_PORT } from "../../contract/ports.js";
import {
  parseRouterArgs,
  ROUTER_COMMAND,
  ROUTER_FLAGS,
  type RouterArgsSpec,
  renderRouterArgs,
} from "../../contract/router-args.js";
import { registerRouterCommand } from "../../runtime/cli/commands/router.js";

function routerCommand(): Command {
  const program = new Command().exitOverride();
  registerRouterCommand(program);
  return program.commands.find((c) => c.name() === ROUTER_COMMAND)!;
}

const path = fc.stringMatching(/^\/[a-z0-9/._-]{1,40}$/);
const spec: fc.Arbitrary<RouterArgsSpec> = fc.record(
  {
    port: fc.integer({ min: 0, max: 65535 }),
    httpPort: fc.integer({ min: 0, max: 65535 }),
    tls: fc.oneof(
      fc.record({ cert: path, key: path, ca: path, clientAuth: fc.boolean() }),
      fc.record({ cert: path, key: path, clientAuth: fc.constant(false) }),
    ),
  },
  { requiredKeys: ["port", "httpPort"] },
);

test("the flags in the order the router's container has always had them", () => {
  // test/infra/default-topology.test.ts checks the synthesized seed's args literally.
  expect(
    renderRouterArgs({
      port: 1,
      httpPort: 2,
      tls: { cert: "/c", key: "/k", ca: "/a", clientAuth: true },
    }).join(" "),
  ).toBe("router --port 1 --http-port 2 --tls-cert /c --tls-key /k --tls-ca /a --tls-client-auth");
  expect(renderRouterArgs({})).toEqual([
    "router",
    "--port",
    `${ROUTER_PORT}`,
    "--http-port",
    `${ROUTER_HTTP_PORT}`,
  ]);
});

test("render -> parseRouterArgs is the identity", () => {
  fc.assert(
    fc.property(spec, (s) => {
      expect(parseRouterArgs(renderRouterArgs(s))).toEqual({
        port: s.port,
        httpPort: s.httpPort,
        tls: s.tls,
      });
    }),
  );
});

test("render -> the commander CLI of `relay router` reads the same values", () => {
  fc.assert(
    fc.property(spec, (s) => {
      const cmd = routerCommand();
      const [command, ...flags] = renderRouterArgs(s);
      expect(command).toBe(cmd.name());
      const { operands, unknown } = cmd.parseOptions(flags);
      expect([operands, unknown]).toEqual([[], []]);
      const o = cmd.opts();
      expect({ port: o["port"], httpPort: o["httpPort"] }).toEqual({ port: s.port, httpPort: s.httpPort });
      expect({
        tlsCert: o["tlsCert"],
        tlsKey: o["tlsKey"],
        tlsCa: o["tlsCa"],
        tlsClientAuth: o["tlsClientAuth"] ?? false,
      }).toEqual({
        tlsCert: s.tls?.cert,
        tlsKey: s.tls?.key,
        tlsCa: s.tls?.ca,
        tlsClientAuth: s.tls?.clientAuth ?? false,
      });
    }),
    { numRuns: 50 },
  );
});

test("the CLI declares every contract flag under the contract's property name, with its help", () => {
  const options = routerCommand().options;
  for (const [name, f] of Object.entries(ROUTER_FLAGS)) {
    const option = options.find((o) => o.long === f.flag);
    expect(option?.attributeName()).toBe(name);
    expect(option?.description).toBe(f.description);
  }
});

test("flags left out take the CLI's defaults", () => {
  expect(parseRouterArgs(["router"])).toEqual({ port: 12001, httpPort: 9000, tls: undefined });
  const cmd = routerCommand();
  cmd.parseOptions([]);
  expect(cmd.opts()).toMatchObject({ port: 12001, httpPort: 9000 });
  expect(parseRouterArgs(["router", "--port=7000"]).port).toBe(7000);
});

test.each<[string[], RegExp]>([
  [["node"], /starts with "router"/],
  [["router", "--bind", "0.0.0.0"], /--bind: not a flag of the router contract/],
  [["router", "--port"], /--port needs a value <port>/],
  [["router", "--port", "65536"], /--port must be an integer between 0 and 65535/],
  [["router", "--http-port", "x"], /--http-port must be an integer between 0 and 65535/],
  [["router", "--tls-client-auth=yes"], /--tls-client-auth takes no value/],
  [["router", "--tls-cert", "/c"], /TLS needs both --tls-cert and --tls-key/],
  [
    ["router", "--tls-cert", "/c", "--tls-key", "/k", "--tls-client-auth"],
    /--tls-client-auth needs --tls-ca/,
  ],
])("parseRouterArgs(%j) is a ConfigError", (argv, message) => {
  expect(() => parseRouterArgs(argv)).toThrow(ConfigError);
  expect(() => parseRouterArgs(argv)).toThrow(message);
});

test("render refuses a combination the router would refuse", () => {
  expect(() => renderRouterArgs({ tls: { cert: "/c", key: "/k", clientAuth: true } })).toThrow(
    /--tls-client-auth needs --tls-ca/,
  );
});
