// The Grafana dashboard and the Prometheus alert rules in deploy/monitoring parse, and every
// metric they name is in the /metrics output of a running router process (the built CLI) and of
// a running relay node that has sent cross-site messages through it. A histogram counts under
// its `_bucket`, `_sum` and `_count` series.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, jest, test } from "@jest/globals";
import { pino } from "pino";
import { parse as parseYaml } from "yaml";
import { parseRelayEnv } from "../../contract/relay-env.js";
import { RelayNode } from "../../runtime/relay/node.js";
import { RELAY_VERSION } from "../../runtime/relay/version.js";
import { REPO_ROOT, type RouterProcess, startRouterProcess } from "../helpers/processes.js";
import { requireBuild } from "../helpers/relay-cli.js";
import { waitFor } from "../helpers/wait.js";

jest.setTimeout(90_000);

const DASHBOARD = path.join(REPO_ROOT, "deploy/monitoring/grafana-dashboard.json");
const ALERTS = path.join(REPO_ROOT, "deploy/monitoring/alerts.yaml");
/** Prefixes of the metrics our processes export (ours, and prom-client's process metrics). */
const METRIC = /\b(?:relay|process|nodejs)_[a-zA-Z0-9_]*/g;

/** Metric names an expression refers to (quoted label values and `{...}` matchers left out). */
function metricNamesIn(expr: string): string[] {
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, "{}");
  return [...new Set(bare.match(METRIC) ?? [])];
}

/** Every series name in a /metrics text, plus `_bucket/_sum/_count` of each histogram family. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      names.add(type[1]!);
      if (type[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(type[1]! + s);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

interface Expr {
  readonly where: string;
  readonly expr: string;
}

function dashboardExprs(): Expr[] {
  const d = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    panels: { title: string; type: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; definition?: string }[] };
  };
  const out: Expr[] = [];
  for (const p of d.panels) {
    if (p.type === "row") continue;
    expect(p.targets?.length ?? 0).toBeGreaterThan(0);
    for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  }
  for (const v of d.templating.list) {
    if (v.definition) out.push({ where: `variable ${v.name}`, expr: v.definition });
  }
  return out;
}

function alertExprs(): Expr[] {
  const doc = parseYaml(readFileSync(ALERTS, "utf8")) as {
    groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  expect(doc.groups.length).toBeGreaterThan(0);
  return doc.groups.flatMap((g) =>
    g.rules.map((r) => {
      expect(typeof r.expr).toBe("string");
      expect(r.alert ?? r.record).toBeTruthy();
      return { where: `${g.name}/${r.alert ?? r.record}`, expr: r.expr };
    }),
  );
}

/** `where: name` for every metric named in `exprs` that `exported` lacks. */
function missing(exprs: readonly Expr[], exported: ReadonlySet<string>): string[] {
  return exprs.flatMap((e) =>
    metricNamesIn(e.expr)
      .filter((n) => !exported.has(n))
      .map((n) => `${e.where}: ${n}`),
  );
}

test("metric names are found in expressions, label values and matchers are not", () => {
  expect(
    metricNamesIn(
      'histogram_quantile(0.99, sum by (site, le) (rate(relay_x_seconds_bucket{job="relay_fake"}[5m]))) / relay_y',
    ),
  ).toEqual(["relay_x_seconds_bucket", "relay_y"]);
  const exported = exportedNames(
    '# TYPE relay_h histogram\n# TYPE relay_c counter\nrelay_c 1\nrelay_g{a="b"} 2\n',
  );
  expect([...exported].sort()).toEqual([
    "relay_c",
    "relay_g",
    "relay_h",
    "relay_h_bucket",
    "relay_h_count",
    "relay_h_sum",
  ]);
  // The check fails on a name that no process exports.
  expect(missing([{ where: "x", expr: "rate(relay_no_such_metric_total[5m])" }], exported)).toEqual([
    "x: relay_no_such_metric_total",
  ]);
});

