// `relay router`: runs a GossipRouter until SIGTERM/SIGINT (graceful stop, exit 0).

import { accessSync, constants, statSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { ConfigError } from "../../../contract/errors.js";
import {
  type AllowGroups,
  parseAllowGroups,
  ROUTER_COMMAND,
  ROUTER_FLAGS,
  type RouterFlagName,
  routerOptionFlags,
  routerTlsFromFlags,
} from "../../../contract/router-args.js";
import { createLogger } from "../../observability/log.js";
import { DEFAULT_MAX_FRAME } from "../../protocol/types.js";
import {
  DEFAULT_CONGESTION_GRACE_MS,
  DEFAULT_EXPIRY_MS,
  DEFAULT_FIRST_FRAME_TIMEOUT_MS,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_HTTP_PORT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_GROUPS,
  DEFAULT_MAX_NAME_LENGTH,
  DEFAULT_MAX_PARTIAL_BYTES,
  DEFAULT_MAX_QUEUE_BYTES,
  DEFAULT_MAX_REGISTRATIONS,
  DEFAULT_METRICS_GROUPS,
  DEFAULT_ROUTER_PORT,
  DEFAULT_SLOW_TIMEOUT_MS,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
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
    throw new ConfigError(`${option}: cannot read ${file}`);
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
  congestionGrace: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  tlsHandshakeTimeout: number;
  firstFrameTimeout: number;
  frameTimeout: number;
  maxPartialBytes: number;
  maxGroups: number;
  maxRegistrations: number;
  maxGroupName: number;
  maxLogicalName: number;
  metricsGroups: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsClientAuth?: boolean;
  authTokens?: string;
  allowGroups?: AllowGroups;
}

/** `--allow-groups`: the contract's parser, as a one-line usage error. */
function allowGroupsArg(value: string): AllowGroups {
  try {
    return parseAllowGroups(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Throws a one-line error unless `dir` is a readable directory (the token files are read on use). */
function readableDir(option: string, dir: string): string {
  try {
    if (!statSync(dir).isDirectory()) throw new Error("not a directory");
    accessSync(dir, constants.R_OK | constants.X_OK);
  } catch {
    throw new ConfigError(`${option}: cannot read the directory ${dir}`);
  }
  return dir;
}

/** Builds the TLS part of the router options (what the flags mean: contract/router-args.ts). */
function tlsOptions(o: RouterCliOptions) {
  const tls = routerTlsFromFlags(o);
  if (!tls) return undefined;
  return {
    certFile: readableFile(ROUTER_FLAGS.tlsCert.flag, tls.cert),
    keyFile: readableFile(ROUTER_FLAGS.tlsKey.flag, tls.key),
    ...(tls.ca ? { caFile: readableFile(ROUTER_FLAGS.tlsCa.flag, tls.ca) } : {}),
    clientAuth: tls.clientAuth,
  };
}

/** The limit flags (docs/ROUTER.md "Limits"): which parser, its bounds, and the default. */
const LIMIT_FLAGS: readonly [RouterFlagName, "ms" | "int", number, number, number][] = [
  ["congestionGrace", "ms", 1, MAX_TIMER_MS, DEFAULT_CONGESTION_GRACE_MS],
  ["maxConnections", "int", 1, 1_000_000, DEFAULT_MAX_CONNECTIONS],
  ["maxConnectionsPerAddress", "int", 1, 1_000_000, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS],
  ["tlsHandshakeTimeout", "ms", 1, MAX_TIMER_MS, DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS],
  ["firstFrameTimeout", "ms", 0, MAX_TIMER_MS, DEFAULT_FIRST_FRAME_TIMEOUT_MS],
  ["frameTimeout", "ms", 0, MAX_TIMER_MS, DEFAULT_FRAME_TIMEOUT_MS],
  ["maxPartialBytes", "int", 20, Number.MAX_SAFE_INTEGER, DEFAULT_MAX_PARTIAL_BYTES],
  ["maxGroups", "int", 1, 10_000_000, DEFAULT_MAX_GROUPS],
  ["maxRegistrations", "int", 1, 10_000_000, DEFAULT_MAX_REGISTRATIONS],
  ["maxGroupName", "int", 1, MAX_MAX_FRAME, DEFAULT_MAX_NAME_LENGTH],
  ["maxLogicalName", "int", 1, MAX_MAX_FRAME, DEFAULT_MAX_NAME_LENGTH],
  ["metricsGroups", "int", 0, 10_000, DEFAULT_METRICS_GROUPS],
];

export function registerRouterCommand(program: Command): void {
  const command = program
    .command(ROUTER_COMMAND)
    .description("run a GossipRouter (wire-compatible with JGroups 5.x TUNNEL clients)")
    .option(
      routerOptionFlags("port"),
      ROUTER_FLAGS.port.description,
      portArg(ROUTER_FLAGS.port.flag),
      DEFAULT_ROUTER_PORT,
    )
    .option("--bind <addr>", "listen address", "0.0.0.0")
    .option(
      routerOptionFlags("httpPort"),
      ROUTER_FLAGS.httpPort.description,
      portArg(ROUTER_FLAGS.httpPort.flag),
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
      routerOptionFlags("expiry"),
      ROUTER_FLAGS.expiry.description,
      durationArg(ROUTER_FLAGS.expiry.flag, 0, MAX_TIMER_MS),
      DEFAULT_EXPIRY_MS,
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
    .option(routerOptionFlags("tlsCert"), ROUTER_FLAGS.tlsCert.description)
    .option(routerOptionFlags("tlsKey"), ROUTER_FLAGS.tlsKey.description)
    .option(routerOptionFlags("tlsCa"), ROUTER_FLAGS.tlsCa.description)
    .option(routerOptionFlags("tlsClientAuth"), ROUTER_FLAGS.tlsClientAuth.description)
    .option(routerOptionFlags("authTokens"), ROUTER_FLAGS.authTokens.description)
    .option(routerOptionFlags("allowGroups"), ROUTER_FLAGS.allowGroups.description, allowGroupsArg)
    .action(async (o: RouterCliOptions) => {
      const tls = tlsOptions(o);
      const authTokens =
        o.authTokens === undefined ? undefined : readableDir(ROUTER_FLAGS.authTokens.flag, o.authTokens);
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
          congestionGraceMs: Math.min(o.congestionGrace, o.slowTimeout),
          maxConnections: o.maxConnections,
          maxConnectionsPerAddress: Math.min(o.maxConnectionsPerAddress, o.maxConnections),
          tlsHandshakeTimeoutMs: o.tlsHandshakeTimeout,
          firstFrameTimeoutMs: o.firstFrameTimeout,
          frameTimeoutMs: o.frameTimeout,
          // A single frame of --max-frame must always fit.
          maxPartialBytes: Math.max(o.maxPartialBytes, o.maxFrame + 4),
          maxGroups: o.maxGroups,
          maxRegistrations: o.maxRegistrations,
          maxGroupNameLength: o.maxGroupName,
          maxLogicalNameLength: o.maxLogicalName,
          metricsGroups: o.metricsGroups,
          ...(tls ? { tls } : {}),
          ...(authTokens !== undefined ? { authTokens } : {}),
          ...(o.allowGroups ? { allowGroups: o.allowGroups } : {}),
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
  for (const [name, kind, min, max, fallback] of LIMIT_FLAGS) {
    const parse = kind === "ms" ? durationArg : intArg;
    command.option(
      routerOptionFlags(name),
      ROUTER_FLAGS[name].description,
      parse(ROUTER_FLAGS[name].flag, min, max),
      fallback,
    );
  }
}
