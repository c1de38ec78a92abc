// Goal: show that the property suites have teeth — plant each known bug of catalog.ts, one at a time, and
// check that the suites meant to catch it fail. Prints a table mutant → caught / survived and exits non-zero
// when any mutant survived (or when the suites fail even without a mutant, which would prove nothing).
// Method: copy the working tree (without node_modules, .git and run output) to a temporary directory, link
// node_modules, patch one file there, run vitest on the mutant's suites with the JSON reporter, and count the
// mutant caught only when at least one test failed an assertion (a mutant that merely breaks the import would
// prove nothing either). The checkout itself is never written; every temporary copy is removed at the end.
//
// Usage: node --import tsx properties/mutants/run.ts [--quick] [--seed N] [mutant-id …]
//   --quick   fewer runs per property (FC_RUNS_FACTOR=0.5)
//   --seed N  FC_SEED for every suite (default: a fresh random seed per run, printed)

import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mutants, type Mutant } from './catalog.ts';
import { applyMutant } from './patch.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SKIP = new Set(['node_modules', '.git', 'runs', 'dist', '.clinic']);

interface SuiteRun {
  ok: boolean;
  failedTests: string[];
  /** Suites that could not even load (syntax error, import error). */
  brokenSuites: string[];
  wallMs: number;
  output: string;
}

function copyTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'payfleet-mutant-'));
  cpSync(ROOT, dir, {
    recursive: true,
    filter: (src) => {
      const rel = relative(ROOT, src);
      return rel === '' || !SKIP.has(rel.split('/')[0]!);
    },
  });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

function runSuites(dir: string, suites: string[], env: Record<string, string>): SuiteRun {
  const report = join(dir, 'vitest-report.json');
  const started = performance.now();
  const child = spawnSync(join(dir, 'node_modules', '.bin', 'vitest'), ['run', ...suites, '--reporter=json', `--outputFile=${report}`], {
    cwd: dir,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = Math.round(performance.now() - started);
  const output = `${child.stdout ?? ''}${child.stderr ?? ''}`;
  if (!existsSync(report)) return { ok: false, failedTests: [], brokenSuites: suites, wallMs, output };
  const json = JSON.parse(readFileSync(report, 'utf8')) as {
    testResults: Array<{ name: string; status: string; message?: string; assertionResults: Array<{ fullName: string; status: string }> }>;
  };
  const failedTests: string[] = [];
  const brokenSuites: string[] = [];
  for (const file of json.testResults) {
    const failed = file.assertionResults.filter((a) => a.status === 'failed');
    failedTests.push(...failed.map((a) => `${relative(dir, file.name)} › ${a.fullName}`));
    if (file.status === 'failed' && file.assertionResults.length === 0) brokenSuites.push(relative(dir, file.name));
  }
  return { ok: child.status === 0, failedTests, brokenSuites, wallMs, output };
}

function parseArgs(argv: string[]): { quick: boolean; seed: string | undefined; only: string[] } {
  let quick = false;
  let seed: string | undefined;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--seed') seed = argv[++i];
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else only.push(arg);
  }
  return { quick, seed, only };
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function main(): number {
  const { quick, seed, only } = parseArgs(process.argv.slice(2));
  const chosen: Mutant[] = only.length === 0 ? mutants : mutants.filter((m) => only.includes(m.id));
  const unknown = only.filter((id) => !mutants.some((m) => m.id === id));
  if (unknown.length > 0) {
    console.error(`unknown mutant(s): ${unknown.join(', ')}; known: ${mutants.map((m) => m.id).join(', ')}`);
    return 2;
  }
  const fcSeed = seed ?? String(randomInt(1, 2 ** 31 - 1));
  const env: Record<string, string> = { FC_SEED: fcSeed, ...(quick ? { FC_RUNS_FACTOR: '0.5' } : {}) };
  console.log(`mutation check: ${chosen.length} mutant(s), FC_SEED=${fcSeed}${quick ? ', quick' : ''}`);

  const dirs: string[] = [];
  try {
    // Patches must apply to today's sources before anything runs.
    for (const mutant of chosen) applyMutant(mutant, readFileSync(join(ROOT, mutant.file), 'utf8'));

    const baselineDir = copyTree();
    dirs.push(baselineDir);
    const allSuites = [...new Set(chosen.flatMap((m) => m.suites))];
    const baseline = runSuites(baselineDir, allSuites, env);
    console.log(`baseline (no mutant): ${baseline.ok ? 'passes' : 'FAILS'} in ${(baseline.wallMs / 1000).toFixed(1)} s`);
    if (!baseline.ok) {
      console.error(baseline.output.slice(-4_000));
      console.error('the suites fail without any mutant, so a failure with one proves nothing');
      return 2;
    }

    const rows: Array<{ mutant: Mutant; caught: boolean; by: string[]; note: string; wallMs: number }> = [];
    for (const mutant of chosen) {
      const dir = copyTree();
      dirs.push(dir);
      const path = join(dir, mutant.file);
      writeFileSync(path, applyMutant(mutant, readFileSync(path, 'utf8')));
      const run = runSuites(dir, mutant.suites, env);
      const caught = run.failedTests.length > 0;
      const note = run.brokenSuites.length > 0 ? `suite did not load: ${run.brokenSuites.join(', ')}` : '';
      rows.push({ mutant, caught, by: run.failedTests, note, wallMs: run.wallMs });
      console.log(`  ${caught ? 'caught  ' : 'SURVIVED'} ${mutant.id} (${(run.wallMs / 1000).toFixed(1)} s)`);
      if (!caught) console.log(run.output.slice(-2_000));
      rmSync(dir, { recursive: true, force: true });
      dirs.pop();
    }

    const idWidth = Math.max(6, ...rows.map((r) => r.mutant.id.length));
    console.log('');
    console.log(`${pad('mutant', idWidth)}  result    caught by`);
    console.log(`${'-'.repeat(idWidth)}  --------  ---------`);
    for (const row of rows) {
      const files = [...new Set(row.by.map((test) => test.split(' › ')[0]!.replace(/^properties\//, '')))];
      const by = row.caught ? `${row.by.length} test(s) in ${files.join(', ')}` : row.note || '—';
      console.log(`${pad(row.mutant.id, idWidth)}  ${row.caught ? 'caught  ' : 'SURVIVED'}  ${by}`);
    }
    const survived = rows.filter((r) => !r.caught);
    console.log('');
    console.log(`${rows.length - survived.length}/${rows.length} mutants caught (FC_SEED=${fcSeed})`);
    return survived.length === 0 ? 0 : 1;
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = main();
