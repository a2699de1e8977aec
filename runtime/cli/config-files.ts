// The files a relay node's environment names (TLS material, the cluster secret, the router token)
// are read at start-up, before the node joins its site: a path that cannot be read is a
// configuration mistake named by its variable (exit 2), not a failure seconds later when the node
// first becomes site master and dials a router.
import { accessSync, constants, statSync } from "node:fs";
import { ConfigError } from "../../contract/errors.js";
import { RELAY_ENV, type RelayNodeConfig } from "../../contract/relay-env.js";

/** Throws a ConfigError naming the first variable whose file is missing, unreadable or not a file. */
export function checkConfigFiles(config: RelayNodeConfig): void {
  const files: [string, string | undefined][] = [
    [RELAY_ENV.tlsCert, config.tls?.cert],
    [RELAY_ENV.tlsKey, config.tls?.key],
    [RELAY_ENV.tlsCa, config.tls?.ca],
    [RELAY_ENV.clusterSecretFile, config.clusterSecretFile],
    [RELAY_ENV.routerTokenFile, config.routerTokenFile],
    [RELAY_ENV.kvTokenFile, config.kv?.tokenFile],
  ];
  for (const [name, file] of files) {
    if (file === undefined) continue;
    try {
      if (!statSync(file).isFile()) throw new Error("not a regular file");
      accessSync(file, constants.R_OK);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ConfigError(`${name}: cannot read "${file.slice(0, 200)}" (${why})`);
    }
  }
}
