// Goal: `npm run properties:mutants` — show that the property suites have teeth: plant each known bug of
// catalog.ts, one at a time, check that the suites meant to catch it fail, print a table mutant → caught /
// survived, and exit non-zero when any mutant survived (or when the suites fail even without a mutant, which
// would prove nothing).
// Method: mutation.ts does the work in temporary copies of the tree; this file reads the command line (with the
// CLI's one parser, sim/cli/args.ts: a bad flag is exit status 2 naming it), picks a
// seed (printed, so a surprising result can be re-run), and reports.
//
// Usage: node --import tsx properties/mutants/run.ts [--quick] [--seed N] [mutant-id …]
//   --quick   fewer runs per property (FC_RUNS_FACTOR=0.5)
//   --seed N  FC_SEED for every suite (default: a fresh random seed, printed)
// Exit status: 0 every mutant caught, 1 a mutant survived, 2 bad usage or the suites fail without a mutant.

import { randomInt } from 'node:crypto';
import { mutants, type Mutant } from './catalog.ts';
import { formatTable, runMutationCheck } from './mutation.ts';
import { defineFlags } from '../../sim/cli/args.ts';
import { parseScriptArgs } from '../../sim/cli/command.ts';

const FLAGS = defineFlags({
  quick: { kind: 'boolean', help: 'fewer runs per property (FC_RUNS_FACTOR=0.5)' },
  seed: { kind: 'int', help: 'FC_SEED for every suite', defaultText: 'a fresh random seed, printed' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});

function main(): number {
  const { flags, positionals: only } = parseScriptArgs(
    'properties:mutants',
    'node --import tsx properties/mutants/run.ts [--quick] [--seed N] [mutant-id …]',
    'Plants each known bug of catalog.ts in turn and checks that the property suites meant to catch it fail.',
    FLAGS,
    process.argv.slice(2),
    true,
  );
  const quick = flags.quick === true;
  const seed = flags.seed === undefined ? undefined : String(flags.seed);
  const unknown = only.filter((id) => !mutants.some((m) => m.id === id));
  if (unknown.length > 0) {
    console.error(`unknown mutant(s): ${unknown.join(', ')}; known: ${mutants.map((m) => m.id).join(', ')}`);
    return 2;
  }
  const chosen: Mutant[] = only.length === 0 ? mutants : mutants.filter((m) => only.includes(m.id));
  const fcSeed = seed ?? String(randomInt(1, 2 ** 31 - 1));
  const env: Record<string, string> = { FC_SEED: fcSeed, ...(quick ? { FC_RUNS_FACTOR: '0.5' } : {}) };
  console.log(`mutation check: ${chosen.length} mutant(s), FC_SEED=${fcSeed}${quick ? ', quick' : ''}`);

  const report = runMutationCheck(chosen, { env, baseline: true, log: (line) => console.log(line) });
  if (report.baseline && !report.baseline.ok) {
    console.error(report.baseline.output.slice(-4_000));
    console.error('the suites fail without any mutant, so a failure with one proves nothing');
    return 2;
  }
  for (const r of report.results) if (!r.caught) console.log(`\n--- ${r.mutant.id} survived; the suites said:\n${r.output.slice(-2_000)}`);
  console.log('');
  console.log(formatTable(report.results));
  const survived = report.results.filter((r) => !r.caught);
  console.log('');
  console.log(`${report.results.length - survived.length}/${report.results.length} mutants caught (replay with --seed ${fcSeed})`);
  return survived.length === 0 ? 0 : 1;
}

process.exitCode = main();
