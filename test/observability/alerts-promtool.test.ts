// The alerting rules (deploy/monitoring/alerts.yaml) checked by Prometheus itself: `promtool check
// rules` parses every expression, and `promtool test rules` evaluates the ones with vector matching,
// ratios, quantiles or `and` against synthetic series: each fires in the case it is for, with the
// labels its annotations use, and stays silent in the case next to it. promtool comes with
// Debian's `prometheus` package (.ci/run installs it); without it the test is skipped, saying so.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "@jest/globals";
import { parse, stringify } from "yaml";
import { REPO_ROOT } from "../helpers/processes.js";

const ALERTS = path.join(REPO_ROOT, "deploy/monitoring/alerts.yaml");
const havePromtool = spawnSync("promtool", ["--version"]).status === 0;
if (!havePromtool)
  console.warn("alert rule tests skipped: promtool is not installed (.ci/run installs prometheus)");
const describeIfPromtool = havePromtool ? describe : describe.skip;

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** One promtool test case: series, then the alerts expected at `at` for `alert`. */
interface AlertCase {
  readonly name: string;
  readonly series: Record<string, string>;
  readonly alert: string;
  readonly at: string;
  /** Labels of each firing alert (empty: it must not fire). */
  readonly firing: readonly Record<string, string>[];
}

const ns = 'namespace="relay"';
const CASES: AlertCase[] = [
  {
    name: "a route down for 2 minutes",
    series: {
      [`relay_route_up{${ns},pod="nyc-relay-0",site="sfc"}`]: "0x10",
      [`relay_route_up{${ns},pod="nyc-relay-0",site="lon"}`]: "1x10",
    },
    alert: "RelayRouteDown",
    at: "5m",
    firing: [{ namespace: "relay", site: "sfc", severity: "critical" }],
  },
  {
    name: "one site master of two still has the route",
    series: {
      [`relay_route_up{${ns},pod="nyc-relay-0",site="sfc"}`]: "0x10",
      [`relay_route_up{${ns},pod="nyc-relay-1",site="sfc"}`]: "1x10",
    },
    alert: "RelayRouteDown",
    at: "5m",
    firing: [],
  },
  {
    name: "a site reachable through one router only",
    series: {
      [`relay_route_routers{${ns},pod="nyc-relay-0",site="sfc"}`]: "1x30",
      [`relay_route_up{${ns},pod="nyc-relay-0",site="sfc"}`]: "1x30",
      [`relay_route_routers{${ns},pod="nyc-relay-0",site="lon"}`]: "2x30",
      [`relay_route_up{${ns},pod="nyc-relay-0",site="lon"}`]: "1x30",
    },
    alert: "RelayRouteSingleRouter",
    at: "20m",
    firing: [{ namespace: "relay", site: "sfc", severity: "warning" }],
  },
  {
    name: "route-down times above 10 s at p99",
    series: {
      // 60 route losses in the hour, each between 10 s and 30 s.
      [`relay_route_down_seconds_bucket{${ns},pod="nyc-relay-0",site="sfc",le="10"}`]: "0x70",
      [`relay_route_down_seconds_bucket{${ns},pod="nyc-relay-0",site="sfc",le="30"}`]: "0+1x70",
      [`relay_route_down_seconds_bucket{${ns},pod="nyc-relay-0",site="sfc",le="+Inf"}`]: "0+1x70",
    },
    alert: "RelayFailoverSlow",
    at: "65m",
    firing: [{ namespace: "relay", site: "sfc", severity: "warning" }],
  },
  {
    name: "a site's share of the send buffer above 80 % of the limit",
    series: {
      [`relay_send_buffer_site_messages{${ns},pod="nyc-relay-0",site="sfc"}`]: "900x10",
      [`relay_send_buffer_site_messages{${ns},pod="nyc-relay-0",site="lon"}`]: "100x10",
      [`relay_send_buffer_limit_messages{${ns},pod="nyc-relay-0"}`]: "1000x10",
    },
    alert: "RelaySendBufferFilling",
    at: "5m",
    firing: [{ namespace: "relay", pod: "nyc-relay-0", site: "sfc", severity: "warning" }],
  },
  {
    name: "send-to-stable latency above 5 s at p99",
    series: {
      [`relay_cross_site_stable_seconds_bucket{${ns},pod="nyc-relay-0",site="sfc",le="5"}`]: "0x40",
      [`relay_cross_site_stable_seconds_bucket{${ns},pod="nyc-relay-0",site="sfc",le="10"}`]: "0+10x40",
      [`relay_cross_site_stable_seconds_bucket{${ns},pod="nyc-relay-0",site="sfc",le="+Inf"}`]: "0+10x40",
    },
    alert: "RelayCrossSiteLatencyHigh",
    at: "30m",
    firing: [{ namespace: "relay", site: "sfc", severity: "warning" }],
  },
  {
    name: "ready nodes, none a site master",
    series: {
      [`relay_site_master{${ns},pod="nyc-relay-0"}`]: "0x10",
      [`relay_ready{${ns},pod="nyc-relay-0"}`]: "1x10",
      [`relay_site_master{namespace="other",pod="sfc-relay-0"}`]: "1x10",
      [`relay_ready{namespace="other",pod="sfc-relay-0"}`]: "1x10",
    },
    alert: "RelayNoSiteMaster",
    at: "5m",
    firing: [{ namespace: "relay", severity: "critical" }],
  },
  {
    name: "a router above 80 % of its connection limit",
    series: {
      [`relay_router_open_sockets{${ns},pod="nyc-router-0"}`]: "850x10",
      [`relay_router_max_connections{${ns},pod="nyc-router-0"}`]: "1000x10",
      [`relay_router_open_sockets{${ns},pod="sfc-router-0"}`]: "10x10",
      [`relay_router_max_connections{${ns},pod="sfc-router-0"}`]: "1000x10",
    },
    alert: "RelayRouterNearConnectionLimit",
    at: "8m",
    firing: [{ namespace: "relay", pod: "nyc-router-0", severity: "warning" }],
  },
  {
    name: "a backup site away for more than half the tombstone hold, not yet past it",
    series: {
      // Away 4 days of a 7-day hold; the other backup site is here (away 0).
      [`relay_kv_backup_away_seconds{${ns},pod="nyc-relay-0",map="sessions",site="sfc"}`]: "345600x5",
      [`relay_kv_backup_away_seconds{${ns},pod="nyc-relay-0",map="sessions",site="lon"}`]: "0x5",
      [`relay_kv_tombstone_max_hold_seconds{${ns},pod="nyc-relay-0",map="sessions"}`]: "604800x5",
    },
    alert: "RelayKvBackupAwayLong",
    at: "2m",
    firing: [{ namespace: "relay", map: "sessions", site: "sfc", severity: "warning" }],
  },
  {
    name: "the same absence is not yet past the hold",
    series: {
      [`relay_kv_backup_away_seconds{${ns},pod="nyc-relay-0",map="sessions",site="sfc"}`]: "345600x5",
      [`relay_kv_tombstone_max_hold_seconds{${ns},pod="nyc-relay-0",map="sessions"}`]: "604800x5",
    },
    alert: "RelayKvBackupAwayPastTombstoneHold",
    at: "2m",
    firing: [],
  },
  {
    name: "a backup site away longer than the hold",
    series: {
      [`relay_kv_backup_away_seconds{${ns},pod="nyc-relay-0",map="sessions",site="sfc"}`]: "700000x5",
      [`relay_kv_tombstone_max_hold_seconds{${ns},pod="nyc-relay-0",map="sessions"}`]: "604800x5",
      [`relay_kv_backup_away_seconds{${ns},pod="nyc-relay-0",map="orders",site="sfc"}`]: "700000x5",
      [`relay_kv_tombstone_max_hold_seconds{${ns},pod="nyc-relay-0",map="orders"}`]: "864000x5",
    },
    alert: "RelayKvBackupAwayPastTombstoneHold",
    at: "2m",
    firing: [{ namespace: "relay", map: "sessions", site: "sfc", severity: "critical" }],
  },
  {
    name: "a return after a long absence, counted",
    series: {
      [`relay_kv_long_absences_total{${ns},pod="nyc-relay-0",map="sessions"}`]: "0 0 1 1 1 1",
    },
    alert: "RelayKvBackupBackAfterLongAbsence",
    at: "4m",
    firing: [{ namespace: "relay", pod: "nyc-relay-0", map: "sessions", severity: "critical" }],
  },
  {
    name: "anti-entropy failing again and again",
    series: {
      [`relay_kv_syncs_failed_total{${ns},pod="nyc-relay-0",map="sessions"}`]: "0+1x20",
      [`relay_kv_syncs_failed_total{${ns},pod="nyc-relay-1",map="sessions"}`]: "0x20",
    },
    alert: "RelayKvSyncsFailing",
    at: "16m",
    firing: [{ namespace: "relay", pod: "nyc-relay-0", map: "sessions", severity: "warning" }],
  },
];

