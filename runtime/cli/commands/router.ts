// `relay router`: runs a GossipRouter until SIGTERM/SIGINT (graceful stop, exit 0).
import { accessSync, constants } from "node:fs";
import type { Command } from "commander";
import { createLogger } from "../../observability/log.js";
import { DEFAULT_MAX_FRAME } from "../../protocol/types.js";
import {
  DEFAULT_HTTP_PORT,
  DEFAULT_MAX_QUEUE_BYTES,
  DEFAULT_ROUTER_PORT,
  DEFAULT_SLOW_TIMEOUT_MS,
  MAX_MAX_FRAME,
} from "../../router/options.js";
import { GossipRouter } from "../../router/router.js";
import { durationArg, intArg, MAX_TIMER_MS, portArg } from "../args.js";

// dump.ts imports intArg from here; the shared parsers live in ../args.ts.
export { intArg };

/** Longest a graceful stop may take before the process exits anyway. */
const STOP_BACKSTOP_MS = 10_000;

/** Throws a one-line error unless `file` is a readable file. */
export function readableFile(option: string, file: string): string {
  try {
    accessSync(file, constants.R_OK);
  } catch {
    throw new Error(`${option}: cannot read ${file}`);
  }
  return file;
}

interface RouterCliOptions {
  port: number;
  bind: string;
  httpPort: number;
  maxFrame: number;
  suspect: boolean;
  expiry: number;
  maxQueue: number;
  slowTimeout: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsClientAuth?: boolean;
}

/** Builds the TLS part of the router options; undefined for plain TCP. */
function tlsOptions(o: RouterCliOptions) {
  if (!o.tlsCert && !o.tlsKey && !o.tlsCa && !o.tlsClientAuth) return undefined;
  if (!o.tlsCert || !o.tlsKey) throw new Error("TLS needs both --tls-cert and --tls-key");
  if (o.tlsClientAuth && !o.tlsCa)
    throw new Error("--tls-client-auth needs --tls-ca (the CA that signs clients)");
  return {
    certFile: readableFile("--tls-cert", o.tlsCert),
    keyFile: readableFile("--tls-key", o.tlsKey),
    ...(o.tlsCa ? { caFile: readableFile("--tls-ca", o.tlsCa) } : {}),
    clientAuth: !!o.tlsClientAuth,
  };
}

export function registerRouterCommand(program: Command): void {
  program
    .command("router")
    .description("run a GossipRouter (wire-compatible with JGroups 5.x TUNNEL clients)")
    .option("--port <port>", "gossip port (0 = ephemeral)", portArg("--port"), DEFAULT_ROUTER_PORT)
    .option("--bind <addr>", "listen address", "0.0.0.0")
    .option(
      "--http-port <port>",
      "port of /healthz and /metrics (0 = ephemeral)",
      portArg("--http-port"),
      DEFAULT_HTTP_PORT,
    )
    .option(
      "--max-frame <bytes>",
      "largest accepted frame body",
      intArg("--max-frame", 16, MAX_MAX_FRAME),
      DEFAULT_MAX_FRAME,
    )
    .option("--no-suspect", "do not send SUSPECT to the other members when a connection is lost")
    .option(
      "--expiry <ms>",
      "close connections silent for this long (0 = never)",
      durationArg("--expiry", 0, MAX_TIMER_MS),
      0,
    )
    .option(
      "--max-queue <bytes>",
      "output bytes queued per connection before its senders are paused",
      intArg("--max-queue", 1024, 2 ** 31 - 1),
      DEFAULT_MAX_QUEUE_BYTES,
    )
    .option(
      "--slow-timeout <ms>",
      "disconnect a receiver that stays over --max-queue this long",
      durationArg("--slow-timeout", 1, MAX_TIMER_MS),
      DEFAULT_SLOW_TIMEOUT_MS,
    )
    .option("--tls-cert <file>", "PEM certificate: serve TLS instead of plain TCP")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--tls-ca <file>", "PEM CA bundle that signs client certificates")
    .option("--tls-client-auth", "refuse clients without a certificate signed by --tls-ca")
    .action(async (o: RouterCliOptions) => {
      const tls = tlsOptions(o);
      const log = createLogger("router");
      const router = new GossipRouter(
        {
          port: o.port,
          bind: o.bind,
          httpPort: o.httpPort,
          maxFrame: o.maxFrame,
          suspect: o.suspect,
          expiryMs: o.expiry,
          maxQueueBytes: o.maxQueue,
          slowTimeoutMs: o.slowTimeout,
          ...(tls ? { tls } : {}),
        },
        log,
      );
      // Signals are handled from before start(): a SIGTERM while the ports are being bound is
      // an orderly stop too (the listen finishes, then everything is closed).
      const started = router.start();
      let stopping = false;
      const shutdown = (signal: NodeJS.Signals) => {
        if (stopping) {
          log.warn({ signal }, "second signal: exiting now");
          process.exit(1);
        }
        stopping = true;
        log.info({ signal }, "stopping");
        // Bounded: the router gives each peer a short grace period, this is the backstop.
        setTimeout(() => process.exit(1), STOP_BACKSTOP_MS).unref();
        started
          .catch(() => undefined)
          .then(() => router.stop())
          .then(
            () => process.exit(0),
            (err: unknown) => {
              log.error({ err: String(err) }, "stop failed");
              process.exit(1);
            },
          );
      };
      process.on("SIGTERM", shutdown);
      process.on("SIGINT", shutdown);
      try {
        await started;
      } catch (err) {
        if (stopping) return; // the stop above ends the process
        throw err;
      }
    });
}
