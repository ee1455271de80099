/**
 * A bench's command line. `--help` prints the usage and exits 0; an option the bench does not know, or
 * one missing its value, is one line on stderr and exit 2. Before this, each bench read its options
 * with indexOf and ignored the rest, so `--help` or a typo ran the whole bench (minutes, and
 * namespaces another run may have been using).
 */
export interface BenchArgs {
  /** The value of `--name VALUE`, or `dflt` when absent. */
  opt(name: string, dflt: string): string;
  /** The value of `--name VALUE` split on spaces (e.g. Node flags for the processes a bench starts); [] when absent. */
  words(name: string): string[];
  /** Whether the switch `--name` was given. */
  flag(name: string): boolean;
  /** What follows a lone `--`, passed through untouched. */
  rest: string[];
}

export function benchArgs(tool: string, usage: string, values: readonly string[], flags: readonly string[] = []): BenchArgs {
  const argv = process.argv.slice(2);
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const given = new Map<string, string>();
  const switches = new Set<string>();
  const fail = (why: string): never => {
    process.stderr.write(`${tool}: ${why} (--help lists the options)\n`);
    process.exit(2);
  };
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: ${usage}\n`);
      process.exit(0);
    }
    const name = a.startsWith('--') ? a.slice(2) : '';
    if (flags.includes(name)) switches.add(name);
    else if (values.includes(name)) {
      const v = own[++i];
      if (v === undefined) fail(`${a} needs a value`);
      given.set(name, v!);
    } else fail(`unknown argument ${JSON.stringify(a)}`);
  }
  return {
    opt: (name, dflt) => given.get(name) ?? dflt,
    words: (name) => (given.get(name) ?? '').split(' ').filter((w) => w !== ''),
    flag: (name) => switches.has(name),
    rest: dashdash >= 0 ? argv.slice(dashdash + 1) : [],
  };
}
