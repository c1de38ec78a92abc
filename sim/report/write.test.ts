import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defaultComparisonFile, readRunDir, writeComparison, writeReport } from './write.ts';
import { main } from '../cli/main.ts';
import { ReportInputError } from './errors.ts';
import { FIXTURE_A, FIXTURE_B } from './testing.ts';

let root: string;
let runA: string;
let runB: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'payfleet-report-'));
  runA = join(root, 'quickstart-1');
  runB = join(root, 'quickstart-m0-1000-7');
  cpSync(FIXTURE_A, runA, { recursive: true });
  cpSync(FIXTURE_B, runB, { recursive: true });
  rmSync(join(runA, 'report.html'), { force: true });
  rmSync(join(runB, 'report.html'), { force: true });
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  vi.restoreAllMocks();
});

function reasonOf(f: () => unknown): [string, string] {
  try {
    f();
  } catch (error) {
    if (error instanceof ReportInputError) return [error.reason, error.message];
    throw error;
  }
  throw new Error('expected a ReportInputError');
}

/** Runs a command with its console output captured (the commands print what they did). */
/** `payfleet report|compare …` through the CLI's main (sim/cli/commands/report.ts), its output captured. */
async function run(command: 'report' | 'compare', argv: string[]): Promise<{ status: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main([command, ...argv], { out: (line) => out.push(line), err: (line) => err.push(line), env: {} });
  return { status, out: out.join('\n'), err: err.join('\n') };
}

describe('writeReport', () => {
  it('writes report.html into the run directory and leaves no temporary file', () => {
    const out = writeReport(runA);
    expect(out).toBe(join(runA, 'report.html'));
    expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>[\s\S]*<\/html>\n$/);
    expect(readdirSync(runA).sort()).toEqual(['report.html', 'summary.json', 'timeseries.csv']);
  });

  it('leaves the previous report in place when the new one cannot be made', () => {
    writeFileSync(join(runA, 'report.html'), 'previous');
    writeFileSync(join(runA, 'timeseries.csv'), 'not,a,timeseries\n');
    expect(() => writeReport(runA)).toThrow(ReportInputError);
    expect(readFileSync(join(runA, 'report.html'), 'utf8')).toBe('previous');
    expect(readdirSync(runA).sort()).toEqual(['report.html', 'summary.json', 'timeseries.csv']);
  });

  it('names the file and what is wrong with it', () => {
    expect(reasonOf(() => writeReport(join(root, 'nope')))).toEqual(['noSuchDirectory', `${join(root, 'nope')}: no such directory`]);
    expect(reasonOf(() => writeReport(join(runA, 'summary.json')))[0]).toBe('notADirectory');
    rmSync(join(runA, 'timeseries.csv'));
    expect(reasonOf(() => writeReport(runA))).toEqual(['noSuchFile', `${join(runA, 'timeseries.csv')}: no such file (is ${runA} a run directory?)`]);
    rmSync(join(runA, 'summary.json'));
    expect(reasonOf(() => writeReport(runA))[1]).toBe(`${join(runA, 'summary.json')}: no such file (is ${runA} a run directory?)`);
  });

  it('refuses bad JSON, a summary that is not an object, and a bad CSV header', () => {
    writeFileSync(join(runA, 'summary.json'), '{"version": 1,');
    const [reason, message] = reasonOf(() => writeReport(runA));
    expect(reason).toBe('badJson');
    expect(message.startsWith(`${join(runA, 'summary.json')}: not valid JSON: `)).toBe(true);
    writeFileSync(join(runA, 'summary.json'), '[1, 2]');
    expect(reasonOf(() => writeReport(runA))).toEqual(['notAnObject', `${join(runA, 'summary.json')}: expected a JSON object (a payfleet run summary), found an array`]);
    cpSync(join(FIXTURE_A, 'summary.json'), join(runA, 'summary.json'));
    writeFileSync(join(runA, 'timeseries.csv'), 'minute,approved\n0,1\n');
    const [csvReason, csvMessage] = reasonOf(() => writeReport(runA));
    expect(csvReason).toBe('badCsvHeader');
    expect(csvMessage.startsWith(`${join(runA, 'timeseries.csv')}: line 1: not a payfleet time series: missing columns timeMs,`)).toBe(true);
  });

  it('reads a run directory given with a trailing slash', () => {
    expect(readRunDir(`${runA}/`).timeseriesCsv.startsWith('minute,timeMs,')).toBe(true);
  });
});

