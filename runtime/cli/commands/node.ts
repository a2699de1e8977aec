// `relay node`: the container's default command. Configuration comes only from the environment,
// through the contract shared with the constructs (SITE, CLUSTER, DNS_QUERY | STATIC_MEMBERS,
// TUNNEL_INITIAL_HOSTS, NODE_NAME, BIND_ADDR, BIND_PORT, HTTP_PORT, SITE_MASTERS, TLS_*).
import type { Command } from "commander";
import { parseRelayEnv, RELAY_ENV } from "../../../contract/relay-env.js";
import { createLogger } from "../../observability/log.js";
import { RelayNode } from "../../relay/node.js";
import { checkConfigFiles } from "../config-files.js";

/** Longest a graceful stop may take before the process exits anyway (pod grace period is 30 s). */
const STOP_GRACE_MS = 20_000;
const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

export function registerNodeCommand(program: Command): void {
  program
    .command("node")
    .description("run a relay node (site member; site master when it is the oldest member)")
    .addHelpText(
      "after",
      `\nConfiguration (environment): ${Object.values(RELAY_ENV).join(", ")}.\n` +
        "HTTP: /healthz, /readyz, /status, /metrics on HTTP_PORT. SIGTERM leaves the site and exits 0.",
    )
    .action(async () => {
      // A configuration mistake throws a ConfigError naming the variable: `relay` prints it, exit 2.
      const config = parseRelayEnv(process.env);
      checkConfigFiles(config);
      const log = createLogger("relay-node", { site: config.site, node: config.nodeName });
      const node = new RelayNode(config, { logger: log });
      let stopping = false;
      // A stop signal at any point, joining included, is an orderly stop: leave, exit 0.
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          log.info({ signal }, "already stopping");
          return;
        }
        stopping = true;
        log.info({ signal, ready: node.channel.ready }, "stop requested");
        const force = setTimeout(() => {
          log.error({ graceMs: STOP_GRACE_MS }, "graceful stop took too long: exiting");
          process.exit(1);
        }, STOP_GRACE_MS);
        force.unref();
        node.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err: (err as Error).message }, "stop failed");
            process.exit(1);
          },
        );
      };
      for (const signal of STOP_SIGNALS) process.on(signal, stop);
      try {
        await node.start();
      } catch (err) {
        // start() gives up when the stop above closes the node: that is not a failure.
        if (stopping) return;
        throw err;
      }
    });
}
