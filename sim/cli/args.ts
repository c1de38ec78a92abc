// Goal: parse a command's flags with errors a person can act on ("--seed: expected an integer ≥ 0, got 'x'").
// Method: a tiny declarative parser: each command lists its flags with a kind; unknown flags, missing values
// and bad values throw `UsageError`, which the CLI prints with the command's help and exit status 2.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagKind = 'string' | 'int' | 'number' | 'boolean' | 'duration';

export interface FlagSpec {
  kind: FlagKind;
  help: string;
  /** Shown in help; the parser applies no default itself (commands do). */
  defaultText?: string;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | number | boolean>;
}

export function parseArgs(argv: readonly string[], specs: Record<string, FlagSpec>, parseDurationMs: (text: string) => number | undefined): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, string | number | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const [rawName, inlineValue] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = specs[rawName];
    if (!spec) {
      const known = Object.keys(specs).map((n) => `--${n}`).join(', ');
      throw new UsageError(`unknown flag --${rawName} (known: ${known || 'none'})`);
    }
    if (spec.kind === 'boolean') {
      flags[rawName] = inlineValue === undefined ? true : inlineValue !== 'false';
      continue;
    }
    const value = inlineValue ?? argv[++i];
    if (value === undefined || (inlineValue === undefined && value.startsWith('--'))) throw new UsageError(`--${rawName}: expected a value`);
    flags[rawName] = convert(rawName, spec.kind, value, parseDurationMs);
  }
  return { positionals, flags };
}

function convert(name: string, kind: FlagKind, value: string, parseDurationMs: (text: string) => number | undefined): string | number {
  switch (kind) {
    case 'string':
      return value;
    case 'int': {
      const n = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`--${name}: expected an integer ≥ 0, got '${value}'`);
      return n;
    }
    case 'number': {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${name}: expected a positive number, got '${value}'`);
      return n;
    }
    case 'duration': {
      const ms = parseDurationMs(value);
      if (ms === undefined) throw new UsageError(`--${name}: expected a duration such as 90s, 40m, 24h or 1d, got '${value}'`);
      return ms;
    }
    case 'boolean':
      return value;
  }
}

export function formatHelp(usage: string, description: string, specs: Record<string, FlagSpec>): string {
  const lines = [`usage: ${usage}`, '', description, ''];
  const width = Math.max(0, ...Object.keys(specs).map((n) => n.length + 2));
  for (const [name, spec] of Object.entries(specs)) {
    const placeholder = spec.kind === 'boolean' ? '' : ` <${spec.kind === 'int' ? 'n' : spec.kind}>`;
    lines.push(`  --${name}${placeholder}`.padEnd(width + 14) + spec.help + (spec.defaultText ? ` (default ${spec.defaultText})` : ''));
  }
  return lines.join('\n');
}
