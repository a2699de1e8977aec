// Preloaded (`node --import`) into the processes `relay local` starts. Their stdin is a pipe from
// `relay local`; when that process dies, even by kill -9, the pipe closes and this turns it into
// a SIGTERM of our own, so the command's graceful stop runs and nothing is left behind.
export const EXIT_WITH_PARENT_ENV = "RELAY_EXIT_WITH_PARENT";

if (process.env[EXIT_WITH_PARENT_ENV] === "1") {
  const bye = () => process.kill(process.pid, "SIGTERM");
  process.stdin.on("data", () => {});
  process.stdin.once("end", bye);
  process.stdin.once("error", bye);
  // Watching stdin must not by itself keep the process alive.
  (process.stdin as { unref?: () => void }).unref?.();
}
