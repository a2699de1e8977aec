// Helpers of the limits tests: an in-process router whose JSON log lines are kept (the limits
// are judged by what they log too), raw sockets from a chosen loopback source address, and a
// spawned `relay router` whose resident memory and descriptors can be read from /proc.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { pino } from "pino";
import type { RouterOptions } from "../../runtime/router/options.js";
import { GossipRouter } from "../../runtime/router/router.js";
import { RELAY_CLI, REPO_ROOT } from "../helpers/processes.js";
import { killOnExit } from "../helpers/relay-cli.js";
import { waitFor } from "../helpers/wait.js";

export type LogLine = Record<string, unknown> & { msg?: string };

/** An in-process router on loopback with its log lines (info and up) kept in `logs`. */
export class LoggedRouter {
  readonly logs: LogLine[] = [];
  readonly router: GossipRouter;
  port = 0;

  constructor(options: RouterOptions) {
    const stream = {
      write: (line: string) => {
        this.logs.push(JSON.parse(line) as LogLine);
      },
    };
    this.router = new GossipRouter(
      { bind: "127.0.0.1", port: 0, httpPort: null, ...options },
      pino({ level: "info" }, stream),
    );
  }

  async start(): Promise<this> {
    this.port = (await this.router.start()).port;
    return this;
  }

  lines(msg: string): LogLine[] {
    return this.logs.filter((l) => l.msg === msg);
  }
}

/** A raw TCP socket to `port`, from `localAddress` (any 127.0.0.0/8 address works on Linux). */
export function rawSocket(port: number, localAddress = "127.0.0.1"): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress, allowHalfOpen: true });
    const raw = new RawSocket(socket);
    socket.once("connect", () => {
      raw.localPort = socket.localPort ?? 0;
      resolve(raw);
    });
    socket.once("error", reject);
  });
}

export class RawSocket {
  closed = false;
  received = 0;
  /** Our port (known once connected; kept after the close). */
  localPort = 0;
  constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => {
      this.received += d.length;
    });
    socket.on("end", () => socket.end());
    socket.on("close", () => {
      this.closed = true;
    });
    socket.on("error", () => {});
  }
}

/** VmRSS of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export interface SpawnedRouter {
  readonly pid: number;
  readonly port: number;
  readonly httpPort: number;
  readonly logs: string[];
  stop(): Promise<void>;
}

/**
 * `relay router --bind 127.0.0.1 --port 0 --http-port 0 ...args` from dist, optionally with its
 * open-file limit lowered first (`ulimit -n` in a shell that then execs node, so the pid is node's).
 */
export async function spawnRouter(args: string[], nofile?: number): Promise<SpawnedRouter> {
  const argv = [RELAY_CLI, "router", "--bind", "127.0.0.1", "--port", "0", "--http-port", "0", ...args];
  const child =
    nofile === undefined
      ? spawn(process.execPath, argv, { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] })
      : spawn("sh", ["-c", `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, ...argv], {
          cwd: REPO_ROOT,
          stdio: ["ignore", "ignore", "pipe"],
        });
  killOnExit(child);
  const logs: string[] = [];
  let pending = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    pending += d;
    let nl = pending.indexOf("\n");
    while (nl >= 0) {
      logs.push(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
    }
  });
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  await waitFor("the router to listen", () => exited || logs.some((l) => l.includes('"router listening"')), {
    timeoutMs: 20_000,
  });
  if (exited) throw new Error(`router exited:\n${logs.join("\n")}`);
  const rec = JSON.parse(logs.find((l) => l.includes('"router listening"'))!) as {
    port: number;
    httpPort: number;
  };
  return {
    pid: child.pid!,
    port: rec.port,
    httpPort: rec.httpPort,
    logs,
    stop: async () => {
      if (exited) return;
      child.kill("SIGKILL");
      await waitFor("the router to exit", () => exited, { timeoutMs: 10_000 });
    },
  };
}

/** GET on loopback; null when nothing answers within 5 s. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return null;
  }
}

/** The value of one sample line of a Prometheus text, e.g. `relay_router_connections`. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
