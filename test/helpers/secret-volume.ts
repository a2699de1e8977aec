// A directory laid out and updated like a Kubernetes Secret volume (the kubelet's atomic writer):
// the files live in a timestamped directory `..<stamp>`, `..data` is a symlink to it, and each
// visible name (`tls.crt`) is a symlink to `..data/tls.crt`. An update writes a new timestamped
// directory, points a temporary symlink at it, renames that over `..data` (one atomic step) and
// then deletes the old directory, so a reader sees the old set or the new set, never a mix.
import { mkdir, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";

export class SecretVolume {
  #n = 0;

  constructor(readonly dir: string) {}

  /** The path a pod would be given for `name` (e.g. `tls.crt`). */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Publishes a new version holding exactly `files` (name -> content). */
  async write(files: Readonly<Record<string, string | Buffer>>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const stamp = `..${new Date().toISOString().replace(/[-:.]/g, "_")}_${++this.#n}`;
    await mkdir(path.join(this.dir, stamp));
    for (const [name, content] of Object.entries(files)) {
      await writeFile(path.join(this.dir, stamp, name), content);
    }
    const data = path.join(this.dir, "..data");
    const old = await readlink(data).catch(() => null);
    const tmp = path.join(this.dir, "..data_tmp");
    await rm(tmp, { force: true });
    await symlink(stamp, tmp);
    await rename(tmp, data);
    for (const name of Object.keys(files)) {
      await symlink(path.join("..data", name), this.file(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "EEXIST") throw err;
      });
    }
    if (old !== null) await rm(path.join(this.dir, old), { recursive: true, force: true });
  }
}
