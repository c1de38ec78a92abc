// Goal: `npm run bench:city` (main.ts runs it) — the city-scale figures of the virtual mode as a user meets them:
// a whole `payfleet run` of city-day at Node's default heap (no NODE_OPTIONS), its wall time, its peak RSS and its verdict,
// printed beside the targets; with `--days 1,7` the same fleet for one day and for seven, to show whether memory
// grows with the work or only with the fleet.
// Method: each run is a child `node bin/payfleet.mjs run scenarios/city-day.yaml --quiet` with NODE_OPTIONS removed,
// so nothing raises the heap limit; a preloaded module (rusageAtExit.mjs) prints the kernel's peak RSS and V8's heap
// limit as the child exits. Wall time is read here, in the benchmark, and nowhere in the runs. Targets are printed,
// never asserted: a run that misses one still exits 0 here, and the exit status says only whether every run
// measured ended OK (0), a run failed (1), or a flag was bad (2).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineFlags, formatHelp, parseArgs, UsageError } from '../../../sim/cli/args.ts';
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATION } from '../../../sim/run/exitStatus.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin/payfleet.mjs');
const RUSAGE = new URL('./rusageAtExit.mjs', import.meta.url).href;
const SCENARIO = join(ROOT, 'scenarios/city-day.yaml');
const GIB = 1024 ** 3;

const FLAGS = defineFlags({
  terminals: { kind: 'int', min: 1, help: 'terminals in the fleet', defaultText: "city-day's 100,000" },
  days: { kind: 'string', placeholder: 'D[,D…]', help: 'the run lengths in days, e.g. 1,7 to compare a day with a week', defaultText: '1' },
  seed: { kind: 'int', help: 'as `payfleet run --seed`', defaultText: "the scenario's" },
  out: { kind: 'string', placeholder: 'DIR', help: "where the runs' directories go", defaultText: 'a temporary directory, removed after' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});
const USAGE = 'npm run bench:city -- [--terminals N] [--days 1[,7]] [--seed N] [--out DIR]';
const DESCRIPTION = "Runs city-day at Node's default heap and prints wall time and peak RSS beside the targets (≤ 100 s and ≤ 2 GiB for 100,000 terminals; ≤ 900 s and ≤ 8 GiB for 1,000,000; a week within 10 % of a day's peak).";

export interface CityRunFigures {
  readonly terminals: number;
  readonly days: number;
  readonly exitCode: number | null;
  readonly wallMs: number;
  readonly maxRssBytes: number;
  readonly heapLimitBytes: number;
  readonly verdict: string;
  readonly tail: string;
}

/** One `payfleet run` child at the default heap, measured. */
export function runCity(terminals: number | undefined, days: number, seed: number | undefined, outDir: string): Promise<CityRunFigures> {
  const args = ['--import', RUSAGE, BIN, 'run', SCENARIO, '--quiet', '--out', outDir, '--duration', `${days * 24}h`];
  if (terminals !== undefined) args.push('--terminals', String(terminals));
  if (seed !== undefined) args.push('--seed', String(seed));
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      const rusage = /PAYFLEET_RUSAGE (\{.*\})/.exec(output);
      const measured = rusage ? (JSON.parse(rusage[1]!) as { maxRssKiB: number; heapLimitBytes: number }) : { maxRssKiB: 0, heapLimitBytes: 0 };
      // The run's own verdict line: "<VERDICT>  <scenario> seed=… mode=…  simulated …".
      const verdict = /^(\S+)  \S+ seed=\d+ mode=/m.exec(output)?.[1] ?? 'no verdict printed';
      const tail = output.replace(/\n?PAYFLEET_RUSAGE .*\n?/, '\n').trim().split('\n').slice(-12).join('\n');
      resolve({ terminals: terminals ?? 100_000, days, exitCode: code, wallMs, maxRssBytes: measured.maxRssKiB * 1024, heapLimitBytes: measured.heapLimitBytes, verdict, tail });
    });
  });
}

/** The targets of issue 15 for a fleet of this size, or undefined where it sets none. */
function targetOf(terminals: number): { wallS: number; rssGiB: number } | undefined {
  if (terminals === 1_000_000) return { wallS: 900, rssGiB: 8 };
  if (terminals === 100_000) return { wallS: 100, rssGiB: 2 };
  return undefined;
}

function describeRun(run: CityRunFigures): string {
  const target = targetOf(run.terminals);
  const wall = `${(run.wallMs / 1000).toFixed(1)} s wall${target && run.days === 1 ? ` (target ≤ ${target.wallS} s)` : ''}`;
  const rss = `${(run.maxRssBytes / GIB).toFixed(2)} GiB peak RSS${target && run.days === 1 ? ` (target ≤ ${target.rssGiB} GiB)` : ''}`;
  return `${run.terminals.toLocaleString('en-US')} terminals × ${run.days} d: ${wall}, ${rss}, heap limit ${(run.heapLimitBytes / GIB).toFixed(2)} GiB, exit ${run.exitCode} (${run.verdict})`;
}

export async function main(argv: readonly string[], print: (line: string) => void = console.log): Promise<number> {
  let options;
  try {
    const { flags, positionals } = parseArgs(argv, FLAGS);
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    if (flags.help === true) {
      print(formatHelp(USAGE, DESCRIPTION, FLAGS));
      return EXIT_OK;
    }
    const days = String(flags.days ?? '1').split(',').map((text) => {
      const value = Number(text);
      if (!Number.isInteger(value) || value < 1 || value > 30) throw new UsageError(`--days: '${text}' is not a whole number of days from 1 to 30`);
      return value;
    });
    options = { terminals: flags.terminals as number | undefined, days, seed: flags.seed as number | undefined, out: flags.out as string | undefined };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    print(`bench:city: ${error.message}\nusage: ${USAGE}   (--help for the options)`);
    return EXIT_BAD_INPUT;
  }
  const root = options.out ?? mkdtempSync(join(tmpdir(), 'payfleet-bench-city-'));
  mkdirSync(root, { recursive: true });
  print(`payfleet bench:city — node ${process.version}, city-day at Node's default heap (NODE_OPTIONS removed), one run at a time`);
  const runs: CityRunFigures[] = [];
  try {
    for (const days of options.days) {
      const run = await runCity(options.terminals, days, options.seed, join(root, `city-${options.terminals ?? 100_000}-${days}d`));
      runs.push(run);
      print(`run    ${describeRun(run)}`);
      if (run.exitCode !== 0) print(run.tail.replace(/^/gm, '       '));
    }
  } finally {
    if (options.out === undefined) rmSync(root, { recursive: true, force: true });
  }
  if (runs.length > 1) {
    const first = runs[0]!;
    for (const run of runs.slice(1)) {
      const growth = run.maxRssBytes / first.maxRssBytes - 1;
      print(`memory ${run.days} d against ${first.days} d: peak RSS ${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(0)} % (target: a week within +10 % of a day)`);
    }
  }
  return runs.every((run) => run.exitCode === 0) ? EXIT_OK : EXIT_VIOLATION;
}
