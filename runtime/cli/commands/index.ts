import type { Command } from "commander";
import { registerDumpCommand } from "./dump.js";
import { registerRouterCommand } from "./router.js";

/** Adds every `relay` sub-command to the program. One module per command, one line here each. */
export function registerCommands(program: Command): void {
  registerRouterCommand(program);
  registerDumpCommand(program);
}
