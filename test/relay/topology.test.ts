// The walkthrough on loopback, as real processes: `relay local --no-chat` (2 routers, nyc x5,
// sfc x3), then `relay chat` runs against it: 9 answers with the right suffixes, topo, a late
// joiner, a router killed, the nyc site master leaving and then killed with kill -9.
import { jest } from "@jest/globals";
import { waitFor } from "../helpers/wait.js";
import { getJson, isAlive, type LocalRun, requireBuild, responders, runCli, startLocal } from "./cli.js";

jest.setTimeout(120_000);

interface Status {
  name: string;
  ready: boolean;
  siteMaster: boolean;
  view: { id: string; members: { name: string }[] } | null;
  sites: { site: string; siteMasters: string[] }[];
}

let local: LocalRun;

beforeAll(async () => {
  requireBuild();
  local = await startLocal([]);
});

afterAll(async () => {
  if (!local) return;
  local.child.kill("SIGTERM");
  await local.exited(20_000).catch(() => local.child.kill("SIGKILL"));
});

const NYC = ["nyc-1:nyc", "nyc-2:nyc", "nyc-3:nyc", "nyc-4:nyc", "nyc-5:nyc"];
const SFC = ["sfc-1", "sfc-2", "sfc-3"];

function chat(args: string[], timeoutMs = 20_000, input?: string) {
  return runCli(
    [
      "chat",
      "--site",
      "sfc",
      "--name",
      "Temp",
      "--members",
      local.members("sfc"),
      "--routers",
      local.routers(),
      ...args,
    ],
    {},
    timeoutMs,
    input,
  );
}

/** Sends one line per attempt until `expected` answers came (bounded); returns the last run. */
async function chatUntil(expected: string[], attempts = 10) {
  let last = await chat(["--send", "hello", "--expect", String(expected.length), "--timeout", "2000"]);
  for (let i = 1; i < attempts && JSON.stringify(responders(last.stdout)) !== JSON.stringify(expected); i++) {
    last = await chat(["--send", "hello", "--expect", String(expected.length), "--timeout", "2000"]);
  }
  return last;
}

const proc = (name: string) => local.procs.find((p) => p.name === name)!;
const status = async (name: string) => (await getJson<Status>(proc(name).httpPort, "/status"))?.body;

test("relay local prints one line per process and forms two views of 5 and 3", async () => {
  expect(local.procs.map((p) => p.name)).toEqual([
    "router-1",
    "router-2",
    "nyc-1",
    "nyc-2",
    "nyc-3",
    "nyc-4",
    "nyc-5",
    "sfc-1",
    "sfc-2",
    "sfc-3",
  ]);
  for (const p of local.procs) expect(isAlive(p.pid)).toBe(true);
  const views = await Promise.all(local.procs.filter((p) => p.site).map((p) => status(p.name)));
  const nycIds = new Set(views.filter((v) => v!.name.startsWith("nyc")).map((v) => v!.view!.id));
  const sfcIds = new Set(views.filter((v) => v!.name.startsWith("sfc")).map((v) => v!.view!.id));
  expect(nycIds.size).toBe(1);
  expect(sfcIds.size).toBe(1);
  for (const v of views) {
    expect(v!.view!.members).toHaveLength(v!.name.startsWith("nyc") ? 5 : 3);
    expect(v!.ready).toBe(true);
  }
  expect(
    views
      .filter((v) => v!.siteMaster)
      .map((v) => v!.name)
      .sort(),
  ).toEqual(
    [
      views.find((v) => v!.name.startsWith("nyc"))!.view!.members[0]!.name,
      views.find((v) => v!.name.startsWith("sfc"))!.view!.members[0]!.name,
    ].sort(),
  );
  const ready = await getJson<{ ready: boolean }>(proc("nyc-3").httpPort, "/readyz");
  expect(ready).toEqual({ status: 200, body: expect.objectContaining({ ready: true }) });
  const health = await getJson<{ status: string }>(proc("nyc-3").httpPort, "/healthz");
  expect(health?.status).toBe(200);
  const metrics = await fetch(`http://127.0.0.1:${proc("nyc-1").httpPort}/metrics`).then((r) => r.text());
  expect(metrics).toMatch(/relay_route_up\{site="sfc"\} 1/);
  // The delivery guarantee's send buffer and retransmissions are visible to Prometheus too.
  expect(metrics).toMatch(/^relay_send_buffer_messages \d+$/m);
  expect(metrics).toMatch(/^relay_retransmitted_total \d+$/m);
  // ... and the partition-safety state and the bounded receive state.
  expect(metrics).toMatch(/^relay_primary_view 1$/m);
  expect(metrics).toMatch(/^relay_receive_windows \d+$/m);
  expect(metrics).toMatch(/^relay_delivery_gap_messages_total 0$/m);
  expect(metrics).toMatch(/^relay_sites_gone_total 0$/m);
});

