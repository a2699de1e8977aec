// CDKTF entry point (`cdktf synth`, `npx tsx app/main.ts`): reads the topology (RELAY_TOPOLOGY,
// cdktf context `topology`, or the seed) and adds one stack per cluster, router and site.

import { App } from "cdktf";
import { ValidationError } from "../constructs/validation-error.js";
import { buildRelayStacks } from "../stacks/relay-app.js";
import { resolveTopology, TOPOLOGY_CONTEXT_KEY, TopologyError } from "../topology/index.js";

const app = new App();
try {
  const topology = resolveTopology(process.env, app.node.tryGetContext(TOPOLOGY_CONTEXT_KEY));
  buildRelayStacks(app, topology);
} catch (err) {
  // A bad document, or props a construct refuses (a programmatic topology): one message, exit 1.
  if (err instanceof TopologyError || err instanceof ValidationError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
app.synth();
