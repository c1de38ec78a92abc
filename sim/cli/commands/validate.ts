// Goal: `payfleet validate <scenario.yaml>...`: check scenario files without running them.
// Method: load each with sim/scenario/load.ts; the first bad one is a ScenarioError (every problem with file,
// line and field), which the CLI prints with exit status 2.

import { defineFlags, UsageError } from '../args.ts';
import { defineCommand, EXIT_OK } from '../command.ts';
import { loadScenario } from '../../scenario/load.ts';

export const validateCommand = defineCommand({
  summary: 'check scenario files without running them',
  usage: 'payfleet validate <scenario.yaml>...',
  description: 'Checks scenario files without running them; prints every problem with file, line and field.',
  flags: defineFlags({}),
  positionals: true,
  async run({ positionals }, io) {
    if (positionals.length === 0) throw new UsageError('expected at least one scenario file');
    for (const file of positionals) {
      const scenario = loadScenario(file);
      io.out(`${file}: ok (${scenario.name}: ${scenario.population.terminals} terminals, ${scenario.durationMs} ms, seed ${scenario.seed})`);
    }
    return EXIT_OK;
  },
});
