// Goal: one error type for every bad input the report can meet (a missing run directory or file, bad JSON, a
// bad CSV header or row), so the CLI can tell bad input (exit 2) from a bug.
// Method: the error names the file, says what is wrong in words a person can act on, and carries a reason
// code and the offending value for code that wants to react to it.

export type ReportInputReason =
  | 'noSuchDirectory'
  | 'notADirectory'
  | 'noSuchFile'
  | 'unreadable'
  | 'badJson'
  | 'notAnObject'
  | 'emptyCsv'
  | 'badCsvHeader'
  | 'badCsvRow';

export class ReportInputError extends Error {
  constructor(
    readonly reason: ReportInputReason,
    /** The file or directory at fault, as the user named it. */
    readonly file: string,
    detail: string,
    readonly value?: unknown,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'ReportInputError';
  }
}
