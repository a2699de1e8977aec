// Builds the runtime image from the unchanged Dockerfile with podman and runs it: `relay --help`,
// the image configuration, what the final stage holds, and `relay router` answering /healthz as a
// non-root user on a read-only root filesystem, then stopping cleanly on SIGTERM.
//
// Needs podman (installed here when missing and we are root; otherwise the suite is skipped with
// the reason printed). Host networking, traffic to 127.0.0.1 only. Cold ~1-3 min, warm ~15 s.
import { existsSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import {
  ensureNodeBaseImage,
  ensurePodmanInstalled,
  NODE_BASE_IMAGE,
  Podman,
  podmanSkipReason,
  REPO_ROOT,
} from "../helpers/podman.js";
import { freePort } from "../helpers/processes.js";

const TAG = "localhost/cross-cloud-relay:image-test";
// Generous: two cores shared with the rest of the suite running in parallel.
const STEP_TIMEOUT_MS = 120_000;
const SKIP_REASON = podmanSkipReason();
// `relay router` and `relay node` are written by other parts of the project; until they exist
// there is nothing to run.
const HAS_ROUTER = existsSync(join(REPO_ROOT, "runtime/cli/commands/router.ts"));
const HAS_NODE = existsSync(join(REPO_ROOT, "runtime/cli/commands/node.ts"));

const say = (line: string) => process.stderr.write(`test/image/image.test.ts: ${line}\n`);
if (SKIP_REASON) say(`SKIPPED: ${SKIP_REASON}`);
if (!HAS_ROUTER) say("router test SKIPPED: no `relay router` yet");
if (!HAS_ROUTER || !HAS_NODE) say("default-command test SKIPPED: needs `relay node` and `relay router`");

const describeImage = SKIP_REASON ? describe.skip : describe;
const testRouter = HAS_ROUTER ? test : test.skip;
const testNode = HAS_ROUTER && HAS_NODE ? test : test.skip;

/** One GET on 127.0.0.1. */
function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: "127.0.0.1", port, path, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** GET `path` on 127.0.0.1:port, retried until it answers 200 or `timeoutMs` passes. */
async function waitOk(port: number, path: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const r = await httpGet(port, path);
      if (r.status === 200) return r.body;
      last = `status ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${path} on 127.0.0.1:${port} did not answer 200 within ${timeoutMs} ms (${last})`);
}

