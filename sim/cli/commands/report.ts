// Goal: `payfleet report <run-dir>` and `payfleet compare <A> <B>`: rebuild a run's report.html, or put two runs
// side by side, with sim/report/write.ts.
// Method: declare the flags, call writeReport / writeComparison; a run directory that cannot be read is bad input
// (exit 2, the file named). Exit 0 means the page was written, whatever the run's verdict (`payfleet run` is the
// gate).

import { defineFlags, UsageError } from '../args.ts';
import { defineCommand, EXIT_OK, InputError } from '../command.ts';

/** Runs `body`, turning a run directory that cannot be read into bad input. */
async function readingRuns(body: (write: typeof import('../../report/write.ts')) => number): Promise<number> {
  const write = await import('../../report/write.ts');
  const { ReportInputError } = await import('../../report/errors.ts');
  try {
    return body(write);
  } catch (error) {
    if (error instanceof ReportInputError) throw new InputError(error.message);
    throw error;
  }
}

export const reportCommand = defineCommand({
  summary: 'rebuild report.html of a run directory',
  usage: 'payfleet report <run-dir>',
  description: 'Rebuilds <run-dir>/report.html from its summary.json and timeseries.csv. Exit 0: written (whatever the run found); 2: bad input.',
  flags: defineFlags({}),
  positionals: true,
  async run({ positionals }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one run directory, got ${positionals.length}`);
    return readingRuns((write) => {
      const { out, verdict } = write.writeReportWithVerdict(positionals[0]!);
      io.out(`wrote ${out} (run verdict: ${verdict})`);
      return EXIT_OK;
    });
  },
});

export const compareCommand = defineCommand({
  summary: 'put two runs side by side',
  usage: 'payfleet compare <run-dir-A> <run-dir-B> [--out FILE]',
  description: 'Puts two runs side by side (A before, B after): verdicts, scenario differences, key figures with deltas, charts overlaid. Exit 0: written; 2: bad input.',
  flags: defineFlags({ out: { kind: 'string', placeholder: 'FILE', help: 'the HTML file to write', defaultText: "<B's parent>/compare-<A>-vs-<B>.html" } }),
  positionals: true,
  async run({ positionals, flags }, io) {
    if (positionals.length !== 2) throw new UsageError(`expected two run directories, got ${positionals.length}`);
    const [dirA, dirB] = positionals as [string, string];
    return readingRuns((write) => {
      io.out(`wrote ${write.writeComparison(dirA, dirB, flags.out ?? write.defaultComparisonFile(dirA, dirB))}`);
      return EXIT_OK;
    });
  },
});