describe('writeComparison', () => {
  it('writes the comparison, creating the directory it goes in', () => {
    const out = writeComparison(runA, runB, join(root, 'comparisons', 'm0.html'));
    expect(readFileSync(out, 'utf8')).toContain('payfleet comparison: quickstart, seed 1 vs quickstart-m0-1000, seed 7');
  });

  it('puts the comparison beside run B by default, named after both runs', () => {
    expect(defaultComparisonFile('runs/a', 'runs/b/')).toBe(join('runs', 'compare-a-vs-b.html'));
    expect(defaultComparisonFile('x', 'y')).toBe('compare-x-vs-y.html');
  });
});

describe('payfleet report', () => {
  it('prints its help with exit 0', async () => {
    const result = await run('report', ['--help']);
    expect(result.status).toBe(0);
    expect(result.out).toContain('usage: payfleet report <run-dir>');
  });

  it('writes the report with exit 0 whatever the run found, and says so', async () => {
    const result = await run('report', [runB]);
    expect(result.status).toBe(0);
    expect(result.out).toBe(`wrote ${join(runB, 'report.html')} (run verdict: VIOLATION)`);
    expect(existsSync(join(runB, 'report.html'))).toBe(true);
  });

  it('exits 2 on bad input, naming it', async () => {
    expect(await run('report', [])).toMatchObject({ status: 2, err: 'payfleet report: expected one run directory, got 0\nRun `payfleet report --help` for the options.' });
    expect(await run('report', [runA, runB])).toMatchObject({ status: 2 });
    expect((await run('report', ['--colour', runA])).err).toMatch(/^payfleet report: unknown flag --colour/);
    expect(await run('report', [join(root, 'nope')])).toMatchObject({ status: 2, err: `payfleet report: ${join(root, 'nope')}: no such directory` });
  });
});

describe('payfleet compare', () => {
  it('prints its help with exit 0', async () => {
    const result = await run('compare', ['--help']);
    expect(result.status).toBe(0);
    expect(result.out).toContain('usage: payfleet compare <run-dir-A> <run-dir-B> [--out FILE]');
  });

  it('writes the comparison where --out says, or beside run B', async () => {
    const explicit = join(root, 'out.html');
    expect(await run('compare', [runA, runB, '--out', explicit])).toMatchObject({ status: 0, out: `wrote ${explicit}` });
    expect(existsSync(explicit)).toBe(true);
    const byDefault = join(root, 'compare-quickstart-1-vs-quickstart-m0-1000-7.html');
    expect(await run('compare', [runA, runB])).toMatchObject({ status: 0, out: `wrote ${byDefault}` });
    expect(existsSync(byDefault)).toBe(true);
  });

  it('exits 2 on bad input, naming it', async () => {
    expect(await run('compare', [runA])).toMatchObject({ status: 2, err: 'payfleet compare: expected two run directories, got 1\nRun `payfleet compare --help` for the options.' });
    rmSync(join(runB, 'summary.json'));
    expect(await run('compare', [runA, runB])).toMatchObject({ status: 2, err: `payfleet compare: ${join(runB, 'summary.json')}: no such file (is ${runB} a run directory?)` });
  });
});

describe('through the payfleet command', () => {
  const bin = fileURLToPath(new URL('../../bin/payfleet.mjs', import.meta.url));
  const payfleet = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

  it('payfleet report and payfleet compare write their pages and exit 0', () => {
    const report = payfleet('report', runA);
    expect(report.stdout).toBe(`wrote ${join(runA, 'report.html')} (run verdict: OK)\n`);
    expect(report.status).toBe(0);
    const out = join(root, 'c.html');
    expect(payfleet('compare', runA, runB, '--out', out).status).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  it('exits 2 on bad input', () => {
    const result = payfleet('report', join(root, 'nope'));
    expect(result.stderr).toBe(`payfleet report: ${join(root, 'nope')}: no such directory\n`);
    expect(result.status).toBe(2);
  });
});