test("a chat line gets exactly 9 answers: Temp, the sfc members, and name:nyc for nyc", async () => {
  const r = await chat(["--send", "hello", "--expect", "9", "--linger", "500"]);
  expect(r.stderr).not.toMatch(/relay chat:/);
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split("\n");
  expect(lines[0]).toBe("<< hello from Temp");
  expect(responders(r.stdout)).toEqual(["Temp", ...NYC, ...SFC].sort());
  expect(lines).toHaveLength(10);
});

test("fewer answers than --expect: exit code 1 and a message", async () => {
  const r = await chat(["--send", "hello", "--expect", "10", "--timeout", "1000"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/line 1: \d of 10 responses within 1000 ms/);
});

test("topo lists both sites, their members with ip:port, (me) and one site master each", async () => {
  const r = await chat(["--wait-sites", "2"], 20_000, "topo\nsm\nsites\nquit\n");
  expect(r.code).toBe(0);
  const out = r.stdout;
  expect(out).toMatch(/^sfc$/m);
  expect(out).toMatch(/^nyc$/m);
  expect(out.match(/\/\/ site master/g)).toHaveLength(2);
  expect(out).toMatch(/^ {2}Temp 127\.0\.0\.1:\d+ \(me\)$/m);
  for (const n of ["nyc-1", "nyc-2", "nyc-3", "nyc-4", "nyc-5", "sfc-1", "sfc-2", "sfc-3"]) {
    expect(out).toMatch(new RegExp(`^  ${n} 127\\.0\\.0\\.1:${proc(n).port}( // site master)?$`, "m"));
  }
  expect(out).toMatch(/^sites: sfc, nyc$/m);
});

test("a member joining late sees both sites", async () => {
  const r = await runCli(
    [
      "chat",
      "--site",
      "nyc",
      "--name",
      "late",
      "--members",
      local.members("nyc"),
      "--routers",
      local.routers(),
      "--wait-sites",
      "2",
    ],
    {},
    20_000,
    "sites\nquit\n",
  );
  expect(r.stdout).toMatch(/^sites: nyc, sfc$/m);
});

test("relay probe prints every member of a site", async () => {
  const r = await runCli([
    "probe",
    "--join-site",
    "sfc",
    "--members",
    local.members("sfc"),
    "--routers",
    local.routers(),
    "--site",
    "nyc",
  ]);
  expect(r.code).toBe(0);
  expect(r.stdout.match(/^local_addr=nyc-\d /gm)).toHaveLength(5);
  expect(r.stdout).toMatch(/^view=\[nyc-\d\|\d+\] \(5\)/m);
  expect(r.stdout).toMatch(/^cluster=relay$/m);
});

test("one router killed: the line still gets 9 answers through the other", async () => {
  process.kill(proc("router-1").pid, "SIGKILL");
  await waitFor("router-1 gone", () => !isAlive(proc("router-1").pid), { timeoutMs: 10_000 });
  const r = await chatUntil(["Temp", ...NYC, ...SFC].sort());
  expect(responders(r.stdout)).toEqual(["Temp", ...NYC, ...SFC].sort());
  // The route to nyc never went down: it is up through the router that is left.
  const sfcMaster = (await status("sfc-1"))!.view!.members[0]!.name;
  const left = `127.0.0.1[${proc("router-2").port}]`;
  type Routes = { routes: { site: string; up: boolean; routers: string[] }[] };
  await waitFor(
    "route to nyc through the remaining router only",
    async () => {
      const st = (await getJson<Routes>(proc(sfcMaster).httpPort, "/status"))?.body;
      return JSON.stringify(st?.routes.find((x) => x.site === "nyc")?.routers) === JSON.stringify([left]);
    },
    { timeoutMs: 10_000 },
  );
  const metrics = await fetch(`http://127.0.0.1:${proc(sfcMaster).httpPort}/metrics`).then((x) => x.text());
  expect(metrics).toMatch(/relay_route_up\{site="nyc"\} 1/);
  expect(metrics).toMatch(/relay_route_routers\{site="nyc"\} 1/);
});

test("the nyc site master leaves (SIGTERM), then its successor is killed with kill -9: chat works each time", async () => {
  const first = (await status("nyc-2"))!.view!.members[0]!.name;
  expect((await status(first))!.siteMaster).toBe(true);
  process.kill(proc(first).pid, "SIGTERM");
  await waitFor(`${first} exits after SIGTERM`, () => !isAlive(proc(first).pid), { timeoutMs: 10_000 });
  const others = ["nyc-1", "nyc-2", "nyc-3", "nyc-4", "nyc-5"].filter((n) => n !== first);
  await waitFor("nyc view of 4", async () => (await status(others[0]!))?.view?.members.length === 4, {
    timeoutMs: 10_000,
  });
  const second = (await status(others[0]!))!.view!.members[0]!.name;
  await waitFor(`${second} becomes site master`, async () => (await status(second))?.siteMaster === true, {
    timeoutMs: 10_000,
  });
  const four = others.map((n) => `${n}:nyc`);
  let r = await chatUntil(["Temp", ...four, ...SFC].sort());
  expect(responders(r.stdout)).toEqual(["Temp", ...four, ...SFC].sort());

  process.kill(proc(second).pid, "SIGKILL");
  const three = others.filter((n) => n !== second);
  await waitFor("nyc view of 3", async () => (await status(three[0]!))?.view?.members.length === 3, {
    timeoutMs: 10_000,
  });
  const third = (await status(three[0]!))!.view!.members[0]!.name;
  await waitFor(`${third} becomes site master`, async () => (await status(third))?.siteMaster === true, {
    timeoutMs: 10_000,
  });
  r = await chatUntil(["Temp", ...three.map((n) => `${n}:nyc`), ...SFC].sort());
  expect(responders(r.stdout)).toEqual(["Temp", ...three.map((n) => `${n}:nyc`), ...SFC].sort());
  // The sfc side sees the new nyc site master.
  await waitFor(
    "sfc sees the new nyc site master",
    async () => (await status("sfc-2"))?.sites.find((s) => s.site === "nyc")?.siteMasters[0] === third,
    { timeoutMs: 10_000 },
  );
});

test("the sfc site master is killed with kill -9: the chat in sfc still reaches everyone", async () => {
  const sfcMaster = (await status("sfc-2"))!.view!.members[0]!.name;
  process.kill(proc(sfcMaster).pid, "SIGKILL");
  const rest = SFC.filter((n) => n !== sfcMaster);
  await waitFor("sfc view of 2", async () => (await status(rest[0]!))?.view?.members.length === 2, {
    timeoutMs: 10_000,
  });
  const nycLeft: string[] = [];
  for (const n of ["nyc-1", "nyc-2", "nyc-3", "nyc-4", "nyc-5"])
    if (isAlive(proc(n).pid)) nycLeft.push(`${n}:nyc`);
  const want = ["Temp", ...nycLeft, ...rest].sort();
  const r = await chatUntil(want);
  expect(responders(r.stdout)).toEqual(want);
});

test("SIGTERM to relay local stops every process it started", async () => {
  const pids = local.procs.map((p) => p.pid);
  local.child.kill("SIGTERM");
  expect(await local.exited(20_000)).toBe(0);
  await waitFor("no process left", () => pids.every((pid) => !isAlive(pid)), { timeoutMs: 10_000 });
});
