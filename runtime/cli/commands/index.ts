import type { Command } from "commander";

/** Adds every `relay` sub-command to the program. One module per command, one line here each. */
export function registerCommands(program: Command): void {
  void program;
}
