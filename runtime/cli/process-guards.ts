// Process-wide guards of the `relay` CLI. relay.ts installs them before any command module loads
// (commander, pino and the runtime take a good part of a second to load, and in a container
// Node runs as PID 1, where a signal without a handler is silently ignored):
//
// - A stop signal (SIGTERM, SIGINT, SIGHUP) that arrives before the command installed its own
//   graceful stop ends the process at once: exit 0 while no command runs yet (a pod deleted while
//   its container is still loading has nothing to clean up), 128 + the signal number for a
//   running command without a stop of its own (`relay dump`), like the default action would.
//   Once the command handles the signal, repeated signals are left to its own bounded stop.
// - A broken stdout or stderr (the reader went away: `relay dump | head`, a killed parent) never
//   crashes or blocks the process: the error is absorbed and Node drops later writes. When stdout
//   breaks, a command with a graceful stop is asked to stop: nobody can see its output any more.
// - Started by npm (`npx relay ...`, `npm exec`, `npm run`): npm runs us under `sh -c`, and a
//   SIGTERM to npm kills that shell but not us, which left `npx relay router` running as an
//   orphan. When our parent changes (we were re-parented), we stop as if we had been sent SIGTERM.
//   Only under npm: `nohup relay router &` from a shell that exits must keep running.
// This module must stay free of imports so that relay.ts can load it before everything else.

const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
type StopSignal = (typeof STOP_SIGNALS)[number];
const SIGNAL_NUMBER: Record<StopSignal, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

let commandRunning = false;
let commandStops = false;
let installed = false;

/** A listener registered after ours belongs to the command, which then stops gracefully by itself. */
function commandHandles(signal: StopSignal): boolean {
  return process.listenerCount(signal) > 1;
}

function onStopSignal(signal: StopSignal): void {
  if (commandHandles(signal)) {
    commandStops = true;
    return;
  }
  if (commandStops) return; // a repeated signal while the command's stop runs
  process.exit(commandRunning ? 128 + SIGNAL_NUMBER[signal] : 0);
}

function absorbErrors(stream: NodeJS.WriteStream, onBroken: () => void): void {
  let broken = false;
  stream.on("error", () => {
    if (broken) return;
    broken = true;
    onBroken();
  });
}

/** How often a process started by npm checks that its parent is still the one that started it. */
const PARENT_CHECK_MS = 1_000;

function stopWhenOrphaned(): void {
  if (process.env["npm_command"] === undefined) return; // not started through npm
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, "SIGTERM");
  }, PARENT_CHECK_MS);
  timer.unref();
}

/** Installs the signal handlers, the stdout/stderr error handlers and the orphan check. Idempotent. */
export function installProcessGuards(): void {
  if (installed) return;
  installed = true;
  stopWhenOrphaned();
  for (const signal of STOP_SIGNALS) process.on(signal, onStopSignal);
  absorbErrors(process.stdout, () => {
    if (commandHandles("SIGTERM")) process.kill(process.pid, "SIGTERM");
  });
  absorbErrors(process.stderr, () => {});
}

/** Called right before a command's action runs: from now on a stop signal it does not handle exits 128+n. */
export function commandStarted(): void {
  commandRunning = true;
}
