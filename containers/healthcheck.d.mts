/** The port the health check probes for this environment and main-process arguments. */
export function choosePort(env: Record<string, string | undefined>, args: readonly string[]): number;
