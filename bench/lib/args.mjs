// Numeric `--name value` options of the bench scripts. A value that is not a number stops the
// script with a message instead of running a benchmark on NaN.
/** A `--name value` option as text (e.g. a list or a directory), or `dflt` when absent. */
export function stringOption(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

export function numberOption(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value)) {
    console.error(`--${name} needs a number, got ${JSON.stringify(process.argv[i + 1])}`);
    process.exit(2);
  }
  return value;
}
