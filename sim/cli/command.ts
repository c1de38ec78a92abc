// Goal: what every `payfleet` command is made of, so that each command file only declares its flags and help and
// calls the plain, options-taking function that does the work (in broker/, sim/sd/, sim/http/, sim/run/…).
// Method: `defineCommand` takes the usage, description and flag table (a `--help`/`-h` flag is added), parses argv
// with the one parser (args.ts), prints the help when asked, refuses positionals the command does not take, and
// hands the typed values to the command's body with the command's io. The io carries the output, the
// environment (the broker secret's source, PAYFLEET_BROKER_SECRET) and, for commands that serve until stopped,
// the signal that stops them: SIGINT or SIGTERM by default (`withStopSignal`), an AbortSignal in tests.

import { formatHelp, parseArgs, UsageError, type FlagSpec, type FlagValues } from './args.ts';

import { EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_OK, EXIT_THRESHOLD, EXIT_VIOLATION } from '../run/exitStatus.ts';

export { EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_OK, EXIT_THRESHOLD, EXIT_VIOLATION };

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: Record<string, string | undefined>;
  /** Stops a serving command when aborted (its reason, a string, is printed); by default SIGINT and SIGTERM do. */
  signal?: AbortSignal;
}

export const consoleIo: CliIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  // Read on each use: a caller may replace process.env.
  get env() {
    return process.env;
  },
};

/** Bad input that is not a flag (a file, a registry, a ledger that belongs elsewhere): exit 2, without the help hint. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

export interface Command {
  summary: string;
  run(argv: string[], io?: CliIo): Promise<number>;
}

export interface CommandDefinition<F extends Record<string, FlagSpec>> {
  summary: string;
  usage: string;
  description: string;
  flags: F;
  /** Printed after the flags in the help. */
  footer?: string;
  /** Whether the command takes positional arguments (it checks how many itself); default false. */
  positionals?: boolean;
  run(args: { positionals: string[]; flags: FlagValues<F> }, io: CliIo): Promise<number>;
}

const HELP_FLAG = { help: { kind: 'boolean', short: 'h', help: 'show this help' } } as const satisfies Record<string, FlagSpec>;

/** A command from its flags, help and body; see the header. */
export function defineCommand<const F extends Record<string, FlagSpec>>(definition: CommandDefinition<F>): Command & { help(): string } {
  const specs = { ...definition.flags, ...HELP_FLAG };
  const help = () => formatHelp(definition.usage, definition.description, specs, definition.footer);
  return {
    summary: definition.summary,
    help,
    async run(argv, io = consoleIo) {
      const { positionals, flags } = parseArgs(argv, specs);
      // The help flag is added to every table; TypeScript cannot see it through the generic table's mapped type.
      if ((flags as { help?: boolean }).help) {
        io.out(help());
        return EXIT_OK;
      }
      if (!definition.positionals && positionals.length > 0) {
        throw new UsageError(`unexpected argument '${positionals[0]}' (this command takes only flags)`);
      }
      return definition.run({ positionals, flags: flags as FlagValues<F> }, io);
    },
  };
}

/** How often a child of a payfleet process checks that its parent is still there (see withStopSignal). */
const PARENT_CHECK_EVERY_MS = 1_000;

/**
 * Runs `body` with the io's stop signal, or one that SIGINT or SIGTERM aborts (with the signal's name) until it
 * ends. A process started by another payfleet process (sim/mqtt/processes.ts sets PAYFLEET_PARENT_PID) is also
 * stopped when that parent is gone (SIGKILLed: its exit hook never ran), instead of serving on as an orphan:
 * its parent pid then changes (it is adopted by init or a subreaper).
 */
export async function withStopSignal<T>(io: CliIo, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (io.signal) return body(io.signal);
  const controller = new AbortController();
  const onInt = () => controller.abort('SIGINT');
  const onTerm = () => controller.abort('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  const parentPid = Number(io.env.PAYFLEET_PARENT_PID);
  // Only the process the variable was set for watches: a grandchild that inherited it has another parent.
  const parentWatch = Number.isInteger(parentPid) && parentPid > 0 && process.ppid === parentPid ? setInterval(() => process.ppid !== parentPid && controller.abort('parent gone'), PARENT_CHECK_EVERY_MS) : undefined;
  parentWatch?.unref();
  try {
    return await body(controller.signal);
  } finally {
    clearInterval(parentWatch);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** Resolves when `signal` is aborted, with why: its reason when a string ('SIGTERM'), else 'abort'. */
export function stopped(signal: AbortSignal): Promise<string> {
  const why = () => (typeof signal.reason === 'string' ? signal.reason : 'abort');
  if (signal.aborted) return Promise.resolve(why());
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(why()), { once: true }));
}

/**
 * For a script that is not a `payfleet` command (the benches of load/, the mutation check of properties/): parses
 * its flags with the one parser, or prints the help (exit 0 for --help) or the usage error naming the flag (exit 2)
 * and exits. Positionals are refused unless `takesPositionals`. The table must have a `help` flag.
 */
export function parseScriptArgs<const F extends Record<string, FlagSpec>>(
  script: string,
  usage: string,
  description: string,
  flags: F,
  argv: readonly string[],
  takesPositionals = false,
) {
  let parsed;
  try {
    parsed = parseArgs(argv, flags);
    if (!takesPositionals && parsed.positionals.length > 0) throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${script}: ${error.message}\nusage: ${usage}   (--help for the options)`);
    process.exit(EXIT_BAD_INPUT);
  }
  if ((parsed.flags as { help?: boolean }).help === true) {
    console.log(formatHelp(usage, description, flags));
    process.exit(EXIT_OK);
  }
  return parsed;
}
