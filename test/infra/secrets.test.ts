// The shared secrets the IaC generates: a cluster secret per site (the relay nodes' authenticated
// cluster port, against the fake member that sent HELLO + a hostile VIEW to a node), and
// with tls: false one router token per site, so that plain TCP is not an open door (the spy
// on the bridge could connect and read every announcement). Secrets are mounted as whole
// directories, never with subPath: Kubernetes updates those in place, which is what rotation
// without restarts relies on.

import { App, TerraformStack } from "cdktf";
import { CLUSTER_SECRET_PATH, ROUTER_TOKEN_PATH, ROUTER_TOKENS_DIR } from "../../constructs/pod-parts.js";
import { MeshSecret, RouterTokens } from "../../constructs/relay-secrets.js";
import { RelaySite } from "../../constructs/relay-site.js";
import { ValidationError } from "../../constructs/validation-error.js";
import { parseRelayEnv } from "../../contract/relay-env.js";
import { parseRouterArgs } from "../../contract/router-args.js";
import { defaultTopology, parseTopology } from "../../topology/index.js";
import {
  containerEnv,
  findNamed,
  inlineLocals,
  remoteStateProducer,
  resourcesOf,
  structuralProblems,
  synthTopology,
  type TfJson,
} from "./synth.js";

const SECRET_REF = /^\$\{kubernetes_secret_v1\.([\w-]+)\.metadata\[0\]\.name\}$/;

/** The Secret a pod volume mounts, by following its reference; and where it is mounted. */
function mounted(stack: TfJson, dep: TfJson, volume: string): { secret: TfJson; mountPath: string } {
  const spec = dep["spec"]["template"]["spec"];
  const v = spec["volume"].find((x: TfJson) => x["name"] === volume);
  expect(v).toBeDefined();
  const ref = SECRET_REF.exec(v["secret"]["secret_name"]);
  expect(ref).not.toBeNull();
  const mount = spec["container"][0]["volume_mount"].find((m: TfJson) => m["name"] === volume);
  expect(mount).toMatchObject({ read_only: true });
  return { secret: stack["resource"]["kubernetes_secret_v1"][ref![1]!], mountPath: mount["mount_path"] };
}

/** Follows `${data.terraform_remote_state.X.outputs.Y}` into the producer's output value. */
function producerOutput(stacks: Record<string, TfJson>, stack: TfJson, value: string): [string, string] {
  const m = /^\$\{data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)\}$/.exec(value);
  expect(m).not.toBeNull();
  const producer = remoteStateProducer(stack, m![1]!)!;
  return [producer, stacks[producer]!["output"][m![2]!]["value"]];
}

const SHA_OF_KEY = /^\$\{sha256\(tls_private_key\.([\w-]+)\.private_key_pem\)\}$/;

/** The secret's expression, through the local that holds it in its own stack. */
function hashed(stack: TfJson, value: string): RegExpExecArray | null {
  return SHA_OF_KEY.exec(inlineLocals(stack, value));
}

