// `terraform validate` for real, where it can run offline: this machine type has terraform and a
// local mirror holding one AWS provider build (5.100.0, not the pinned 6.25.0), so the EKS cluster
// stack, the largest one, is validated against that schema with the version pin relaxed. The
// kubernetes/google/tls stacks need the Terraform registry; the CI workflow validates them all.
// Skipped (and named so) where terraform or the mirror is missing.

import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { defaultTopology } from "../../topology/index.js";
import { synthTopology } from "./synth.js";

const run = promisify(execFile);
const MIRROR = "/opt/tf-plugins";
const AWS_VERSION = "5.100.0";
const hasMirror = existsSync(join(MIRROR, "registry.terraform.io/hashicorp/aws", AWS_VERSION));
const terraform = ["/usr/local/bin/terraform", "/usr/bin/terraform"].find((p) => existsSync(p));
const canValidate = hasMirror && terraform !== undefined;

(canValidate ? test : test.skip)(
  `nyc-cluster passes terraform validate against the local aws ${AWS_VERSION} schema${canValidate ? "" : " (skipped: no terraform or no local provider mirror)"}`,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "relay-tf-validate-"));
    try {
      const stack = synthTopology(defaultTopology()).stacks["nyc-cluster"]!;
      stack["terraform"]["required_providers"]["aws"]["version"] = AWS_VERSION;
      delete stack["terraform"]["backend"];
      writeFileSync(join(dir, "cdk.tf.json"), JSON.stringify(stack));
      const rc = join(dir, "cli.tfrc");
      writeFileSync(
        rc,
        `provider_installation {\n  filesystem_mirror {\n    path = "${MIRROR}"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n`,
      );
      const env = { ...process.env, TF_CLI_CONFIG_FILE: rc, TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1" };
      await run(terraform!, ["init", "-backend=false", "-input=false", "-no-color"], {
        cwd: dir,
        env,
        timeout: 60_000,
      });
      const { stdout } = await run(terraform!, ["validate", "-json", "-no-color"], {
        cwd: dir,
        env,
        timeout: 60_000,
      }).catch((e: { stdout: string }) => e);
      const result = JSON.parse(stdout) as {
        valid: boolean;
        diagnostics: { summary: string; detail?: string }[];
      };
      expect(result.diagnostics.map((d) => `${d.summary}: ${d.detail ?? ""}`)).toEqual([]);
      expect(result.valid).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  90_000,
);
