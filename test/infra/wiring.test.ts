// Every site's TUNNEL_INITIAL_HOSTS must resolve, through remote-state outputs, to every router's
// LoadBalancer address with the gossip port, in topology order; for the seed, for a 3-site
// topology with an existing cluster, and with S3/GCS backends.

import { parseInitialHosts } from "../../contract/initial-hosts.js";
import { defaultTopology, parseTopology, type Topology } from "../../topology/index.js";
import {
  containerEnv,
  expressionsIn,
  findNamed,
  inlineLocals,
  remoteStateProducer,
  resourcesOf,
  structuralProblems,
  synthTopology,
  type TfJson,
} from "./synth.js";

interface ResolvedRouter {
  readonly stack: string;
  readonly host: string;
  readonly port: number;
}

/**
 * Follows each `${data.terraform_remote_state.X.outputs.Y}` of a site's TUNNEL_INITIAL_HOSTS into
 * the producing stack, inlines its locals, and checks it ends at that stack's LoadBalancer Service.
 */
function resolveInitialHosts(
  stacks: Record<string, TfJson>,
  siteStack: string,
  site: string,
): ResolvedRouter[] {
  const stack = stacks[siteStack]!;
  const dep = findNamed(stack, "kubernetes_deployment_v1", `${site}-relay`);
  const value: string = containerEnv(dep).get("TUNNEL_INITIAL_HOSTS")!["value"];
  const exprs = expressionsIn(value);
  // Nothing but the references and the commas between them.
  expect(value).toBe(exprs.map((e) => `\${${e}}`).join(","));
  return exprs.map((expr) => {
    const m = /^data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)$/.exec(expr);
    if (!m)
      throw new Error(`${siteStack}: TUNNEL_INITIAL_HOSTS entry \${${expr}} is not a remote-state output`);
    const producer = remoteStateProducer(stack, m[1]!)!;
    const producerStack = stacks[producer]!;
    const output = producerStack["output"][m[2]!];
    const inlined = inlineLocals(producerStack, output["value"]);
    const em =
      /^\$\{coalesce\((kubernetes_service_v1\.[\w-]+)\.status\[0\]\.load_balancer\[0\]\.ingress\[0\]\.hostname, \1\.status\[0\]\.load_balancer\[0\]\.ingress\[0\]\.ip\)\}\[(\d+)\]$/.exec(
        inlined,
      );
    if (!em) throw new Error(`${producer}: endpoint ${inlined} is not coalesce(hostname, ip)[port]`);
    const svcId = em[1]!.split(".")[1]!;
    const svc = producerStack["resource"]["kubernetes_service_v1"][svcId];
    expect(svc["spec"]["type"]).toBe("LoadBalancer");
    expect(svc["spec"]["port"].map((p: TfJson) => p["port"])).toEqual([Number(em[2])]);
    // The runtime's parser accepts the shape once the address is filled in.
    expect(parseInitialHosts(`lb.example.com[${em[2]}]`)).toEqual([
      { host: "lb.example.com", port: Number(em[2]) },
    ]);
    return { stack: producer, host: svc["metadata"]["name"], port: Number(em[2]) };
  });
}

function expectWiring(topology: Topology): Record<string, TfJson> {
  const { stacks } = synthTopology(topology);
  const names = topology.sites.map((s) => s.name);
  for (const site of names) {
    const routers = resolveInitialHosts(stacks, `${site}-site`, site);
    expect(routers).toEqual(names.map((n) => ({ stack: `${n}-router`, host: `${n}-router`, port: 12001 })));
  }
  for (const name of Object.keys(stacks)) expect(structuralProblems(name, stacks)).toEqual([]);
  return stacks;
}

test("seed: both sites reach both routers' LoadBalancers, nyc first", () => {
  expectWiring(defaultTopology());
});

const threeSites = parseTopology({
  sites: [
    { name: "nyc", cloud: "eks", region: "us-east-1", relayReplicas: 5 },
    { name: "sfc", cloud: "gke", location: "us-west1-a", relayReplicas: 3 },
    {
      name: "lab",
      cloud: "existing",
      kubeconfig: { path: "~/.kube/config", context: "lab-admin" },
      egressCidrs: ["198.51.100.7/32"],
      relayReplicas: 2,
    },
  ],
});

test("3 sites with an existing cluster: same wiring, no cluster stack for the existing one", () => {
  const stacks = expectWiring(threeSites);
  expect(Object.keys(stacks).sort()).toEqual([
    "lab-router",
    "lab-site",
    "nyc-cluster",
    "nyc-router",
    "nyc-site",
    "pki",
    "sfc-cluster",
    "sfc-router",
    "sfc-site",
  ]);
  for (const name of ["lab-router", "lab-site"]) {
    expect(stacks[name]!["provider"]["kubernetes"][0]).toEqual({
      config_path: "~/.kube/config",
      config_context: "lab-admin",
    });
  }
  expect(stacks["lab-router"]!["output"]["kubeconfig_command"]["value"]).toContain("use-context lab-admin");
  // No NLB annotations outside EKS.
  const svc = findNamed(stacks["lab-router"]!, "kubernetes_service_v1", "lab-router");
  expect(svc["metadata"]["annotations"] ?? {}).toEqual({});
  expect(findNamed(stacks["lab-site"]!, "kubernetes_deployment_v1", "lab-relay")["spec"]["replicas"]).toBe(
    "2",
  );
});

