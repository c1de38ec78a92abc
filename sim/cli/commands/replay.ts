// Goal: `payfleet replay <run-dir>`: re-run a recorded virtual run with the same scenario and seed and confirm its
// trace hash, so a violation found once can be found again (and a fix shown to remove it).
// Method: read the run's summary.json (every way it can be wrong is bad input, exit 2), run the recorded scenario
// with sim/run/runVirtual.ts, compare the hashes: exit 0 same hash and every invariant held, 1 otherwise.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineFlags, UsageError } from '../args.ts';
import { defineCommand, EXIT_OK, EXIT_VIOLATION } from '../command.ts';
import type { Scenario } from '../../scenario/types.ts';
import type { RunSummary } from '../../run/summary.ts';

export const replayCommand = defineCommand({
  summary: 're-run a recorded virtual run and confirm its trace hash',
  usage: 'payfleet replay <run-dir>',
  description: 'Re-runs a recorded virtual run with the same scenario and seed and confirms its trace hash.',
  flags: defineFlags({ quiet: { kind: 'boolean', help: 'no progress line' } }),
  positionals: true,
  async run({ positionals, flags }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one run directory, got ${positionals.length}`);
    const dir = positionals[0]!;
    const summaryPath = join(dir, 'summary.json');
    if (!existsSync(summaryPath)) throw new UsageError(`${summaryPath}: no such file (is ${dir} a run directory?)`);
    let recorded: RunSummary;
    try {
      recorded = JSON.parse(readFileSync(summaryPath, 'utf8')) as RunSummary;
    } catch (error) {
      throw new UsageError(`${summaryPath}: not valid JSON (${(error as Error).message})`);
    }
    if (recorded.mode !== 'virtual') throw new UsageError(`${summaryPath}: mode is ${recorded.mode}; only virtual runs replay exactly`);
    if (!recorded.scenario || typeof recorded.traceHash !== 'string') throw new UsageError(`${summaryPath}: missing scenario or traceHash`);
    const { file: _file, ...scenario } = recorded.scenario;
    void _file;
    io.out(`payfleet replay ${dir}: scenario ${scenario.name}, seed ${scenario.seed}, recorded trace ${recorded.traceHash}`);
    const { runVirtual } = await import('../../run/runVirtual.ts');
    const { ProgressLine } = await import('../../run/progress.ts');
    const progress = new ProgressLine(process.stderr, !flags.quiet);
    const result = runVirtual(scenario as Scenario, { file: recorded.scenario.file, onProgress: (p) => progress.update(p) });
    progress.done();
    const same = result.summary.traceHash === recorded.traceHash;
    io.out(`  trace ${result.summary.traceHash} ${same ? 'matches' : `DIFFERS from ${recorded.traceHash}`}; verdict ${result.summary.ok ? 'OK' : 'VIOLATION'}`);
    if (!same) return EXIT_VIOLATION;
    return result.summary.ok ? EXIT_OK : EXIT_VIOLATION;
  },
});
