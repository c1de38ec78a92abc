// Goal: the quick version of the mutation check, inside `npm test`: every mutant's patch still applies to
// today's sources, and the suites catch the six bugs issue 5 names.
// Method: the patches are checked in memory; the six mutants then run through mutation.ts at half the usual
// numRuns, each against the one suite meant to catch it, without a baseline (the rest of `npm test` runs the
// same suites unmutated). The full check, with a baseline, every mutant and every suite, is
// `npm run properties:mutants`.

import { describe, expect, it } from 'vitest';
import { mutants, REQUIRED } from './catalog.ts';
import { applyMutant } from './patch.ts';
import { checkPatchesApply, formatTable, runMutationCheck, ROOT } from './mutation.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

describe('mutation check', () => {
  it('has a patch that applies exactly once to today’s source for every mutant', () => {
    expect(() => checkPatchesApply(mutants)).not.toThrow();
    for (const mutant of mutants) {
      const source = readFileSync(join(ROOT, mutant.file), 'utf8');
      expect(applyMutant(mutant, source)).not.toBe(source);
    }
    expect(new Set(mutants.map((m) => m.id)).size).toBe(mutants.length);
    for (const id of REQUIRED) expect(mutants.some((m) => m.id === id), id).toBe(true);
  });

  it('refuses a patch that no longer matches, instead of testing nothing', () => {
    const mutant = mutants[0]!;
    expect(() => applyMutant(mutant, '// nothing to patch here')).toThrow(/no longer applies/);
    const twice = `${mutant.replacements[0]!.from}\n${mutant.replacements[0]!.from}`;
    expect(() => applyMutant({ ...mutant, replacements: [mutant.replacements[0]!] }, twice)).toThrow(/found 2 times/);
  });

  it('catches each of the six bugs the issue names (quick runs)', () => {
    const chosen = mutants.filter((m) => REQUIRED.includes(m.id));
    const lines: string[] = [];
    const report = runMutationCheck(chosen, { env: { FC_RUNS_FACTOR: '0.5' }, baseline: false, firstSuiteOnly: true, log: (line) => lines.push(line) });
    const survived = report.results.filter((r) => !r.caught);
    expect(survived.map((r) => r.mutant.id), `\n${formatTable(report.results)}\n${survived.map((r) => r.output.slice(-1_500)).join('\n')}`).toEqual([]);
  }, 300_000);
});