describeImage("runtime image built by podman from the Dockerfile", () => {
  const podman = new Podman();
  const containers: string[] = [];
  let containerSeq = 0;

  function containerName(): string {
    const name = `ccr-image-test-${process.pid}-${++containerSeq}`;
    containers.push(name);
    return name;
  }

  /** `podman run` flags every container here gets: as locked down as a Kubernetes pod would be. */
  const RUN_FLAGS = [
    "--pull=never",
    "--network",
    "host",
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
  ];

  /** Starts `relay router` on 127.0.0.1 in the background; resolves once /healthz answers 200. */
  async function startRouter(): Promise<{ name: string; port: number; httpPort: number }> {
    const port = await freePort();
    const httpPort = await freePort();
    const name = containerName();
    const args = ["router", "--bind", "127.0.0.1", "--port", String(port), "--http-port", String(httpPort)];
    await podman.run(["run", "-d", "--name", name, ...RUN_FLAGS, "--no-healthcheck", TAG, ...args], {
      timeoutMs: 60_000,
    });
    await waitOk(httpPort, "/healthz", 20_000);
    return { name, port, httpPort };
  }

  /** SIGTERM via `podman stop` (SIGKILL only after 10 s, which gives 137); "<exit code> <status>". */
  async function stopContainer(name: string): Promise<string> {
    await podman.run(["stop", "-t", "10", name], { timeoutMs: 60_000 });
    const state = await podman.run(["inspect", "--format", "{{.State.ExitCode}} {{.State.Status}}", name], {
      timeoutMs: 30_000,
    });
    return state.stdout.trim();
  }

  /** Prints a container's logs when it logged errors (pino level 50+), to explain a failure. */
  async function showErrors(name: string): Promise<void> {
    const logs = await podman.run(["logs", name], { timeoutMs: 30_000, allowFailure: true });
    if (/"level":[56]0/.test(logs.stderr)) say(`${name} logs:\n${logs.stderr.slice(-8000)}`);
  }

  /** Runs the image's own health check inside a container. */
  function healthcheck(name: string, env: readonly string[] = []) {
    const envArgs = env.flatMap((e) => ["-e", e]);
    return podman.run(["exec", ...envArgs, name, "node", "/app/healthcheck.mjs"], {
      timeoutMs: 30_000,
      allowFailure: true,
    });
  }

  beforeAll(async () => {
    await ensurePodmanInstalled();
    await ensureNodeBaseImage(podman);
    await podman.pruneOldImages(72);
    const started = Date.now();
    await podman.build(REPO_ROOT, TAG);
    process.stderr.write(`test/image: podman build took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }, 20 * 60_000);

  afterAll(async () => {
    await podman.removeContainers(containers);
  }, 120_000);

  test(
    "`relay --help` runs in the image",
    async () => {
      const r = await podman.run(["run", "--rm", "--name", containerName(), ...RUN_FLAGS, TAG, "--help"], {
        timeoutMs: 60_000,
      });
      expect(r.stdout).toContain("Usage: relay");
      expect(r.stdout).toContain("cross-cloud-relay runtime");
    },
    STEP_TIMEOUT_MS,
  );

  test(
    "image config: exec-form entrypoint, default command, numeric non-root user, ports, health check",
    async () => {
      const r = await podman.run(["image", "inspect", TAG], { timeoutMs: 30_000 });
      const image = JSON.parse(r.stdout)[0];
      const config = image.Config;
      expect(config.Entrypoint).toEqual(["node", "/app/dist/runtime/cli/relay.js"]);
      expect(config.Cmd).toEqual(["node"]);
      expect(config.User).toMatch(/^[1-9]\d*(:\d+)?$/);
      expect(Object.keys(config.ExposedPorts).sort()).toEqual([
        "12001/tcp",
        "7800/tcp",
        "8080/tcp",
        "9000/tcp",
      ]);
      // podman reports the health check beside Config; docker inside it.
      expect((image.Healthcheck ?? config.Healthcheck)?.Test).toEqual([
        "CMD",
        "node",
        "/app/healthcheck.mjs",
      ]);
      expect(config.Labels["org.opencontainers.image.title"]).toBe("cross-cloud-relay");
      expect(config.Labels["org.opencontainers.image.licenses"]).toBe("Apache-2.0");
    },
    STEP_TIMEOUT_MS,
  );

  test(
    "final stage holds dist/ and the runtime dependencies only",
    async () => {
      // Which paths exist, and any TypeScript source left under /app, seen from inside the image.
      const script = `
      const fs = require("node:fs");
      const paths = process.argv.slice(1);
      const exists = Object.fromEntries(paths.map((p) => [p, fs.existsSync(p)]));
      const ts = fs.readdirSync("/app", { recursive: true }).filter((f) => /(?<!\\.d)\\.ts$/.test(f) && !f.startsWith("node_modules"));
      console.log(JSON.stringify({ exists, ts }));`;
      const wanted = ["commander", "pino", "prom-client", "yaml"].map((p) => `/app/node_modules/${p}`);
      const unwanted = [
        ...[
          "typescript",
          "jest",
          "@swc",
          "@biomejs",
          "tsx",
          "cdktf-cli",
          "cdktf",
          "@cdktf",
          "constructs",
        ].map((p) => `/app/node_modules/${p}`),
        ...[
          "runtime",
          "contract",
          "test",
          "app",
          "constructs",
          "stacks",
          "tsconfig.json",
          "package-lock.json",
        ].map((p) => `/app/${p}`),
      ];
      const r = await podman.run(
        [
          "run",
          "--rm",
          "--name",
          containerName(),
          ...RUN_FLAGS,
          "--entrypoint",
          "node",
          TAG,
          "-e",
          script,
          "/app/dist/runtime/cli/relay.js",
          ...wanted,
          ...unwanted,
        ],
        { timeoutMs: 60_000 },
      );
      const { exists, ts } = JSON.parse(r.stdout) as { exists: Record<string, boolean>; ts: string[] };
      for (const p of ["/app/dist/runtime/cli/relay.js", ...wanted])
        expect([p, exists[p]]).toEqual([p, true]);
      for (const p of unwanted) expect([p, exists[p]]).toEqual([p, false]);
      expect(ts).toEqual([]);

      // Our layers on top of the base stay small (the IaC libraries alone would add ~870 MB).
      const size = async (image: string) =>
        Number(
          (await podman.run(["image", "inspect", "--format", "{{.Size}}", image], { timeoutMs: 30_000 }))
            .stdout,
        );
      const added = (await size(TAG)) - (await size(NODE_BASE_IMAGE));
      expect(added).toBeGreaterThan(0);
      expect(added).toBeLessThan(60 * 1024 * 1024);
    },
    STEP_TIMEOUT_MS,
  );

  testRouter(
    "`relay router` answers /healthz as non-root on a read-only fs; SIGTERM stops it with exit 0",
    async () => {
      const router = await startRouter();
      try {
        // The process runs as the image's numeric non-root user, without capabilities.
        const uid = await podman.run(["exec", router.name, "id", "-u"], { timeoutMs: 30_000 });
        expect(uid.stdout.trim()).toBe("1000");
        const status = await podman.run(["exec", router.name, "cat", "/proc/1/status"], {
          timeoutMs: 30_000,
        });
        expect(status.stdout).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
        expect(status.stdout).toMatch(/^CapEff:\s+0+$/m);

        // The image's health check finds the port from `--http-port`, and fails on a dead port.
        const healthy = await healthcheck(router.name);
        expect([healthy.code, healthy.stdout.trim()]).toEqual([
          0,
          `healthy: http://127.0.0.1:${router.httpPort}/healthz`,
        ]);
        const unhealthy = await healthcheck(router.name, [`HEALTH_PORT=${await freePort()}`]);
        expect(unhealthy.code).toBe(1);

        expect(await stopContainer(router.name)).toBe("0 exited");
      } finally {
        await showErrors(router.name);
      }
    },
    STEP_TIMEOUT_MS,
  );

  testNode(
    "default command `relay node` (env contract) answers /healthz on HTTP_PORT; SIGTERM exits 0",
    async () => {
      const router = await startRouter();
      const bindPort = await freePort();
      const httpPort = await freePort();
      const name = containerName();
      const env = {
        SITE: "nyc",
        CLUSTER: "image-test",
        STATIC_MEMBERS: `127.0.0.1[${bindPort}]`,
        TUNNEL_INITIAL_HOSTS: `127.0.0.1[${router.port}]`,
        NODE_NAME: "nyc-1",
        BIND_ADDR: "127.0.0.1",
        BIND_PORT: String(bindPort),
        HTTP_PORT: String(httpPort),
      };
      const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
      // No arguments after the image: the default CMD runs.
      await podman.run(["run", "-d", "--name", name, ...RUN_FLAGS, "--no-healthcheck", ...envArgs, TAG], {
        timeoutMs: 60_000,
      });
      try {
        const health = JSON.parse(await waitOk(httpPort, "/healthz", 20_000));
        expect(health).toMatchObject({ name: "nyc-1", site: "nyc" });
        const cmdline = await podman.run(["exec", name, "cat", "/proc/1/cmdline"], { timeoutMs: 30_000 });
        expect(cmdline.stdout.split("\0").filter(Boolean)).toEqual([
          "node",
          "/app/dist/runtime/cli/relay.js",
          "node",
        ]);

        // No --http-port argument here: the health check takes HTTP_PORT from the environment.
        const healthy = await healthcheck(name);
        expect([healthy.code, healthy.stdout.trim()]).toEqual([
          0,
          `healthy: http://127.0.0.1:${httpPort}/healthz`,
        ]);

        // Stop once it has joined its site and the bridge (a stop during the join is another case).
        await waitOk(httpPort, "/readyz", 30_000);
        expect(await stopContainer(name)).toBe("0 exited");
        expect(await stopContainer(router.name)).toBe("0 exited");
      } finally {
        await showErrors(name);
        await showErrors(router.name);
      }
    },
    STEP_TIMEOUT_MS,
  );
});

// Keep the file meaningful when skipped: say why in the results, not only on stderr.
if (SKIP_REASON) {
  test.skip(`image test skipped: ${SKIP_REASON}`, () => {});
}