/** Each alert's annotations as written (templates unrendered). */
const RULES = new Map<string, Record<string, string>>(
  (
    parse(readFileSync(ALERTS, "utf8")) as {
      groups: { rules: { alert: string; annotations?: Record<string, string> }[] }[];
    }
  ).groups
    .flatMap((g) => g.rules)
    .map((r) => [r.alert, r.annotations ?? {}]),
);

/** The annotations as Prometheus renders them for an alert with `labels` (only {{ $labels.x }} is used). */
function rendered(alert: string, labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(RULES.get(alert)!))
    out[k] = v.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, l: string) => labels[l] ?? "");
  return out;
}

describeIfPromtool("alerting rules, evaluated by promtool", () => {
  test("every case names an alert of the file", () => {
    for (const c of CASES)
      expect({ case: c.name, known: RULES.has(c.alert) }).toEqual({ case: c.name, known: true });
  });

  test("promtool check rules: every rule parses", () => {
    const r = promtool("check", "rules", ALERTS);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  test("promtool test rules: each alert fires in its case, with its labels, and not in the case next to it", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "alerts-promtool-"));
    const file = path.join(dir, "alerts.test.yaml");
    const doc = {
      rule_files: [ALERTS],
      evaluation_interval: "1m",
      tests: CASES.map((c) => ({
        name: c.name,
        interval: "1m",
        input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
        alert_rule_test: [
          {
            eval_time: c.at,
            alertname: c.alert,
            exp_alerts: c.firing.map((l) => ({ exp_labels: l, exp_annotations: rendered(c.alert, l) })),
          },
        ],
      })),
    };
    writeFileSync(file, stringify(doc));
    const r = promtool("test", "rules", file);
    expect(r.out).not.toMatch(/FAILED/);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });
});
