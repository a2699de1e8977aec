#!/usr/bin/env node
// `relay`: the project's single CLI (package bin and container entrypoint). Each command lives in
// its own module under ./commands and registers itself on the program.
//
// Only the process guards are imported statically: they handle a SIGTERM and a broken stdout or
// stderr from the first moment, while commander and the command modules are still loading.
import { commandStarted, installProcessGuards } from "./process-guards.js";

installProcessGuards();

const { Command } = await import("commander");
const { registerCommands } = await import("./commands/index.js");

const program = new Command("relay")
  .description("cross-cloud-relay runtime: GossipRouter, relay nodes and tools")
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) })
  .hook("preAction", () => commandStarted());

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // A usage or configuration mistake, or a start-up failure such as a port in use: one clear
  // line, non-zero exit, no stack trace.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`relay: ${message}\n`);
  process.exit(2);
});
