#!/usr/bin/env node
// `relay`: the project's single CLI (package bin and container entrypoint). Each command lives in
// its own module under ./commands and registers itself on the program.
import { Command } from "commander";
import { registerCommands } from "./commands/index.js";

const program = new Command("relay")
  .description("cross-cloud-relay runtime: GossipRouter, relay nodes and tools")
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // A usage or configuration mistake: one clear line, non-zero exit, no stack trace.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`relay: ${message}\n`);
  process.exit(2);
});
