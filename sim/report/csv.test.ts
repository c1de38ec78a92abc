import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseTimeseries, TIMESERIES_COLUMNS } from './csv.ts';
import { ReportInputError } from './errors.ts';

const HEADER = TIMESERIES_COLUMNS.join(',');
const fixture = readFileSync(new URL('./fixtures/run-a/timeseries.csv', import.meta.url), 'utf8');

function row(values: Partial<Record<string, string | number>>): string {
  return TIMESERIES_COLUMNS.map((c) => values[c] ?? 0).join(',');
}

function errorOf(f: () => unknown): ReportInputError {
  try {
    f();
  } catch (error) {
    if (error instanceof ReportInputError) return error;
    throw error;
  }
  throw new Error('expected a ReportInputError');
}

describe('parseTimeseries', () => {
  it('reads every column of a run, one value per minute', () => {
    const ts = parseTimeseries(fixture);
    expect(ts.rowCount).toBe(45);
    expect(ts.columns.minute).toEqual(Array.from({ length: 45 }, (_, i) => i));
    expect(ts.columns.timeMs[10]).toBe(600_000);
    expect(ts.columns.terminalsInCoverage[12]).toBe(144);
    expect(ts.extraColumns).toEqual([]);
  });

  it('reads an empty field as a minute without a sample (null), not as zero', () => {
    const ts = parseTimeseries(fixture);
    expect(ts.columns.latencyRemoteP99Ms[40]).toBeNull();
    expect(ts.columns.ordersRemote[40]).toBe(0);
  });

  it('finds columns by name, whatever their order, and sets unknown ones aside', () => {
    const names = [...TIMESERIES_COLUMNS].reverse();
    const text = `${names.join(',')},cpuPercent\n${names.map((n) => (n === 'backlogAmountMinor' ? 1234 : n === 'minute' ? 7 : 0)).join(',')},55\n`;
    const ts = parseTimeseries(text);
    expect(ts.columns.minute).toEqual([7]);
    expect(ts.columns.backlogAmountMinor).toEqual([1234]);
    expect(ts.extraColumns).toEqual(['cpuPercent']);
  });

  it('accepts CRLF line endings, a byte-order mark and trailing blank lines', () => {
    const text = `\uFEFF${HEADER}\r\n${row({ minute: 0, approved: 3 })}\r\n${row({ minute: 1, approved: 4 })}\r\n\r\n`;
    const ts = parseTimeseries(text);
    expect(ts.rowCount).toBe(2);
    expect(ts.columns.approved).toEqual([3, 4]);
  });

  it('accepts a header with no rows (a run that stopped in its first minute)', () => {
    const ts = parseTimeseries(`${HEADER}\n`);
    expect(ts.rowCount).toBe(0);
    expect(ts.columns.minute).toEqual([]);
  });

  it('refuses an empty file', () => {
    const error = errorOf(() => parseTimeseries('\n\n', 'runs/x/timeseries.csv'));
    expect(error.reason).toBe('emptyCsv');
    expect(error.message).toMatch(/^runs\/x\/timeseries\.csv: empty file/);
  });

  it('refuses a header that lacks columns, naming the file and every missing column', () => {
    const header = TIMESERIES_COLUMNS.filter((c) => c !== 'backlogCount' && c !== 'reconnects').join(',');
    const error = errorOf(() => parseTimeseries(`${header}\n`, 'runs/x/timeseries.csv'));
    expect(error.reason).toBe('badCsvHeader');
    expect(error.file).toBe('runs/x/timeseries.csv');
    expect(error.message).toContain('missing columns backlogCount, reconnects');
    expect(error.value).toEqual(['backlogCount', 'reconnects']);
  });

  it('refuses a file that is some other CSV', () => {
    const error = errorOf(() => parseTimeseries('name,amount\nx,1\n'));
    expect(error.reason).toBe('badCsvHeader');
    expect(error.message).toMatch(/^timeseries\.csv: line 1: not a payfleet time series/);
  });

  it('refuses a column named twice', () => {
    const error = errorOf(() => parseTimeseries(`${HEADER},minute\n`));
    expect(error.reason).toBe('badCsvHeader');
    expect(error.message).toContain("column 'minute' appears twice");
  });

  it('refuses a row with the wrong number of fields, naming its line', () => {
    const error = errorOf(() => parseTimeseries(`${HEADER}\n${row({ minute: 0 })}\n1,2,3\n`));
    expect(error.reason).toBe('badCsvRow');
    expect(error.message).toContain(`line 3: expected ${TIMESERIES_COLUMNS.length} fields, found 3`);
  });

  it('refuses a field that is not a number, naming its line and column', () => {
    for (const bad of ['abc', 'NaN', 'Infinity', '1e', '0x10', '"5"']) {
      const error = errorOf(() => parseTimeseries(`${HEADER}\n${row({ minute: 0, declined: bad })}\n`));
      expect(error.reason).toBe('badCsvRow');
      expect(error.message).toContain(`line 2, column declined: expected a number, found '${bad}'`);
      expect(error.value).toBe(bad);
    }
  });

  it('reads negative, fractional and exponent numbers', () => {
    const ts = parseTimeseries(`${HEADER}\n${row({ minute: 0, latencyLocalP50Ms: '2.5', backlogAmountMinor: '-3', serverRequests: '1e3' })}\n`);
    expect(ts.columns.latencyLocalP50Ms).toEqual([2.5]);
    expect(ts.columns.backlogAmountMinor).toEqual([-3]);
    expect(ts.columns.serverRequests).toEqual([1000]);
  });
});
