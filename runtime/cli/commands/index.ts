import type { Command } from "commander";
import { registerChatCommand } from "./chat.js";
import { registerDumpCommand } from "./dump.js";
import { registerKvCommand } from "./kv.js";
import { registerLocalCommand } from "./local.js";
import { registerNodeCommand } from "./node.js";
import { registerProbeCommand } from "./probe.js";
import { registerRouterCommand } from "./router.js";

/** Adds every `relay` sub-command to the program. One module per command, one line here each. */
export function registerCommands(program: Command): void {
  registerRouterCommand(program);
  registerDumpCommand(program);
  registerNodeCommand(program);
  registerChatCommand(program);
  registerProbeCommand(program);
  registerLocalCommand(program);
  registerKvCommand(program);
}
