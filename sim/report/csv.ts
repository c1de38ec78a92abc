// Goal: read a run's `timeseries.csv` (one row per simulated minute) into columns the charts can draw, and
// refuse a file that is not one, saying which line and which field is wrong.
// Method: the simulator writes plain numeric CSV (no quoting), so a line split on commas is enough. The header
// must name every column the report draws (in any order; unknown extra columns are kept aside, so a newer
// simulator does not break an older report); an empty field is a minute without a sample (null), anything
// else must be a finite number.

import { ReportInputError } from './errors.ts';

// The columns are the simulator's own list: one definition for the writer and the reader.
import { TIMESERIES_COLUMNS, type TimeseriesColumn } from '../run/metrics.ts';
export { TIMESERIES_COLUMNS, type TimeseriesColumn };

/** One value per minute; null where the minute had no sample (an empty field). */
export type Column = Array<number | null>;

export interface Timeseries {
  rowCount: number;
  columns: Record<TimeseriesColumn, Column>;
  /** Header names the report does not know, in file order (ignored by the charts). */
  extraColumns: string[];
}

const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export function parseTimeseries(text: string, file = 'timeseries.csv'): Timeseries {
  const lines = text.replace(/^\uFEFF/, '').split('\n').map((line) => line.replace(/\r$/, ''));
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  const headerLine = lines[0];
  if (headerLine === undefined || headerLine.trim() === '') {
    throw new ReportInputError('emptyCsv', file, 'empty file: expected a header line naming the columns');
  }
  const header = headerLine.split(',').map((name) => name.trim());
  const index = headerIndex(header, file);
  const columns = Object.fromEntries(TIMESERIES_COLUMNS.map((name) => [name, [] as Column])) as Record<TimeseriesColumn, Column>;
  for (let i = 1; i < lines.length; i++) {
    const lineNumber = i + 1;
    const fields = lines[i]!.split(',');
    if (fields.length !== header.length) {
      throw new ReportInputError('badCsvRow', file, `line ${lineNumber}: expected ${header.length} fields, found ${fields.length}`, lines[i]);
    }
    for (const name of TIMESERIES_COLUMNS) {
      const raw = fields[index[name]]!.trim();
      columns[name].push(parseField(raw, name, lineNumber, file));
    }
  }
  const known = new Set<string>(TIMESERIES_COLUMNS);
  return { rowCount: lines.length - 1, columns, extraColumns: header.filter((name) => !known.has(name)) };
}

function headerIndex(header: string[], file: string): Record<TimeseriesColumn, number> {
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) throw new ReportInputError('badCsvHeader', file, `line 1: column '${name}' appears twice`, name);
    seen.add(name);
  }
  const missing = TIMESERIES_COLUMNS.filter((name) => !seen.has(name));
  if (missing.length > 0) {
    throw new ReportInputError(
      'badCsvHeader',
      file,
      `line 1: not a payfleet time series: missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (header: '${header.join(',').slice(0, 120)}')`,
      missing,
    );
  }
  return Object.fromEntries(TIMESERIES_COLUMNS.map((name) => [name, header.indexOf(name)])) as Record<TimeseriesColumn, number>;
}

function parseField(raw: string, column: string, lineNumber: number, file: string): number | null {
  if (raw === '') return null;
  if (!NUMBER.test(raw)) {
    throw new ReportInputError('badCsvRow', file, `line ${lineNumber}, column ${column}: expected a number, found '${raw.slice(0, 40)}'`, raw);
  }
  return Number(raw);
}