describe("seed (mutual TLS): a cluster secret per site", () => {
  const { stacks } = synthTopology(defaultTopology());

  test.each(["nyc", "sfc"])(
    "%s: Secret <site>-relay-mesh, mounted as a volume, rendered as CLUSTER_SECRET_FILE",
    (site) => {
      const s = stacks[`${site}-site`]!;
      const dep = findNamed(s, "kubernetes_deployment_v1", `${site}-relay`);
      const { secret, mountPath } = mounted(s, dep, "mesh");
      expect(secret["metadata"]["name"]).toBe(`${site}-relay-mesh`);
      expect(secret["type"]).toBe("Opaque");
      expect(Object.keys(secret["data"])).toEqual(["cluster-secret"]);
      // 64 hex characters: the SHA-256 of an Ed25519 key generated in this very stack.
      const key = hashed(s, secret["data"]["cluster-secret"]);
      expect(key).not.toBeNull();
      expect(s["resource"]["tls_private_key"][key![1]!]["algorithm"]).toBe("ED25519");
      expect(s["provider"]["tls"]).toBeDefined();
      // The env names the file the volume holds, and the runtime's parser accepts it.
      const env = containerEnv(dep);
      expect(env.get("CLUSTER_SECRET_FILE")!["value"]).toBe(`${mountPath}/cluster-secret`);
      expect(env.get("CLUSTER_SECRET_FILE")!["value"]).toBe(CLUSTER_SECRET_PATH);
      expect(env.has("ROUTER_TOKEN_FILE")).toBe(false);
      const parsed = parseRelayEnv({
        // Downward-API entries (pod name, pod IP) as kubelet would fill them.
        ...Object.fromEntries(
          [...env].map(([k, e]) => [k, e["value"] ?? (k === "BIND_ADDR" ? "10.0.0.7" : "x")]),
        ),
        TUNNEL_INITIAL_HOSTS: "a.example[12001],b.example[12001]",
      });
      expect(parsed.clusterSecretFile).toBe(CLUSTER_SECRET_PATH);
    },
  );

  test("the two sites' secrets are different keys", () => {
    const keys = ["nyc", "sfc"].map((site) => {
      const s = stacks[`${site}-site`]!;
      const secret = findNamed(s, "kubernetes_secret_v1", `${site}-relay-mesh`);
      return hashed(s, secret["data"]["cluster-secret"]);
    });
    // Different stacks, different states: each key is drawn separately.
    expect(keys.every((k) => k !== null)).toBe(true);
    expect(
      Object.keys(stacks)
        .filter((n) => resourcesOf(stacks[n]!, "tls_private_key").length > 0)
        .sort(),
    ).toEqual(["nyc-site", "pki", "sfc-site"]);
  });

  test("no Secret is mounted with subPath anywhere (kubelet updates only whole-directory mounts)", () => {
    let mounts = 0;
    for (const s of Object.values(stacks)) {
      for (const [, dep] of resourcesOf(s, "kubernetes_deployment_v1")) {
        for (const m of dep["spec"]["template"]["spec"]["container"][0]["volume_mount"]) {
          mounts++;
          expect(m["sub_path"]).toBeUndefined();
          expect(m["sub_path_expr"]).toBeUndefined();
        }
      }
    }
    expect(mounts).toBe(2 * 2 + 2 * 3); // routers: tmp + tls; sites: tmp + tls + mesh
  });
});

