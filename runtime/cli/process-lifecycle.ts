// Process-level plumbing shared by the long-running commands (node, chat, local).

/** Calls `stop` once on SIGTERM, SIGINT or SIGHUP. */
export function onStopSignal(stop: (signal: string) => void): void {
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.once(sig, () => stop(sig));
}
