#!/usr/bin/env node
// `relay`: the project's single CLI (package bin and container entrypoint). Each command lives in
// its own module under ./commands and registers itself on the program.
//
// Only the process guards are imported statically: they handle a SIGTERM and a broken stdout or
// stderr from the first moment, while commander and the command modules are still loading.
import { commandStarted, installProcessGuards } from "./process-guards.js";

installProcessGuards();

const { Command, CommanderError } = await import("commander");
const { registerCommands } = await import("./commands/index.js");
const { CodedError } = await import("../../contract/errors.js");
const { RELAY_VERSION } = await import("../relay/version.js");

/** Exit codes (docs/RUNTIME.md): 0 done, 1 failed while running or starting, 2 usage or configuration. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const program = new Command("relay")
  .description("cross-cloud-relay runtime: GossipRouter, relay nodes and tools")
  .version(RELAY_VERSION, "-V, --version", "print the version and exit")
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) })
  .hook("preAction", () => commandStarted());

registerCommands(program);
for (const c of program.commands) c.exitOverride();

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // commander has printed the message (and the help) already; --help and --version end here too.
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  // A configuration mistake (exit 2), or a start-up failure such as a port in use (exit 1): one
  // clear line, no stack trace.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`relay: ${message}\n`);
  const usage = err instanceof CodedError && err.code === "BAD_OPTION";
  process.exit(usage ? EXIT_USAGE : EXIT_FAILED);
});
