// Goal: put reports on disk — `report.html` in a run directory, a comparison page for two runs — for the
// `payfleet report` and `payfleet compare` commands (sim/cli/commands/report.ts) and for every run.
// Method: read summary.json and timeseries.csv, turning every way they can be wrong into a ReportInputError
// that names the file; render; write through a temporary file and a rename, so a reader never sees half a
// page and an interrupted write leaves the old report in place.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { renderComparison } from './compare.ts';
import { ReportInputError } from './errors.ts';
import { renderReport } from './html.ts';
import { isRecord, verdictOf } from './read.ts';

export interface RunFiles {
  dir: string;
  summaryFile: string;
  timeseriesFile: string;
  summary: unknown;
  timeseriesCsv: string;
}

function readText(file: string, dir: string): string {
  if (!existsSync(file)) throw new ReportInputError('noSuchFile', file, `no such file (is ${dir} a run directory?)`);
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ReportInputError('unreadable', file, `cannot read: ${(error as Error).message}`);
  }
}

/** Reads a run directory's summary.json (parsed, not yet validated) and timeseries.csv (as text). */
export function readRunDir(dir: string): RunFiles {
  if (!existsSync(dir)) throw new ReportInputError('noSuchDirectory', dir, 'no such directory');
  if (!statSync(dir).isDirectory()) throw new ReportInputError('notADirectory', dir, 'not a directory (expected a run directory holding summary.json and timeseries.csv)');
  const summaryFile = join(dir, 'summary.json');
  const timeseriesFile = join(dir, 'timeseries.csv');
  const summaryText = readText(summaryFile, dir);
  let summary: unknown;
  try {
    summary = JSON.parse(summaryText);
  } catch (error) {
    throw new ReportInputError('badJson', summaryFile, `not valid JSON: ${(error as Error).message}`);
  }
  return { dir, summaryFile, timeseriesFile, summary, timeseriesCsv: readText(timeseriesFile, dir) };
}

/** Writes `text` to `path` through a temporary file in the same directory and a rename. */
export function writeAtomic(path: string, text: string): void {
  const temporary = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Rebuilds `<runDir>/report.html`; returns its path. */
export function writeReport(runDir: string): string {
  return writeReportOf(readRunDir(runDir));
}

/**
 * Rebuilds `<runDir>/report.html` after a run. The report is a view of the run: a failure to draw it must not
 * change the run's verdict, so it is told to `warn` and not thrown.
 */
export function writeReportQuietly(runDir: string, warn: (line: string) => void): void {
  try {
    writeReport(runDir);
  } catch (error) {
    warn(`payfleet: report.html not written: ${(error as Error).message}`);
  }
}

/** Rebuilds `<runDir>/report.html`; returns its path and the run's verdict in a word (OK, VIOLATION, no verdict recorded). */
export function writeReportWithVerdict(runDir: string): { out: string; verdict: string } {
  const run = readRunDir(runDir);
  return { out: writeReportOf(run), verdict: verdictWord(run.summary) };
}

function writeReportOf(run: RunFiles): string {
  const html = renderReport(run.summary, run.timeseriesCsv, { summary: run.summaryFile, timeseries: run.timeseriesFile });
  const out = join(run.dir, 'report.html');
  writeAtomic(out, html);
  return out;
}

/** Writes the comparison of two run directories to `outFile` (its directory is created if needed). */
export function writeComparison(dirA: string, dirB: string, outFile: string): string {
  const a = readRunDir(dirA);
  const b = readRunDir(dirB);
  const html = renderComparison({ summary: a.summary, timeseriesCsv: a.timeseriesCsv, source: dirA }, { summary: b.summary, timeseriesCsv: b.timeseriesCsv, source: dirB });
  mkdirSync(dirname(outFile), { recursive: true });
  writeAtomic(outFile, html);
  return outFile;
}

/** The default place of a comparison: beside run B, named after both runs. */
export function defaultComparisonFile(dirA: string, dirB: string): string {
  const name = (dir: string) => basename(dir.replace(/[\\/]+$/, '')) || 'run';
  return join(dirname(dirB.replace(/[\\/]+$/, '')), `compare-${name(dirA)}-vs-${name(dirB)}.html`);
}

function verdictWord(summary: unknown): string {
  return isRecord(summary) ? { ok: 'OK', violation: 'VIOLATION', unknown: 'no verdict recorded' }[verdictOf(summary)] : 'no verdict recorded';
}