test("S3 backend: one key per stack, and remote state reads the producer's key", () => {
  const topology = parseTopology({
    backend: {
      kind: "s3",
      bucket: "relay-state",
      region: "us-east-1",
      keyPrefix: "prod",
      dynamodbTable: "locks",
    },
  });
  const stacks = expectWiring(topology);
  for (const [name, s] of Object.entries(stacks)) {
    expect(s["terraform"]["backend"]["s3"]).toMatchObject({
      bucket: "relay-state",
      key: `prod/${name}.tfstate`,
      encrypt: true,
    });
  }
  const rs = stacks["nyc-site"]!["data"]["terraform_remote_state"];
  const keys = Object.values<TfJson>(rs)
    .map((r) => r["config"]["key"])
    .sort();
  expect(keys).toEqual([
    "prod/nyc-cluster.tfstate",
    "prod/nyc-router.tfstate",
    "prod/pki.tfstate",
    "prod/sfc-router.tfstate",
  ]);
});

test("GCS backend: one prefix per stack", () => {
  const stacks = expectWiring(
    parseTopology({ backend: { kind: "gcs", bucket: "relay-state", prefix: "prod" } }),
  );
  expect(stacks["sfc-router"]!["terraform"]["backend"]["gcs"]).toEqual({
    bucket: "relay-state",
    prefix: "prod/sfc-router",
  });
});

test("TLS off, routerAuth open: no pki or tokens stack, no TLS flags, no policy, env without TLS_*", () => {
  const stacks = expectWiring(parseTopology({ tls: false, routerAuth: "open" }));
  expect(stacks["pki"]).toBeUndefined();
  expect(stacks["tokens"]).toBeUndefined();
  const router = findNamed(stacks["nyc-router"]!, "kubernetes_deployment_v1", "nyc-router");
  expect(router["spec"]["template"]["spec"]["container"][0]["args"]).toEqual([
    "router",
    "--port",
    "12001",
    "--http-port",
    "9000",
  ]);
  const env = containerEnv(findNamed(stacks["sfc-site"]!, "kubernetes_deployment_v1", "sfc-relay"));
  expect([...env.keys()].filter((k) => k.startsWith("TLS_") || k === "ROUTER_TOKEN_FILE")).toEqual([]);
  // Only the mesh secret: the cluster port stays authenticated in every mode.
  expect(
    resourcesOf(stacks["sfc-site"]!, "kubernetes_secret_v1").map(([, r]) => r["metadata"]["name"]),
  ).toEqual(["sfc-relay-mesh"]);
});

test("the structural check catches a dangling reference and a missing provider", () => {
  const broken: Record<string, TfJson> = {
    a: {
      terraform: { required_providers: {} },
      resource: {
        kubernetes_service_v1: { svc: { metadata: { name: `\${kubernetes_deployment_v1.gone.id}` } } },
      },
      data: { terraform_remote_state: { rs: { config: { path: "../../../terraform.b.tfstate" } } } },
      output: { x: { value: `\${data.terraform_remote_state.rs.outputs.missing}` } },
    },
    b: { output: {} },
  };
  const problems = structuralProblems("a", broken);
  expect(problems).toEqual(
    expect.arrayContaining([
      expect.stringContaining("kubernetes_deployment_v1.gone, which is not declared"),
      expect.stringContaining("b has no output missing"),
      expect.stringContaining("no kubernetes provider is configured"),
      expect.stringContaining("kubernetes is not in required_providers"),
    ]),
  );
});

test("4 sites, two of them EKS in different regions: every site reaches all four routers", () => {
  const stacks = expectWiring(
    parseTopology({
      sites: [
        { name: "nyc", cloud: "eks", region: "us-east-1" },
        {
          name: "dub",
          cloud: "eks",
          region: "eu-west-1",
          nodeGroup: { instanceType: "t3.medium", desired: 3 },
        },
        { name: "sfc", cloud: "gke", location: "us-west1" },
        {
          name: "lab",
          cloud: "existing",
          kubeconfig: { path: "/etc/kube/lab.yaml" },
          egressCidrs: ["203.0.113.0/28"],
        },
      ],
    }),
  );
  expect(stacks["dub-cluster"]!["provider"]["aws"][0]["region"]).toBe("eu-west-1");
  const ng = Object.values<TfJson>(stacks["dub-cluster"]!["resource"]["aws_eks_node_group"])[0]!;
  expect(ng).toMatchObject({ node_group_name: "dub-nodegroup", instance_types: ["t3.medium"] });
  expect(ng["scaling_config"]).toEqual({ desired_size: 3, min_size: 1, max_size: 4 });
  expect(stacks["dub-router"]!["provider"]["kubernetes"][0]["exec"][0]["args"]).toContain("eu-west-1");
  expect(stacks["lab-site"]!["provider"]["kubernetes"][0]).toEqual({ config_path: "/etc/kube/lab.yaml" });
});

test("a namespace other than default is created by each router stack and used by reference", () => {
  const stacks = expectWiring(parseTopology({ namespace: "relay" }));
  for (const site of ["nyc", "sfc"]) {
    const router = stacks[`${site}-router`]!;
    expect(resourcesOf(router, "kubernetes_namespace_v1").map(([, r]) => r["metadata"]["name"])).toEqual([
      "relay",
    ]);
    for (const type of ["kubernetes_deployment_v1", "kubernetes_service_v1", "kubernetes_secret_v1"]) {
      for (const [, r] of resourcesOf(router, type)) {
        expect(r["metadata"]["namespace"]).toMatch(
          /^\$\{kubernetes_namespace_v1\.\w+\.metadata\[0\]\.name\}$/,
        );
      }
    }
    const dep = findNamed(stacks[`${site}-site`]!, "kubernetes_deployment_v1", `${site}-relay`);
    expect(dep["metadata"]["namespace"]).toBe("relay");
    expect(containerEnv(dep).get("DNS_QUERY")!["value"]).toBe(`${site}-relay.relay.svc.cluster.local`);
  }
  expect(resourcesOf(expectWiring(defaultTopology())["nyc-router"]!, "kubernetes_namespace_v1")).toEqual([]);
});
