// The image the release workflow publishes is the one the topology deploys by default (issue 12:
// the default relayImage named a registry path the workflow did not push to).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "@jest/globals";
import { parse } from "yaml";
import { DEFAULT_RELAY_IMAGE } from "../../topology/model.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

test("the release workflow pushes ghcr.io/<owner>/relay, and the default relayImage is that path at the package version", () => {
  const wf = parse(readFileSync(path.join(ROOT, ".github/workflows/release.yml"), "utf8")) as {
    jobs: { image: { steps: { id?: string; with?: { images?: string } }[] } };
  };
  const images = wf.jobs.image.steps.find((s) => s.id === "meta")?.with?.images;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: GitHub Actions' own expression, not a JS template
  expect(images).toBe("ghcr.io/${{ github.repository_owner }}/relay");
  const version = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string })
    .version;
  // The repository's own organization is cross-cloud-relay.
  expect(DEFAULT_RELAY_IMAGE).toBe(`ghcr.io/cross-cloud-relay/relay:${version}`);
});