describe("tls: false (routerAuth tokens, the default then): one token per site", () => {
  const topology = parseTopology({ tls: false });
  const { stacks, dependencies } = synthTopology(topology);

  test("a tokens stack that reads from nobody; routers and sites read it", () => {
    expect(topology.routerAuth).toBe("tokens");
    expect(stacks["pki"]).toBeUndefined();
    expect(dependencies["tokens"]).toEqual([]);
    for (const site of ["nyc", "sfc"]) {
      expect(dependencies[`${site}-router`]).toContain("tokens");
      expect(dependencies[`${site}-site`]).toContain("tokens");
    }
    const keys = resourcesOf(stacks["tokens"]!, "tls_private_key");
    expect(keys.map(([, k]) => k["algorithm"])).toEqual(["ED25519", "ED25519"]);
    for (const name of Object.keys(stacks)) expect(structuralProblems(name, stacks)).toEqual([]);
    // Only the hashes leave the tokens stack, never the keys they are drawn from.
    const outputs = Object.values<TfJson>(stacks["tokens"]!["output"]).map((o) => o["value"]);
    expect(outputs).toHaveLength(2);
    for (const o of outputs) expect(o).not.toContain("private_key_pem");
  });

  test.each(["nyc", "sfc"])(
    "%s router: --auth-tokens on a Secret with one file per site, the bridge policy, no TLS",
    (site) => {
      const s = stacks[`${site}-router`]!;
      const dep = findNamed(s, "kubernetes_deployment_v1", `${site}-router`);
      const args = parseRouterArgs(dep["spec"]["template"]["spec"]["container"][0]["args"]);
      expect(args.tls).toBeUndefined();
      expect(args.authTokens).toBe(ROUTER_TOKENS_DIR);
      expect(args.allowGroups).toEqual({ bridge: ["nyc", "sfc"] });
      const { secret, mountPath } = mounted(s, dep, "tokens");
      expect(mountPath).toBe(ROUTER_TOKENS_DIR);
      expect(secret["metadata"]["name"]).toBe(`${site}-router-tokens`);
      expect(Object.keys(secret["data"]).sort()).toEqual(["nyc", "sfc"]);
      for (const [name, value] of Object.entries<string>(secret["data"])) {
        const [producer, expr] = producerOutput(stacks, s, value);
        expect(producer).toBe("tokens");
        // The hash crosses stacks, never the key it is drawn from.
        const key = hashed(stacks["tokens"]!, expr)!;
        // The token of site `name` is the one drawn for it.
        expect(stacks["tokens"]!["resource"]["tls_private_key"][key[1]!]["//"]["metadata"]["path"]).toBe(
          `tokens/tokens/${name}/seed`,
        );
      }
    },
  );

  test.each(["nyc", "sfc"])(
    "%s site: its own token as ROUTER_TOKEN_FILE, the same value the routers hold for it",
    (site) => {
      const s = stacks[`${site}-site`]!;
      const dep = findNamed(s, "kubernetes_deployment_v1", `${site}-relay`);
      const { secret, mountPath } = mounted(s, dep, "router-token");
      expect(secret["metadata"]["name"]).toBe(`${site}-relay-router-token`);
      const env = containerEnv(dep);
      expect(env.get("ROUTER_TOKEN_FILE")!["value"]).toBe(`${mountPath}/token`);
      expect(env.get("ROUTER_TOKEN_FILE")!["value"]).toBe(ROUTER_TOKEN_PATH);
      expect([...env.keys()].filter((k) => k.startsWith("TLS_"))).toEqual([]);
      const [, mine] = producerOutput(stacks, s, secret["data"]["token"]);
      for (const other of ["nyc", "sfc"]) {
        const r = stacks[`${other}-router`]!;
        const held = findNamed(r, "kubernetes_secret_v1", `${other}-router-tokens`)["data"][site];
        expect(producerOutput(stacks, r, held)[1]).toBe(mine);
      }
      // The mesh secret is there in every mode.
      expect(env.get("CLUSTER_SECRET_FILE")!["value"]).toBe(CLUSTER_SECRET_PATH);
    },
  );
});

describe("construct validation", () => {
  const stack = () => new TerraformStack(new App(), "s");
  test.each<[string, () => unknown, RegExp]>([
    [
      "a router token beside TLS",
      () =>
        new RelaySite(stack(), "s", {
          site: "a",
          image: "i",
          tunnelInitialHosts: "h[1]",
          tlsSecretName: "t",
          routerTokenSecretName: "k",
        }),
      /RelaySite: routerTokenSecretName is for routers without TLS/,
    ],
    [
      "a mesh secret for a bad site name",
      () => new MeshSecret(stack(), "m", { site: "A" }),
      /MeshSecret: site "A"/,
    ],
    ["no sites", () => new RouterTokens(stack(), "t", { sites: [] }), /RouterTokens: sites is empty/],
    ["a site twice", () => new RouterTokens(stack(), "t", { sites: ["a", "a"] }), /site "a" is listed twice/],
    [
      "an unknown site's token",
      () => new RouterTokens(stack(), "t", { sites: ["a"] }).tokenOf("b"),
      /no token for site "b"/,
    ],
  ])("refuses %s", (_, build, message) => {
    expect(build).toThrow(message);
    expect(build).toThrow(ValidationError);
  });
});
