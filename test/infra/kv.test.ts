// Replicated maps in the IaC (topology `kv`, issue 11): what the sites get when the topology names
// maps (KV_* env rendered by the contract, the API token Secret and its read-only mount, the
// container port and ClusterIP Service `kv`, the NetworkPolicy rule for the client namespaces,
// outputs), that a topology without `kv` gets none of it, and the validation of both the topology
// field and the construct props.

import { App, TerraformStack } from "cdktf";
import { KV_TLS_DIR, KV_TLS_FILES, KV_TOKEN_DIR, KV_TOKEN_PATH } from "../../constructs/pod-parts.js";
import { KvTokenSecret } from "../../constructs/relay-secrets.js";
import { kvServiceDnsNames, RelaySite, type RelaySiteKvProps } from "../../constructs/relay-site.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { parseRelayEnv, RELAY_ENV } from "../../contract/relay-env.js";
import { buildRelayStacks } from "../../stacks/relay-app.js";
import {
  defaultTopology,
  parseTopology,
  readTopologyFile,
  type Topology,
  TopologyError,
} from "../../topology/index.js";
import { applyWaivers, evaluate, WAIVERS } from "./policy-rules.js";
import {
  containerEnv,
  findNamed,
  inlineLocals,
  resourcesOf,
  structuralProblems,
  synthTopology,
  type TfJson,
} from "./synth.js";

const KV_NAMES = [RELAY_ENV.kvMaps, RELAY_ENV.kvPort, RELAY_ENV.kvTokenFile, RELAY_ENV.kvBackupSites];
const KV_TLS_NAMES = [RELAY_ENV.kvTlsCert, RELAY_ENV.kvTlsKey];
const SECRET_REF = /^\$\{kubernetes_secret_v1\.([\w-]+)\.metadata\[0\]\.name\}$/;
const SHA_OF_KEY = /^\$\{sha256\(tls_private_key\.([\w-]+)\.private_key_pem\)\}$/;

const seedTopology = defaultTopology();
const kvTopology = parseTopology({ kv: { maps: ["sessions", "orders"], backups: { nyc: ["sfc"] } } });
const seed = synthTopology(seedTopology);
const withKv = synthTopology(kvTopology);

const deploymentOf = (stack: TfJson, site: string) =>
  findNamed(stack, "kubernetes_deployment_v1", `${site}-relay`);
const podSpec = (dep: TfJson): TfJson => dep["spec"]["template"]["spec"];
const ingressRules = (stack: TfJson, site: string): TfJson[] =>
  findNamed(stack, "kubernetes_network_policy_v1", `${site}-relay`)["spec"]["ingress"];
const rulesFor = (stack: TfJson, site: string, port: number) =>
  ingressRules(stack, site).filter((r) => r["ports"].some((p: TfJson) => p["port"] === String(port)));

/** The env as the runtime would see it in a pod (downward-API entries filled like kubelet does). */
function podEnv(dep: TfJson): Record<string, string> {
  const env = containerEnv(dep);
  return {
    ...Object.fromEntries(
      [...env].map(([k, e]) => [k, e["value"] ?? (k === "BIND_ADDR" ? "10.0.0.7" : "pod-0")]),
    ),
    TUNNEL_INITIAL_HOSTS: "a.example[12001],b.example[12001]",
  };
}

