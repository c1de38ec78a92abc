// Goal: the one argv parser of payfleet: every command, and every bench in load/, declares its flags here and
// gets errors a person can act on ("--seed: expected an integer ≥ 0, got 'x'"), each naming the flag.
// Method: a tiny declarative parser. A command lists its flags with a kind (and, as it needs, a short letter,
// the values allowed, an integer range, a parser of its text, "required", "may repeat"); `parseArgs` reads `--flag value`,
// `--flag=value`, `-h`, and `--` (everything after it is a positional). A value that begins with '-' must be
// given inline (`--secret=-x`): given apart it would be taken for a forgotten value. Unknown flags, missing or
// malformed values, and then missing required flags throw `UsageError`, which the CLI prints with exit status 2. The
// values come back typed from the declaration (`defineFlags` keeps its literal types), so no command casts.

import { parseDuration } from '../scenario/durations.ts';

/** Bad input on the command line: the CLI prints it, points to `--help`, and exits 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The flag at fault, when one is (without its dashes). */
    readonly flag?: string,
  ) {
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
  /** A one-letter alias, given as `-x`. */
  short?: string;
  /** For a string flag: the only values it takes. */
  oneOf?: readonly string[];
  /** For an int flag: the range it takes (default 0 and no upper bound). */
  min?: number;
  max?: number;
  /** The command cannot run without it. */
  required?: boolean;
  /** May be given more than once; its values come back as an array in the order given. */
  multiple?: boolean;
  /** The placeholder in help (default from the kind: <n>, <string>, <duration>…). */
  placeholder?: string;
  /** For a string flag: turns its text into the value, throwing UsageError (naming the flag) when it cannot. */
  parse?: (text: string) => unknown;
}

type KindValue<K> = K extends 'boolean' ? boolean : K extends 'string' ? string : number;
type ScalarOf<S extends FlagSpec> = S extends { parse: (text: string) => infer R }
  ? R
  : S extends { oneOf: readonly (infer C extends string)[] }
    ? C
    : KindValue<S['kind']>;
type ValueOf<S extends FlagSpec> = S extends { multiple: true } ? ScalarOf<S>[] : ScalarOf<S>;

type RequiredKeys<F extends Record<string, FlagSpec>> = { [N in keyof F]: F[N] extends { required: true } ? N : never }[keyof F];

/** The parsed values of a flag table: a required flag is always there (unless --help was given), others may be absent. */
export type FlagValues<F extends Record<string, FlagSpec>> = { -readonly [N in Exclude<keyof F, RequiredKeys<F>>]?: ValueOf<F[N]> } & {
  -readonly [N in RequiredKeys<F>]: ValueOf<F[N]>;
};

export interface ParsedArgs<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  positionals: string[];
  flags: FlagValues<F>;
}

/** Declares a flag table, keeping the literal kinds and choices so that the parsed values are typed. */
export function defineFlags<const F extends Record<string, FlagSpec>>(flags: F): F {
  return flags;
}

/** One element of a command line: a flag with the tokens it took (`--out`, `DIR`), or a positional. */
export type ArgToken = { kind: 'flag'; name: string; tokens: string[]; value: string | undefined } | { kind: 'positional'; value: string };

/** Splits argv into flags (with their values) and positionals, by the flag table; throws UsageError for unknown flags. */
export function tokenize(argv: readonly string[], specs: Record<string, FlagSpec>): ArgToken[] {
  const shorts = new Map(Object.entries(specs).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])));
  const out: ArgToken[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      for (const rest of argv.slice(i + 1)) out.push({ kind: 'positional', value: rest });
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      out.push({ kind: 'positional', value: arg });
      continue;
    }
    const long = arg.startsWith('--');
    const [rawName, inlineValue] = (long ? arg.slice(2) : arg.slice(1)).split(/=(.*)/s, 2) as [string, string | undefined];
    const name = long ? rawName : shorts.get(rawName);
    const spec = name === undefined ? undefined : specs[name];
    if (name === undefined || !spec) {
      const known = Object.entries(specs).map(([n, s]) => (s.short ? `-${s.short}/--${n}` : `--${n}`)).join(', ');
      throw new UsageError(`unknown flag ${long ? '--' : '-'}${rawName} (known: ${known || 'none'})`, rawName);
    }
    if (spec.kind === 'boolean' || inlineValue !== undefined) {
      out.push({ kind: 'flag', name, tokens: [arg], value: inlineValue });
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new UsageError(`--${name}: expected a value`, name);
    if (value.startsWith('-') && value !== '-') {
      throw new UsageError(`--${name}: expected a value, got the flag-like '${value}' (a value that begins with '-' is given as --${name}=${value})`, name);
    }
    i++;
    out.push({ kind: 'flag', name, tokens: [arg, value], value });
  }
  return out;
}

