import { EksCluster } from "@cdktf/provider-aws/lib/eks-cluster/index.js";
import { App, TerraformStack, Testing } from "cdktf";

test("harness", () => {
  const app = Testing.app();
  const s = new TerraformStack(app, "x");
  expect(typeof EksCluster).toBe("function");
  expect(s).toBeDefined();
  expect(App).toBeDefined();
});