describe("no kv (the seed): nothing of the maps is deployed", () => {
  test("no KV_* env, no kv port, Service, Secret or output in any stack", () => {
    expect(seedTopology.kv).toBeUndefined();
    for (const [name, stack] of Object.entries(seed.stacks)) {
      const json = JSON.stringify(stack);
      expect({ name, kvEnv: /"KV_[A-Z_]+"/.test(json) }).toEqual({ name, kvEnv: false });
      expect({ name, port: json.includes("8090") }).toEqual({ name, port: false });
      expect({ name, kv: /relay-kv|"kv"|kv_endpoint|kv-token/.test(json) }).toEqual({ name, kv: false });
    }
    for (const site of ["nyc", "sfc"]) {
      const s = seed.built.sites.get(site)!;
      expect([
        s.kvToken,
        s.site.kvEndpoint,
        s.site.kvUrl,
        s.site.kvService,
        s.site.kvTokenSecretName,
      ]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    }
  });

  test("kv adds to the site stacks and the kv API certificates of the pki stack only", () => {
    for (const name of Object.keys(seed.stacks)) {
      if (name === "pki") {
        expect(withoutKeysMatching(withKv.stacks[name]!, /relay-kv/)).toEqual(seed.stacks[name]);
        continue;
      }
      if (!name.endsWith("-site")) {
        expect(withKv.stacks[name]).toEqual(seed.stacks[name]);
        continue;
      }
      const stripped = stripKv(withKv.stacks[name]!);
      expect(stripped).toEqual(seed.stacks[name]);
    }
  });
});

/** A deep copy of `v` without the object keys that match `re` (at any depth). */
function withoutKeysMatching(v: TfJson, re: RegExp): TfJson {
  if (Array.isArray(v)) return v.map((x) => withoutKeysMatching(x, re));
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(
    Object.entries<TfJson>(v)
      .filter(([k]) => !re.test(k))
      .map(([k, x]) => [k, withoutKeysMatching(x, re)]),
  );
}

/** A site stack with every kv addition removed (a deep copy). */
function stripKv(stack: TfJson): TfJson {
  const s: TfJson = structuredClone(stack);
  const res = s["resource"];
  const drop = (type: string, keep: (id: string, body: TfJson) => boolean) => {
    res[type] = Object.fromEntries(Object.entries<TfJson>(res[type] ?? {}).filter(([id, b]) => keep(id, b)));
  };
  drop("kubernetes_service_v1", (_, b) => !b["metadata"]["name"].endsWith("-relay-kv"));
  drop("kubernetes_secret_v1", (_, b) => !/-relay-kv-(token|tls)$/.test(b["metadata"]["name"]));
  delete res["kubernetes_config_map_v1"];
  drop("tls_private_key", (id) => !id.startsWith("kv-token_"));
  s["locals"] = Object.fromEntries(Object.entries(s["locals"]).filter(([id]) => !id.startsWith("kv-token_")));
  for (const key of ["kv_endpoint", "kv_url", "kv_token_secret_name", "kv_ca_config_map_name"]) {
    delete s["output"][key];
    for (const outputs of Object.values<TfJson>(s["//"]["outputs"])) delete outputs[key];
  }
  for (const [, dep] of resourcesOf(s, "kubernetes_deployment_v1")) {
    const spec = podSpec(dep);
    const c = spec["container"][0];
    c["env"] = c["env"].filter((e: TfJson) => ![...KV_NAMES, ...KV_TLS_NAMES].includes(e["name"]));
    c["port"] = c["port"].filter((p: TfJson) => p["name"] !== "kv");
    c["volume_mount"] = c["volume_mount"].filter((m: TfJson) => !["kv-token", "kv-tls"].includes(m["name"]));
    spec["volume"] = spec["volume"].filter((v: TfJson) => !["kv-token", "kv-tls"].includes(v["name"]));
  }
  for (const [, np] of resourcesOf(s, "kubernetes_network_policy_v1")) {
    np["spec"]["ingress"] = np["spec"]["ingress"].filter(
      (r: TfJson) => !r["ports"].some((p: TfJson) => p["port"] === "8090"),
    );
  }
  return s;
}

describe("kv: maps [sessions, orders], nyc backs up to sfc, sfc to every other site", () => {
  test.each(["nyc", "sfc"])(
    "%s: KV_* env in the contract's order, accepted by the runtime's parser",
    (site) => {
      const dep = deploymentOf(withKv.stacks[`${site}-site`]!, site);
      const names = [...containerEnv(dep).keys()];
      const seedNames = [...containerEnv(deploymentOf(seed.stacks[`${site}-site`]!, site)).keys()];
      const kvNames = [...(site === "nyc" ? KV_NAMES : KV_NAMES.slice(0, 3)), ...KV_TLS_NAMES];
      // The seed's list, then the kv variables: the order renderRelayEnv emits (RELAY_ENV's order).
      expect(names).toEqual([...seedNames, ...kvNames]);
      const order = Object.values(RELAY_ENV) as string[];
      expect(names.map((n) => order.indexOf(n))).toEqual(
        [...names.map((n) => order.indexOf(n))].sort((a, b) => a - b),
      );
      expect(containerEnv(dep).get("KV_MAPS")!["value"]).toBe("sessions,orders");
      expect(containerEnv(dep).get("KV_PORT")!["value"]).toBe("8090");
      expect(containerEnv(dep).get("KV_TOKEN_FILE")!["value"]).toBe(KV_TOKEN_PATH);
      expect(parseRelayEnv(podEnv(dep)).kv).toEqual({
        maps: ["sessions", "orders"],
        port: 8090,
        tokenFile: KV_TOKEN_PATH,
        backupSites: site === "nyc" ? ["sfc"] : undefined,
        tls: KV_TLS_FILES,
      });
      expect(withKv.built.sites.get(site)!.site.env.map((e) => e.name)).toEqual(names);
    },
  );

  test.each(["nyc", "sfc"])(
    "%s: a generated token in Secret <site>-relay-kv-token, mounted read-only",
    (site) => {
      const s = withKv.stacks[`${site}-site`]!;
      const spec = podSpec(deploymentOf(s, site));
      const volume = spec["volume"].find((v: TfJson) => v["name"] === "kv-token");
      expect(volume["secret"]["default_mode"]).toBe("0440");
      const ref = SECRET_REF.exec(volume["secret"]["secret_name"]);
      expect(ref).not.toBeNull();
      const secret = s["resource"]["kubernetes_secret_v1"][ref![1]!];
      expect(secret["metadata"]).toMatchObject({ name: `${site}-relay-kv-token`, namespace: "default" });
      expect(secret["type"]).toBe("Opaque");
      expect(Object.keys(secret["data"])).toEqual(["token"]);
      // 64 hex characters: the SHA-256 of an Ed25519 key of this stack, not the mesh secret's key.
      const key = SHA_OF_KEY.exec(inlineLocals(s, secret["data"]["token"]));
      expect(key).not.toBeNull();
      expect(s["resource"]["tls_private_key"][key![1]!]["algorithm"]).toBe("ED25519");
      const mesh = findNamed(s, "kubernetes_secret_v1", `${site}-relay-mesh`);
      expect(SHA_OF_KEY.exec(inlineLocals(s, mesh["data"]["cluster-secret"]))![1]).not.toBe(key![1]);
      const mount = spec["container"][0]["volume_mount"].find((m: TfJson) => m["name"] === "kv-token");
      expect(mount).toEqual({ name: "kv-token", mount_path: KV_TOKEN_DIR, read_only: true });
      expect(KV_TOKEN_PATH).toBe(`${KV_TOKEN_DIR}/token`);
    },
  );

  test.each(["nyc", "sfc"])("%s: container port kv and the ClusterIP Service <site>-relay-kv", (site) => {
    const s = withKv.stacks[`${site}-site`]!;
    const dep = deploymentOf(s, site);
    expect(podSpec(dep)["container"][0]["port"]).toContainEqual({
      name: "kv",
      container_port: 8090,
      protocol: "TCP",
    });
    const svc = findNamed(s, "kubernetes_service_v1", `${site}-relay-kv`);
    expect(svc["spec"]).toEqual({
      type: "ClusterIP",
      selector: dep["spec"]["selector"]["match_labels"],
      session_affinity: "ClientIP",
      port: [{ name: "kv", port: 8090, target_port: "kv", protocol: "TCP" }],
    });
    // The headless (discovery) and metrics Services do not carry the kv port.
    for (const name of [`${site}-relay`, `${site}-relay-metrics`]) {
      const ports = findNamed(s, "kubernetes_service_v1", name)["spec"]["port"];
      expect(ports.map((p: TfJson) => p["port"])).not.toContain(8090);
    }
  });

  test.each(["nyc", "sfc"])(
    "%s: the NetworkPolicy admits the kv port from the relay namespace only",
    (site) => {
      const s = withKv.stacks[`${site}-site`]!;
      expect(rulesFor(s, site, 8090)).toEqual([
        {
          from: [{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "default" } } }],
          ports: [{ port: "8090", protocol: "TCP" }],
        },
      ]);
      // Every rule names its sources (a rule without `from` admits everyone).
      for (const rule of ingressRules(s, site)) expect(rule["from"].length).toBeGreaterThan(0);
    },
  );

  test.each(["nyc", "sfc"])(
    "%s: the API serves HTTPS with a certificate of its own for the Service's names; clients get the CA",
    (site) => {
      const s = withKv.stacks[`${site}-site`]!;
      const spec = podSpec(deploymentOf(s, site));
      const volume = spec["volume"].find((v: TfJson) => v["name"] === "kv-tls");
      expect(volume["secret"]["default_mode"]).toBe("0440");
      const secret =
        s["resource"]["kubernetes_secret_v1"][SECRET_REF.exec(volume["secret"]["secret_name"])![1]!];
      expect(secret["metadata"]).toMatchObject({ name: `${site}-relay-kv-tls`, namespace: "default" });
      expect(secret["type"]).toBe("kubernetes.io/tls");
      // Its certificate is the pki stack's `<site>-relay-kv`, not the site's client certificate.
      expect(secret["data"]["tls.crt"]).toMatch(
        new RegExp(`tls_locally_signed_certpki_${site}-relay-kv-cert`),
      );
      expect(secret["data"]["tls.key"]).toMatch(new RegExp(`tls_private_keypki_${site}-relay-kv-key`));
      const mount = spec["container"][0]["volume_mount"].find((m: TfJson) => m["name"] === "kv-tls");
      expect(mount).toEqual({ name: "kv-tls", mount_path: KV_TLS_DIR, read_only: true });
      expect(containerEnv(deploymentOf(s, site)).get("KV_TLS_CERT")!["value"]).toBe(KV_TLS_FILES.cert);
      const ca = findNamed(s, "kubernetes_config_map_v1", `${site}-relay-kv-ca`);
      expect(Object.keys(ca["data"])).toEqual(["ca.crt"]);
      expect(ca["data"]["ca.crt"]).toBe(secret["data"]["ca.crt"]);

      const pki = withKv.stacks["pki"]!;
      const [, csr] = resourcesOf(pki, "tls_cert_request").find(([id]) => id.includes(`${site}-relay-kv`))!;
      const host = withKv.built.sites.get(site)!.site.kvEndpoint!.replace(/:\d+$/, "");
      expect(csr["dns_names"]).toEqual(kvServiceDnsNames(site, "default"));
      expect(csr["dns_names"]).toContain(host);
      expect(csr["uris"]).toEqual([`spiffe://cross-cloud-relay/kv-api/${site}`]);
      const [, cert] = resourcesOf(pki, "tls_locally_signed_cert").find(([id]) =>
        id.includes(`${site}-relay-kv`),
      )!;
      expect(cert["allowed_uses"]).toEqual(["digital_signature", "key_encipherment", "server_auth"]);
      expect(Object.keys(pki["output"]["ready_for_renewal"]["value"])).toContain(`${site}-relay-kv`);
    },
  );

  test("outputs: kv_endpoint and kv_token_secret_name, also as typed properties", () => {
    for (const site of ["nyc", "sfc"]) {
      const s = withKv.stacks[`${site}-site`]!;
      expect(s["output"]["kv_endpoint"]["value"]).toBe(`${site}-relay-kv.default.svc.cluster.local:8090`);
      expect(s["output"]["kv_token_secret_name"]["value"]).toMatch(SECRET_REF);
      expect(s["output"]["kv_url"]["value"]).toBe(`https://${site}-relay-kv.default.svc.cluster.local:8090`);
      expect(s["output"]["kv_ca_config_map_name"]["value"]).toMatch(
        /^\$\{kubernetes_config_map_v1\.kv-ca\.metadata\[0\]\.name\}$/,
      );
      const built = withKv.built.sites.get(site)!;
      expect(built.site.kvEndpoint).toBe(`${site}-relay-kv.default.svc.cluster.local:8090`);
      expect(built.site.kvUrl).toBe(`https://${site}-relay-kv.default.svc.cluster.local:8090`);
      expect(built.site.kvTokenSecretName).toBe(built.kvToken!.secretName);
      expect(built.site.kvService).toBeDefined();
    }
  });

  test("the stacks stay structurally sound and pass the policy rules like the seed", () => {
    for (const name of Object.keys(withKv.stacks))
      expect(structuralProblems(name, withKv.stacks)).toEqual([]);
    expect(applyWaivers(evaluate(withKv.stacks), WAIVERS).unwaived).toEqual([]);
    expect(withKv.dependencies).toEqual(seed.dependencies);
  });
});

