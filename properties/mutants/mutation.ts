// Goal: the mutation check as a library — plant each known bug in a copy of the tree, run the suites meant to
// catch it, and say whether they did — used by the CLI (run.ts) and by the quick check inside `npm test`.
// Method: copy the working tree (without node_modules, .git and run output) to a temporary directory, link
// node_modules, patch one file there, and run vitest on the mutant's suites with the JSON reporter. A mutant
// counts as caught only when at least one test failed an assertion: a patch that merely stops a suite from
// loading proves nothing. The checkout is never written, and every temporary copy is removed before returning.

import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Mutant } from './catalog.ts';
import { applyMutant } from './patch.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
const SKIP = new Set(['node_modules', '.git', 'runs', 'dist', '.clinic']);

export interface SuiteRun {
  ok: boolean;
  failedTests: string[];
  /** Suites that could not even load (syntax error, import error). */
  brokenSuites: string[];
  wallMs: number;
  output: string;
}

export interface MutantResult {
  mutant: Mutant;
  caught: boolean;
  /** `file › test name` of every test that failed. */
  caughtBy: string[];
  note: string;
  wallMs: number;
  output: string;
}

export interface MutationOptions {
  /** Environment for the suites (FC_SEED, FC_RUNS_FACTOR…). */
  env: Record<string, string>;
  /** Run the suites once without any mutant first, and stop if they fail. */
  baseline: boolean;
  /** Run only each mutant's first suite (the one meant to catch it), for the quick check. */
  firstSuiteOnly?: boolean;
  log: (line: string) => void;
}

export interface MutationReport {
  baseline?: SuiteRun;
  results: MutantResult[];
}

/** Throws a PatchError for the first mutant whose patch no longer applies to today's sources. */
export function checkPatchesApply(chosen: readonly Mutant[]): void {
  for (const mutant of chosen) applyMutant(mutant, readFileSync(join(ROOT, mutant.file), 'utf8'));
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

function runSuites(dir: string, suites: readonly string[], env: Record<string, string>): SuiteRun {
  const report = join(dir, 'vitest-report.json');
  const started = performance.now();
  const child = spawnSync(process.execPath, [join(dir, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...suites, '--reporter=json', `--outputFile=${report}`], {
    cwd: dir,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = Math.round(performance.now() - started);
  const output = `${child.stdout ?? ''}${child.stderr ?? ''}`;
  if (!existsSync(report)) return { ok: false, failedTests: [], brokenSuites: [...suites], wallMs, output };
  const json = JSON.parse(readFileSync(report, 'utf8')) as {
    testResults: Array<{ name: string; status: string; assertionResults: Array<{ fullName: string; status: string }> }>;
  };
  const failedTests: string[] = [];
  const brokenSuites: string[] = [];
  for (const file of json.testResults) {
    const failed = file.assertionResults.filter((a) => a.status === 'failed');
    failedTests.push(...failed.map((a) => `${relative(dir, file.name)} › ${a.fullName}`));
    if (file.status === 'failed' && file.assertionResults.length === 0) brokenSuites.push(relative(dir, file.name));
  }
  // Every suite named must exist and have run: a renamed suite would otherwise let a mutant "survive" unnoticed.
  const ran = new Set(json.testResults.map((f) => relative(dir, f.name)));
  for (const suite of suites) if (!ran.has(suite)) brokenSuites.push(`${suite} (not found)`);
  return { ok: child.status === 0 && brokenSuites.length === 0, failedTests, brokenSuites, wallMs, output };
}

/** Runs the baseline (if asked) and then each mutant, one at a time, each in its own copy of the tree. */
export function runMutationCheck(chosen: readonly Mutant[], options: MutationOptions): MutationReport {
  checkPatchesApply(chosen);
  const suitesOf = (mutant: Mutant) => (options.firstSuiteOnly ? mutant.suites.slice(0, 1) : mutant.suites);
  const dirs: string[] = [];
  try {
    let baseline: SuiteRun | undefined;
    if (options.baseline) {
      const dir = copyTree();
      dirs.push(dir);
      baseline = runSuites(dir, [...new Set(chosen.flatMap(suitesOf))], options.env);
      options.log(`baseline (no mutant): ${baseline.ok ? 'passes' : 'FAILS'} in ${(baseline.wallMs / 1000).toFixed(1)} s`);
      if (!baseline.ok) return { baseline, results: [] };
    }
    const results: MutantResult[] = [];
    for (const mutant of chosen) {
      const dir = copyTree();
      dirs.push(dir);
      const path = join(dir, mutant.file);
      writeFileSync(path, applyMutant(mutant, readFileSync(path, 'utf8')));
      const run = runSuites(dir, suitesOf(mutant), options.env);
      const caught = run.failedTests.length > 0;
      const note = run.brokenSuites.length > 0 ? `suite did not run: ${run.brokenSuites.join(', ')}` : '';
      results.push({ mutant, caught, caughtBy: run.failedTests, note, wallMs: run.wallMs, output: run.output });
      options.log(`  ${caught ? 'caught  ' : 'SURVIVED'} ${mutant.id} (${(run.wallMs / 1000).toFixed(1)} s)`);
      rmSync(dir, { recursive: true, force: true });
    }
    return { baseline, results };
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** The table mutant → caught / survived, and by which suites. */
export function formatTable(results: readonly MutantResult[]): string {
  const idWidth = Math.max(6, ...results.map((r) => r.mutant.id.length));
  const lines = [`${pad('mutant', idWidth)}  result    caught by`, `${'-'.repeat(idWidth)}  --------  ---------`];
  for (const r of results) {
    const files = [...new Set(r.caughtBy.map((test) => test.split(' › ')[0]!.replace(/^properties\//, '')))];
    const by = r.caught ? `${r.caughtBy.length} test(s) in ${files.join(', ')}` : r.note || '—';
    lines.push(`${pad(r.mutant.id, idWidth)}  ${r.caught ? 'caught  ' : 'SURVIVED'}  ${by}`);
  }
  return lines.join('\n');
}