/** Parses `argv` by the flag table; throws UsageError naming the flag at fault. */
export function parseArgs<const F extends Record<string, FlagSpec>>(argv: readonly string[], specs: F): ParsedArgs<F> {
  const positionals: string[] = [];
  const flags: Record<string, unknown> = {};
  for (const token of tokenize(argv, specs)) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    const spec = specs[token.name]!;
    const value = convert(token.name, spec, token.value);
    if (spec.multiple) flags[token.name] = [...((flags[token.name] as unknown[] | undefined) ?? []), value];
    else flags[token.name] = value;
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.required && flags[name] === undefined && !flags.help) throw new UsageError(`--${name}: required`, name);
  }
  return { positionals, flags: flags as FlagValues<F> };
}

function convert(name: string, spec: FlagSpec, value: string | undefined): unknown {
  if (spec.kind === 'boolean') {
    if (value === undefined || value === 'true') return true;
    if (value === 'false') return false;
    throw new UsageError(`--${name}: a switch takes no value (or =true, =false), got '${value}'`, name);
  }
  // Only an inline value can be missing here; tokenize refused a separate one that is missing.
  if (value === undefined || value === '') throw new UsageError(`--${name}: expected a value, got ''`, name);
  switch (spec.kind) {
    case 'string':
      if (spec.oneOf && !spec.oneOf.includes(value)) throw new UsageError(`--${name}: expected ${orList(spec.oneOf)}, got '${value}'`, name);
      return spec.parse ? spec.parse(value) : value;
    case 'int': {
      const n = Number(value);
      const min = spec.min ?? 0;
      const inRange = /^\d+$/.test(value) && Number.isSafeInteger(n) && n >= min && (spec.max === undefined || n <= spec.max);
      if (!inRange) throw new UsageError(`--${name}: expected an integer ${spec.max === undefined ? `≥ ${min}` : `from ${min} to ${spec.max}`}, got '${value}'`, name);
      return n;
    }
    case 'number': {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${name}: expected a positive number, got '${value}'`, name);
      return n;
    }
    case 'duration': {
      const parsed = parseDuration(value);
      if (!parsed.ok) throw new UsageError(`--${name}: expected a duration such as 90s, 40m, 24h or 1d, got '${value}'`, name);
      return parsed.ms;
    }
  }
}

function orList(values: readonly string[]): string {
  return values.length <= 1 ? (values[0] ?? 'nothing') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

function placeholderOf(spec: FlagSpec): string {
  if (spec.kind === 'boolean') return '';
  if (spec.placeholder) return ` ${spec.placeholder}`;
  if (spec.oneOf) return ` ${spec.oneOf.join('|')}`;
  return ` <${spec.kind === 'int' ? 'n' : spec.kind}>`;
}

/** The help of a command: its usage line, what it does, and one line per flag (with its default, or "required"). */
export function formatHelp(usage: string, description: string, specs: Record<string, FlagSpec>, footer?: string): string {
  const lines = [`usage: ${usage}`, '', description, ''];
  const heads = Object.entries(specs).map(([name, spec]) => `  ${spec.short ? `-${spec.short}, ` : ''}--${name}${placeholderOf(spec)}`);
  const width = Math.max(0, ...heads.map((h) => h.length)) + 2;
  Object.values(specs).forEach((spec, i) => {
    const notes = [spec.required ? 'required' : undefined, spec.defaultText ? `default ${spec.defaultText}` : undefined, spec.multiple ? 'may repeat' : undefined].filter(Boolean);
    lines.push(heads[i]!.padEnd(width) + spec.help + (notes.length > 0 ? ` (${notes.join('; ')})` : ''));
  });
  if (footer) lines.push('', footer);
  return lines.join('\n');
}