describe("kv options", () => {
  const three = {
    sites: [
      { name: "nyc", cloud: "eks" },
      { name: "sfc", cloud: "gke" },
      {
        name: "lab",
        cloud: "existing",
        kubeconfig: { path: "~/.kube/config" },
        egressCidrs: ["198.51.100.7/32"],
      },
    ],
  };

  test("backups: each listed site gets its KV_BACKUP_SITES in the listed order; unlisted sites none", () => {
    const { stacks } = synthTopology(
      parseTopology({ ...three, kv: { maps: ["m"], backups: { nyc: ["lab", "sfc"], lab: ["nyc"] } } }),
    );
    const backup = (site: string) =>
      containerEnv(deploymentOf(stacks[`${site}-site`]!, site)).get("KV_BACKUP_SITES")?.["value"];
    expect(["nyc", "sfc", "lab"].map(backup)).toEqual(["lab,sfc", undefined, "nyc"]);
  });

  test("clientNamespaces: one namespace selector each; [] admits no pod (and leaves no open rule)", () => {
    const ns = (list: string[]) =>
      synthTopology(parseTopology({ namespace: "relay", kv: { maps: ["m"], clientNamespaces: list } }))
        .stacks;
    const two = ns(["apps", "relay"])["nyc-site"]!;
    expect(rulesFor(two, "nyc", 8090)).toEqual([
      {
        from: [
          { namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "apps" } } },
          { namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "relay" } } },
        ],
        ports: [{ port: "8090", protocol: "TCP" }],
      },
    ]);
    expect(two["output"]["kv_endpoint"]["value"]).toBe("nyc-relay-kv.relay.svc.cluster.local:8090");
    const none = ns([])["nyc-site"]!;
    expect(rulesFor(none, "nyc", 8090)).toEqual([]);
    expect(ingressRules(none, "nyc")).toHaveLength(2);
    for (const rule of ingressRules(none, "nyc")) expect(rule["from"].length).toBeGreaterThan(0);
    // The API is still deployed (reachable through kubectl exec / port-forward).
    expect(findNamed(none, "kubernetes_service_v1", "nyc-relay-kv")).toBeDefined();
  });

  test("kv with tls: false (router tokens): both token Secrets are mounted, each in its own directory", () => {
    const { stacks } = synthTopology(parseTopology({ tls: false, kv: { maps: ["m"] } }));
    const spec = podSpec(deploymentOf(stacks["nyc-site"]!, "nyc"));
    expect(spec["container"][0]["volume_mount"].map((m: TfJson) => m["mount_path"])).toEqual([
      "/tmp",
      "/etc/relay/mesh",
      "/etc/relay/router-token",
      KV_TOKEN_DIR,
    ]);
    const env = parseRelayEnv(podEnv(deploymentOf(stacks["nyc-site"]!, "nyc")));
    expect([env.routerTokenFile, env.kv?.tokenFile]).toEqual([
      "/etc/relay/router-token/token",
      KV_TOKEN_PATH,
    ]);
    // No pki without TLS: the API stays plain HTTP (DEPLOY.md says so).
    expect(env.kv?.tls).toBeUndefined();
    expect(stacks["nyc-site"]!["resource"]["kubernetes_config_map_v1"]).toBeUndefined();
    expect(stacks["nyc-site"]!["output"]["kv_url"]["value"]).toBe(
      "http://nyc-relay-kv.default.svc.cluster.local:8090",
    );
  });
});

