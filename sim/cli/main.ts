// Goal: the `payfleet` command: find the command named first on the command line and run it; turn bad input into
// a message and exit status 2, never a stack trace.
// Method: one table of the built-in commands (each declared in sim/cli/commands/, flags and help included), then
// those registered from above sim/ (load/commands.ts, imported by bin/payfleet.mjs). Exit statuses: 0 every
// invariant held, 1 a violation or liveness failure, 2 bad input (a bad flag, a bad scenario file: nothing is run
// and nothing is written), 3 the environment failed (an mqtt run's endpoint never connected, no safety violation),
// 99 a threshold failed.

import { ScenarioError } from '../scenario/load.ts';
import { UsageError } from './args.ts';
import { consoleIo, EXIT_BAD_INPUT, EXIT_OK, InputError, type CliIo, type Command } from './command.ts';
import { registeredCommands } from './registry.ts';
import { agentCommand } from './commands/agent.ts';
import { brokerCommand } from './commands/broker.ts';
import { brokerConfigCommand } from './commands/brokerConfig.ts';
import { httpCommand } from './commands/http.ts';
import { compareCommand, reportCommand } from './commands/report.ts';
import { replayCommand } from './commands/replay.ts';
import { runCommand } from './commands/run.ts';
import { serverCommand } from './commands/server.ts';
import { validateCommand } from './commands/validate.ts';

const commands: Record<string, Command> = {
  run: runCommand,
  replay: replayCommand,
  validate: validateCommand,
  report: reportCommand,
  compare: compareCommand,
  broker: brokerCommand,
  'broker-config': brokerConfigCommand,
  server: serverCommand,
  http: httpCommand,
  agent: agentCommand,
};

/** The built-in commands, then those registered from above sim/ (bin/payfleet.mjs imports load/commands.ts). */
function allCommands(): Record<string, Command> {
  return { ...commands, ...Object.fromEntries(registeredCommands()) };
}

function mainHelp(): string {
  const all = allCommands();
  const width = Math.max(...Object.keys(all).map((c) => c.length));
  return [
    'usage: payfleet <command> [options]   (payfleet <command> --help for its options)',
    '',
    ...Object.entries(all).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Exit status: 0 every invariant held; 1 a violation or a backlog that did not drain; 2 bad input; 3 the environment failed, not the system (an mqtt run whose endpoints could not all connect); 99 a threshold failed.',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo = consoleIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === 'help' || name === '-h') {
    io.out(mainHelp());
    return name ? EXIT_OK : EXIT_BAD_INPUT;
  }
  const command = allCommands()[name];
  if (!command) {
    io.err(`payfleet: unknown command '${name}'\n\n${mainHelp()}`);
    return EXIT_BAD_INPUT;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`payfleet ${name}: ${error.message}`);
      io.err(`Run \`payfleet ${name} --help\` for the options.`);
      return EXIT_BAD_INPUT;
    }
    if (error instanceof InputError) {
      io.err(`payfleet ${name}: ${error.message}`);
      return EXIT_BAD_INPUT;
    }
    if (error instanceof ScenarioError) {
      io.err(`payfleet ${name}: the scenario is not valid; nothing was run:\n${error.message}`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
}
