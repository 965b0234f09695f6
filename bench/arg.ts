// The benchmarks' flags: `--name value`, else the default.

/** The value after `--name` on the command line, or `def` when the flag is absent. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