describe("against a running router and relay nodes", () => {
  const quiet = () => pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
  let router: RouterProcess;
  const nodes: RelayNode[] = [];
  let nodeText = "";
  let mapsText = "";
  let routerText = "";

  const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  beforeAll(async () => {
    requireBuild();
    router = await startRouterProcess();
    for (const site of ["nyc", "sfc"]) {
      const config = parseRelayEnv({
        SITE: site,
        CLUSTER: "chat",
        STATIC_MEMBERS: "127.0.0.1[9]",
        TUNNEL_INITIAL_HOSTS: `127.0.0.1[${router.port}]`,
        NODE_NAME: `${site}-1`,
        BIND_ADDR: "127.0.0.1",
        // sfc hosts a replicated map (its metrics, per map and backup site); nyc none, so that
        // nyc's cross-site counts below are only the test's messages.
        ...(site === "sfc" ? { KV_MAPS: "orders" } : {}),
      });
      const node = new RelayNode(config, { bindPort: 0, httpPort: 0, kvPort: 0, logger: quiet() });
      nodes.push(node);
      await node.start();
    }
    const nyc = nodes[0]!;
    await waitFor(
      "nyc's route to sfc up",
      () => nyc.channel.topology().routes.some((r) => r.site === "sfc" && r.up),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    for (let i = 0; i < 20; i++) nyc.channel.sendToSite("sfc", Buffer.from(`m${i}`));
    await waitFor("nyc's messages stable at sfc", () => nyc.channel.stats().bufferedMessages === 0, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const sfc = nodes[1]!;
    await waitFor(
      "sfc's map sees nyc as a backup site",
      () => (sfc.maps?.status()[0]?.backups.length ?? 0) > 0,
      {
        timeoutMs: 30_000,
        intervalMs: 100,
      },
    );
    nodeText = await scrape(nyc.httpPort!);
    mapsText = await scrape(sfc.httpPort!);
    routerText = await scrape(router.httpPort);
  });

  afterAll(async () => {
    for (const n of nodes.reverse()) await n.stop();
    await router?.stop();
  });

  test("relay_build_info on both, with the package version", () => {
    for (const [text, node] of [
      [nodeText, "nyc-1"],
      [routerText, undefined],
    ] as const) {
      const line = text.split("\n").find((l) => l.startsWith("relay_build_info{"));
      expect(line).toContain(`version="${RELAY_VERSION}"`);
      if (node) expect(line).toContain(`node="${node}"`);
      expect(line).toMatch(/ 1$/);
    }
  });

  test("the cross-site latency histogram counted the messages sent to sfc", () => {
    const count = nodeText
      .split("\n")
      .find((l) => l.startsWith('relay_cross_site_stable_seconds_count{site="sfc"}'));
    expect(Number(count?.split(" ")[1])).toBe(20);
    expect(nodeText).toContain('relay_cross_site_stable_seconds_bucket{site="sfc",le="+Inf"} 20');
    expect(nodeText).toMatch(/^relay_send_buffer_limit_messages \d+$/m);
    expect(nodeText).toContain("# TYPE relay_route_down_seconds histogram");
  });

  test("the router counted its output batches (the messages went through it)", () => {
    const count = routerText.split("\n").find((l) => l.startsWith("relay_router_flush_frames_count "));
    expect(Number(count?.split(" ")[1])).toBeGreaterThan(0);
    expect(routerText).toMatch(/^relay_router_flush_frames_bucket\{le="1"\} \d+$/m);
  });

  test("every metric the dashboard and the alerts name is exported", () => {
    const exported = new Set([
      ...exportedNames(nodeText),
      ...exportedNames(mapsText),
      ...exportedNames(routerText),
    ]);
    const exprs = [...dashboardExprs(), ...alertExprs()];
    const named = new Set(exprs.flatMap((e) => metricNamesIn(e.expr)));
    // The files do cover what the issue asks for.
    for (const n of [
      "relay_cross_site_stable_seconds_bucket",
      "relay_route_down_seconds_bucket",
      "relay_route_up",
      "relay_site_unreachable",
      "relay_send_buffer_site_messages",
      "relay_send_buffer_limit_messages",
      "relay_router_refused_total",
      "relay_router_max_connections",
      "relay_cluster_auth_failures_total",
      "relay_build_info",
      "relay_router_flush_frames_bucket",
    ]) {
      expect(named).toContain(n);
    }
    expect(missing(exprs, exported)).toEqual([]);
  });
});