/** The problems parseTopology reports for `doc` (fails the test if it accepts it). */
function problemsOf(doc: unknown): readonly string[] {
  try {
    parseTopology(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(TopologyError);
    return (err as TopologyError).problems;
  }
  throw new Error("parseTopology accepted an invalid topology");
}

describe("topology kv: every problem names its field", () => {
  test("accepted: the example's block, and defaults", () => {
    const t = parseTopology({
      kv: { maps: ["sessions", "orders"], backups: { nyc: ["sfc"], sfc: ["nyc"] } },
    });
    expect(t.kv).toEqual({
      maps: ["sessions", "orders"],
      backups: { nyc: ["sfc"], sfc: ["nyc"] },
      clientNamespaces: undefined,
    });
    expect(parseTopology({ kv: { maps: ["a.b_c-D9"] } }).kv).toEqual({
      maps: ["a.b_c-D9"],
      backups: {},
      clientNamespaces: undefined,
    });
    expect(
      parseTopology({ kv: { maps: Array.from({ length: 64 }, (_, i) => `m${i}`) } }).kv?.maps,
    ).toHaveLength(64);
    expect("kv" in parseTopology({})).toBe(false);
  });

  test("the example file's block: nyc <-> sfc, lab (not listed) backs up to every other site", () => {
    expect(readTopologyFile("topology/topology.example.yaml").kv).toEqual({
      maps: ["sessions", "orders"],
      backups: { nyc: ["sfc"], sfc: ["nyc"] },
      clientNamespaces: undefined,
    });
  });

  test.each([
    ["kv not a mapping", { kv: ["sessions"] }, "kv: must be a mapping (object), got a list"],
    [
      "an unknown field",
      { kv: { maps: ["m"], port: 9000 } },
      "kv.port: unknown field; allowed: maps, backups, clientNamespaces",
    ],
    ["no maps", { kv: {} }, "kv.maps: is required"],
    [
      "maps not a list",
      { kv: { maps: "sessions" } },
      "kv.maps: must be a list (of a map name: 1..64 of letters, digits, '.', '_' or '-'s), got \"sessions\"",
    ],
    ["no map", { kv: { maps: [] } }, "kv.maps: needs 1..64 entries, got 0"],
    [
      "65 maps",
      { kv: { maps: Array.from({ length: 65 }, (_, i) => `m${i}`) } },
      "kv.maps: needs 1..64 entries, got 65",
    ],
    [
      "a bad map name",
      { kv: { maps: ["ok", "no/slash"] } },
      'kv.maps[1]: "no/slash" is not allowed: a map name',
    ],
    ["a map name too long", { kv: { maps: ["x".repeat(65)] } }, "kv.maps[0]: "],
    [
      "a map named twice",
      { kv: { maps: ["a", "b", "a"] } },
      'kv.maps[2]: "a" is listed twice (also kv.maps[0])',
    ],
    ["a number as map", { kv: { maps: [7] } }, "kv.maps[0]: number 7 is not allowed"],
    [
      "backups not a mapping",
      { kv: { maps: ["m"], backups: ["sfc"] } },
      "kv.backups: must be a mapping (object), got a list",
    ],
    [
      "backups of an unknown site",
      { kv: { maps: ["m"], backups: { lon: ["nyc"] } } },
      'kv.backups.lon: "lon" is not a site of this topology; sites: nyc, sfc',
    ],
    [
      "a backup to an unknown site",
      { kv: { maps: ["m"], backups: { nyc: ["lon"] } } },
      'kv.backups.nyc[0]: "lon" is not a site of this topology; sites: nyc, sfc',
    ],
    [
      "a backup to itself",
      { kv: { maps: ["m"], backups: { nyc: ["nyc"] } } },
      'kv.backups.nyc[0]: "nyc" is the site itself',
    ],
    [
      "an empty backup list",
      { kv: { maps: ["m"], backups: { nyc: [] } } },
      "kv.backups.nyc: needs 1..16 entries, got 0",
    ],
    [
      "a backup list that is a string",
      { kv: { maps: ["m"], backups: { nyc: "sfc" } } },
      'kv.backups.nyc: must be a list (of a site names), got "sfc"',
    ],
    [
      "a backup site twice",
      { kv: { maps: ["m"], backups: { nyc: ["sfc", "sfc"] } } },
      'kv.backups.nyc[1]: "sfc" is listed twice',
    ],
    [
      "a bad client namespace",
      { kv: { maps: ["m"], clientNamespaces: ["Apps"] } },
      'kv.clientNamespaces[0]: "Apps" is not allowed: a namespace name',
    ],
    [
      "client namespaces not a list",
      { kv: { maps: ["m"], clientNamespaces: "apps" } },
      "kv.clientNamespaces: must be a list",
    ],
  ])("%s", (_, doc, message) => {
    const problems = problemsOf(doc);
    expect(problems).toEqual([expect.stringContaining(message)]);
  });

  test("all problems at once", () => {
    expect(problemsOf({ kv: { maps: ["a", "a"], backups: { nyc: ["nyc"], lon: ["sfc"] } } })).toEqual([
      'kv.maps[1]: "a" is listed twice (also kv.maps[0])',
      'kv.backups.nyc[0]: "nyc" is the site itself; a site backs up to other sites',
      'kv.backups.lon: "lon" is not a site of this topology; sites: nyc, sfc',
    ]);
  });

  test("a site with other problems is still a site for kv.backups (no second problem)", () => {
    expect(
      problemsOf({
        sites: [
          { name: "nyc", cloud: "eks" },
          { name: "lab", cloud: "existing" },
        ],
        kv: { maps: ["m"], backups: { lab: ["nyc"] } },
      }),
    ).toEqual([expect.stringMatching(/^sites\[1\]\.kubeconfig: /)]);
  });

  test("a Topology built in code: backups naming a stranger are refused by buildRelayStacks", () => {
    const t: Topology = {
      ...defaultTopology(),
      kv: { maps: ["m"], backups: { nyc: ["lon"] }, clientNamespaces: undefined },
    };
    expect(() => buildRelayStacks(new App(), t)).toThrow(
      /kv\.backups\.nyc: "lon" is not a site of this topology \(nyc, sfc\)/,
    );
  });
});

describe("RelaySite kv props are checked at construction", () => {
  const site = (kv: Partial<RelaySiteKvProps>, extra: { bindPort?: number; httpPort?: number } = {}) => {
    const stack = new TerraformStack(new App(), "s");
    return new RelaySite(stack, "site", {
      site: "nyc",
      image: "relay:1",
      tunnelInitialHosts: "a[12001]",
      ...extra,
      kv: { maps: ["m"], tokenSecretName: "nyc-relay-kv-token", ...kv },
    });
  };

  test("defaults: port 8090, KV_BACKUP_SITES left to the runtime, the relay namespace as client", () => {
    const s = site({});
    expect(s.kvEndpoint).toBe("nyc-relay-kv.default.svc.cluster.local:8090");
    expect(s.kvTokenSecretName).toBe("nyc-relay-kv-token");
    expect(s.env.filter((e) => e.name.startsWith("KV_"))).toEqual([
      { name: "KV_MAPS", value: "m" },
      { name: "KV_PORT", value: "8090" },
      { name: "KV_TOKEN_FILE", value: KV_TOKEN_PATH },
    ]);
    expect(site({ port: 9100 }).kvEndpoint).toBe("nyc-relay-kv.default.svc.cluster.local:9100");
    expect(s.kvUrl).toBe("http://nyc-relay-kv.default.svc.cluster.local:8090");
  });

  test("tlsSecretName: HTTPS (KV_TLS_CERT / KV_TLS_KEY on the mounted Secret) and an https:// kvUrl", () => {
    const s = site({ tlsSecretName: "nyc-relay-kv-tls" });
    expect(s.kvUrl).toBe("https://nyc-relay-kv.default.svc.cluster.local:8090");
    expect(s.env.filter((e) => e.name.startsWith("KV_TLS_"))).toEqual([
      { name: "KV_TLS_CERT", value: KV_TLS_FILES.cert },
      { name: "KV_TLS_KEY", value: KV_TLS_FILES.key },
    ]);
    expect(kvServiceDnsNames("nyc", "relay", "example.internal")).toEqual([
      "nyc-relay-kv",
      "nyc-relay-kv.relay",
      "nyc-relay-kv.relay.svc",
      "nyc-relay-kv.relay.svc.example.internal",
    ]);
  });

  test.each<[string, Partial<RelaySiteKvProps>, { bindPort?: number; httpPort?: number }, string]>([
    ["no map", { maps: [] }, {}, "RelaySite: kv.maps must name 1..64 maps (got 0)"],
    ["a bad map name", { maps: ["a b"] }, {}, 'RelaySite: kv.maps: "a b" is not a map name'],
    ["a map twice", { maps: ["a", "a"] }, {}, 'RelaySite: kv.maps: "a" is listed twice'],
    ["no token Secret", { tokenSecretName: "" }, {}, "RelaySite: kv.tokenSecretName is required"],
    [
      "an empty TLS Secret name",
      { tlsSecretName: "" },
      {},
      "RelaySite: kv.tlsSecretName must name a TLS Secret",
    ],
    [
      "backing up to itself",
      { backupSites: ["nyc"] },
      {},
      'RelaySite: kv.backupSites: "nyc" is the site itself',
    ],
    ["an empty backup list", { backupSites: [] }, {}, "RelaySite: kv.backupSites is empty"],
    [
      "a bad backup site",
      { backupSites: ["SFC"] },
      {},
      'RelaySite: kv.backupSites: "SFC" is not a site name',
    ],
    [
      "a backup site twice",
      { backupSites: ["sfc", "sfc"] },
      {},
      'RelaySite: kv.backupSites: "sfc" is listed twice',
    ],
    ["port 0", { port: 0 }, {}, "RelaySite: kv.port must be an integer in 1..65535 (got 0)"],
    ["port = httpPort", { port: 8080 }, {}, "RelaySite: kv.port 8080 is also bindPort or httpPort"],
    [
      "port = bindPort",
      { port: 7900 },
      { bindPort: 7900 },
      "RelaySite: kv.port 7900 is also bindPort or httpPort",
    ],
    [
      "a bad client namespace",
      { clientNamespaces: ["a_b"] },
      {},
      'RelaySite: kv.clientNamespaces: "a_b" is not a namespace name',
    ],
  ])("%s", (_, kv, extra, message) => {
    let thrown: unknown;
    try {
      site(kv, extra);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).message).toContain(message);
    expect((thrown as ValidationError).constructPath).toBe("s/site");
  });

  test("KvTokenSecret refuses a site that cannot name objects", () => {
    expect(() => new KvTokenSecret(new TerraformStack(new App(), "s"), "t", { site: "New_York" })).toThrow(
      ValidationError,
    );
  });
});
