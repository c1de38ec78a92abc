// Goal: the pass/fail thresholds of a run ("latencyMs.remote.p99 < 500"), as the summary recorded them or,
// when it did not, checked here against the summary's figures — the scenario keeps them as written and
// leaves the checking to the report.
// Method: a threshold is `<dotted path into summary.json> <op> <number>` with op one of < <= > >= == !=;
// nothing is evaluated as code. A threshold that cannot be parsed, or whose figure the run did not record,
// fails, with the reason shown.

import { arrayAt, isRecord, numberAt, valueAt, type Summary } from './read.ts';

export interface ThresholdResult {
  expression: string;
  pass: boolean;
  /** The figure the threshold was checked against, as recorded (null: not recorded). */
  actual: unknown;
  /** Why it could not be checked, when it could not. */
  problem?: string;
}

export interface Thresholds {
  /** Where the results come from: the summary's own `thresholds`, the scenario's (checked here), or none. */
  source: 'summary' | 'scenario' | 'none';
  results: ThresholdResult[];
}

const EXPRESSION = /^\s*([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

export function evaluateThreshold(expression: string, summary: Summary): ThresholdResult {
  const match = EXPRESSION.exec(expression);
  if (!match) return { expression, pass: false, actual: null, problem: 'cannot parse: expected "<figure> <op> <number>", e.g. "latencyMs.remote.p99 < 500"' };
  const [, path, op, limitText] = match as unknown as [string, string, string, string];
  const actual = numberAt(summary, path);
  if (actual === undefined) {
    const raw = valueAt(summary, path);
    return { expression, pass: false, actual: raw ?? null, problem: raw === undefined ? `${path} is not recorded in this run` : `${path} is not a number` };
  }
  return { expression, pass: COMPARE[op]!(actual, Number(limitText)), actual };
}

export function thresholdsOf(summary: Summary): Thresholds {
  const recorded = arrayAt(summary, 'thresholds');
  if (recorded) {
    const results = recorded.filter(isRecord).map((entry) => ({
      expression: typeof entry.expression === 'string' ? entry.expression : '(no expression recorded)',
      pass: entry.pass === true,
      actual: entry.actual ?? null,
    }));
    return { source: 'summary', results };
  }
  const written = (arrayAt(summary, 'scenario.thresholds') ?? []).filter((t): t is string => typeof t === 'string');
  if (written.length === 0) return { source: 'none', results: [] };
  return { source: 'scenario', results: written.map((expression) => evaluateThreshold(expression, summary)) };
}
